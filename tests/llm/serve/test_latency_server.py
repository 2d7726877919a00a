"""The latency-simulating server: recorded answers after the profile's first-token time at
its rate, matched to requests exactly or by likeness, with OpenAI's cached-token rule."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from mgpt.llm.backends.base import ChatMessage
from mgpt.llm.backends.client import LLM
from mgpt.llm.backends.replay import Transcript
from mgpt.llm.serve.latency import LatencyProfile, LatencyServer, RecordedAnswers
from testpaths import GOLDEN

TODO = GOLDEN / "todo_cli.jsonl"


def _model(server):
    from mgpt.llm.backends.openai_model import OpenAIModel

    return OpenAIModel("simulated", base_url=server.base_url, max_attempts=1)


def test_answers_stream_after_the_first_token_time_at_the_rate():
    calls = Transcript.load(TODO).calls
    profile = LatencyProfile(ttft=0.3, tokens_per_s=400)
    store = next(c for c in calls if c.action == "WriteCode" and c.turn == 1)
    with LatencyServer([TODO], profile) as server:
        events = []
        llm = LLM(_model(server), role="Engineer", on_event=events.append)

        async def main():
            started = time.perf_counter()
            answer = await llm.ask(store.request, action="WriteCode")
            await llm.model.aclose()
            return answer, time.perf_counter() - started

        answer, seconds = asyncio.run(main())
    assert answer.text == store.response.text
    tokens = profile.tokens(store.response.text)
    assert answer.usage.completion_tokens == tokens and tokens > 100
    assert 0.3 <= events[-1].data["ttft"] < 1.5
    assert profile.seconds(store) <= seconds < profile.seconds(store) + 2.0
    assert 100 < events[-1].data["tokens_per_s"] < 800  # about 400, on a shared machine
    [served] = server.served
    assert served.key == ("Engineer", "WriteCode", 1) and served.stream


def test_requests_worded_differently_get_the_answer_meant_for_their_step():
    answers = RecordedAnswers([TODO])
    code = [c for c in answers.calls if c.action == "WriteCode"]
    # Another framework's prompt for the same file: other words, the same file name.
    main_py = next(c for c in code if "`todo_cli/__main__.py`" in c.request[-1].content)
    asked = [main_py.request[0].model_dump(),
             {"role": "user", "content": "Please implement `todo_cli/__main__.py` (module `todo_cli.__main__`)."}]
    assert answers.answer(asked) is main_py
    assert answers.matches == ["alike"]
    # The exact request of another call is still answered exactly, once.
    first = code[0]
    assert answers.answer([m.model_dump() for m in first.request]) is first and answers.matches[-1] == "exact"


def test_cached_tokens_follow_openais_rule():
    calls = Transcript.load(TODO).calls
    long_prefix = "rules " * 1200  # ~1,800 tokens shared by both requests
    profile = LatencyProfile(ttft=0.0, tokens_per_s=100000)
    with LatencyServer([TODO], profile) as server:
        model = _model(server)

        async def main():
            out = []
            for tail in ("first question", "second question"):
                messages = [ChatMessage(role="system", content=long_prefix), ChatMessage(role="user", content=tail)]
                out.append(await model.complete(messages))
            await model.aclose()
            return out

        first, second = asyncio.run(main())
    assert first.usage.cached_tokens == 0
    shared = int(len("system\n" + long_prefix + "\nuser\n") / 4)
    assert second.usage.cached_tokens == shared // 128 * 128 and second.usage.cached_tokens >= 1024
    assert second.usage.cached_tokens < second.usage.prompt_tokens
    assert len(calls) == 8


def test_jitter_is_the_same_for_the_same_call_and_bounded():
    profile = LatencyProfile(jitter=0.1, seed=3)
    key = ("Engineer", "WriteCode", 2)
    assert profile.factors(key) == LatencyProfile(jitter=0.1, seed=3).factors(key)
    assert all(0.9 <= f <= 1.1 for f in profile.factors(key))
    assert LatencyProfile().factors(key) == (1.0, 1.0)
    with pytest.raises(ValueError, match="tokens_per_s > 0"):
        LatencyProfile(tokens_per_s=0)


def test_the_command_line_takes_the_profile():
    help_text = subprocess.run([sys.executable, "-m", "mgpt.llm.serve.latency", "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    for flag in ("--ttft", "--tps", "--jitter", "--port"):
        assert flag in help_text

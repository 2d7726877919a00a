"""Streamed calls: progress while an answer arrives, time to first token and tokens/s in the
run log and the transcript; cached prompt tokens read from the usage and priced at the
cached rate."""

from __future__ import annotations

import asyncio
import json

import pytest

from mgpt.agents.budget import Budget
from mgpt.llm.backends.base import Completion, Model, StreamChunk, Usage
from mgpt.llm.backends.client import LLM
from mgpt.llm.backends.cost import PriceTable
from mgpt.llm.backends.replay import RecordingModel, Transcript
from mgpt.llm.backends.testing import TestModel


class Trickle(Model):
    """Streams its answer a word at a time, after a first-token delay."""

    name = "openai:gpt-4o-mini"

    def __init__(self, text: str, first: float = 0.05, gap: float = 0.01, cached: int = 0):
        self.text, self.first, self.gap, self.cached = text, first, gap, cached

    async def complete(self, messages, *, context=None, output=None):
        return Completion(text=self.text, usage=Usage(prompt_tokens=1000, completion_tokens=len(self.text.split()),
                                                      cached_tokens=self.cached))

    async def stream(self, messages, *, context=None, output=None):
        await asyncio.sleep(self.first)
        for word in self.text.split(" "):
            yield StreamChunk(delta=word + " ")
            await asyncio.sleep(self.gap)
        yield StreamChunk(completion=await self.complete(messages))


def test_a_streamed_call_records_its_first_token_and_rate(tmp_path):
    events, progress = [], []
    recorder = RecordingModel(Trickle("one two three four five six"), tmp_path / "t.jsonl")
    llm = LLM(recorder, role="R", on_event=events.append, on_progress=progress.append)
    answer = asyncio.run(llm.ask("hi", action="Act"))
    recorder.close()
    assert answer.text == "one two three four five six"
    call = events[-1]
    assert call.kind == "llm_call" and call.data["turn"] == 1
    assert 0.04 <= call.data["ttft"] < call.data["seconds"]
    assert call.data["tokens_per_s"] > 0
    # Progress: the call in flight with nothing yet, then pieces arriving (never logged).
    assert progress[0].kind == "llm_progress" and progress[0].data["pieces"] == 0
    assert progress[-1].data["pieces"] >= 1 and progress[-1].detail == "Act"
    record = Transcript.load(tmp_path / "t.jsonl").calls[0]
    assert record.timing is not None and record.timing.ttft is not None and record.timing.tokens_per_s
    # A backend that answers in one piece (scripted, replayed) records no timing: its
    # transcript is the same bytes every time.
    recorder = RecordingModel(TestModel(["plain"]), tmp_path / "u.jsonl")
    asyncio.run(LLM(recorder, role="R").ask("hi", action="Act"))
    recorder.close()
    line = (tmp_path / "u.jsonl").read_text().splitlines()[1]
    assert '"timing"' not in line and Transcript.load(tmp_path / "u.jsonl").calls[0].timing is None


def test_cached_tokens_are_priced_at_the_cached_rate():
    table = PriceTable()
    full = table.cost("openai:gpt-4o-mini", Usage(prompt_tokens=1_000_000, completion_tokens=0))
    half_cached = table.cost("openai:gpt-4o-mini", Usage(prompt_tokens=1_000_000, cached_tokens=500_000))
    assert full == pytest.approx(0.15) and half_cached == pytest.approx(0.075 + 0.0375)
    assert table.cached_price("gpt-4.1") == 0.50 and table.cached_price("gpt-5-mini-2025-08-07") == 0.025
    # Unknown ratio: a cached token costs what a prompt token does (never under-counted).
    own = PriceTable({"my-model": (1.0, 2.0)})
    assert own.cost("my-model", Usage(prompt_tokens=10, cached_tokens=10)) == own.cost("my-model", Usage(prompt_tokens=10))
    assert PriceTable({"my-model": (1.0, 2.0, 0.1)}).cached_price("my-model") == 0.1
    # A new price for a known model without a cached figure drops the published ratio.
    assert PriceTable({"gpt-4o-mini": (1.0, 2.0)}).cached_price("gpt-4o-mini") == 1.0


def test_the_run_is_charged_for_cached_tokens_at_their_rate():
    events = []
    llm = LLM(Trickle("a b", first=0, gap=0, cached=800), role="R", budget=Budget(), on_event=events.append)
    asyncio.run(llm.ask("hi", action="Act"))
    spend = llm.budget.by_role["R"]
    assert spend.cached_tokens == 800 and events[-1].data["cached_tokens"] == 800
    assert spend.cost == pytest.approx((200 * 0.15 + 800 * 0.075 + 2 * 0.60) / 1e6)


def test_cached_tokens_are_written_only_when_there_are_some():
    # Older transcripts read the same; the OpenAI backend's parsing is tested against the
    # latency server, which reports them as OpenAI does (tests/llm/serve/test_latency_server.py).
    assert "cached_tokens" not in Usage(prompt_tokens=1).model_dump_json()
    assert json.loads(Usage(prompt_tokens=4, cached_tokens=2).model_dump_json())["cached_tokens"] == 2
    assert (Usage(prompt_tokens=4, cached_tokens=2) + Usage(prompt_tokens=1, cached_tokens=1)).cached_tokens == 3


def test_turns_reserved_together_key_calls_by_plan_order():
    model = TestModel({("R", "Act"): ["first", "second", "third"]})
    llm = LLM(model, role="R")
    turns = llm.reserve_turns("Act", 2)
    assert turns == [1, 2]

    async def main():
        # The second call reaches the model first; each still gets its own turn's answer.
        b = asyncio.ensure_future(llm.ask("b", action="Act", turn=turns[1]))
        await asyncio.sleep(0)
        a = await llm.ask("a", action="Act", turn=turns[0])
        return a.text, (await b).text, (await llm.ask("c", action="Act")).text

    assert asyncio.run(main()) == ("first", "second", "third")
    assert [c.turn for c, _ in model.requests] == [2, 1, 3]


def test_a_server_that_answers_a_stream_request_in_one_body_still_answers():
    """Some servers ignore ``stream``: their JSON completion is the answer (calls stream now)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mgpt.llm.backends.openai_model import OpenAIModel

    body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "whole answer"},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 7, "completion_tokens": 2,
                                 "prompt_tokens_details": {"cached_tokens": 0}}}).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        model = OpenAIModel("any", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", max_attempts=1)

        async def main():
            answer = await LLM(model, role="R").ask("hi", action="Act")
            await model.aclose()
            return answer

        answer = asyncio.run(main())
    finally:
        server.shutdown()
        server.server_close()
    assert answer.text == "whole answer" and answer.usage == Usage(prompt_tokens=7, completion_tokens=2)

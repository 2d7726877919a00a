"""The OpenAI-compatible backend, driven by the real openai SDK over real HTTP.

Every test talks to :class:`OpenAIStub` on 127.0.0.1; waits between retries go through a fake
sleep that records what the model asked for, so Retry-After handling is checked without
sleeping for real.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import subprocess
import sys

import pytest
from openai_stub import OpenAIStub

from mgpt.llm.backends.base import ChatMessage, Completion
from mgpt.llm.errors import ModelConfigError, ModelUnavailableError
from mgpt.llm.backends.openai_model import MAX_RETRY_AFTER, OpenAIModel, retry_after_seconds

KEY = "sk-test-SECRET-0123456789"
MESSAGES = [ChatMessage(role="system", content="be brief"), ChatMessage(role="user", content="say hi")]


class FakeSleep:
    """Records the waits the retry loop asks for, and waits (almost) not at all."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


def make_model(stub: OpenAIStub, **kwargs) -> tuple[OpenAIModel, FakeSleep]:
    sleep = FakeSleep()
    options = {"api_key": KEY, "timeout": 5.0, "sleep": sleep} | kwargs
    return OpenAIModel("stub-model", base_url=stub.base_url, **options), sleep


def complete(model: OpenAIModel) -> Completion:
    async def run() -> Completion:
        try:
            return await model.complete(MESSAGES)
        finally:
            await model.aclose()

    return asyncio.run(run())


def stream(model: OpenAIModel) -> tuple[list[str], Completion | None]:
    async def run() -> tuple[list[str], Completion | None]:
        deltas, final = [], None
        try:
            async for chunk in model.stream(MESSAGES):
                if chunk.completion is not None:
                    final = chunk.completion
                elif chunk.delta:
                    deltas.append(chunk.delta)
        finally:
            await model.aclose()
        return deltas, final

    return asyncio.run(run())


# -- the happy paths ----------------------------------------------------------------------


def test_complete_returns_text_usage_and_finish_reason():
    with OpenAIStub([("ok", "hello there", {"finish_reason": "length", "usage": (7, 2)})]) as stub:
        model, _ = make_model(stub, temperature=0.2, max_tokens=50)
        result = complete(model)

    assert result == Completion(
        text="hello there",
        usage={"prompt_tokens": 7, "completion_tokens": 2},
        finish_reason="length",
        model="openai:stub-model",
    )
    (request,) = stub.chat_requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.json["model"] == "stub-model"
    assert request.json["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "say hi"},
    ]
    assert request.json["temperature"] == 0.2 and request.json["max_tokens"] == 50


def test_complete_without_usage_reports_zeros():
    with OpenAIStub([("ok", "hi", {"usage": None})]) as stub:
        result = complete(make_model(stub)[0])
    assert result.text == "hi"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (0, 0)


def test_stream_deltas_join_to_the_text_and_the_last_chunk_has_usage():
    text = "one two three four"
    with OpenAIStub([("ok", text)]) as stub:
        deltas, final = stream(make_model(stub)[0])

    assert len(deltas) == 4 and "".join(deltas) == text
    assert final is not None and final.text == text
    assert final.finish_reason == "stop" and final.model == "openai:stub-model"
    # The stub counts words: 4 in the prompt ("be brief", "say hi"), 4 in the answer.
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (4, 4)
    (request,) = stub.chat_requests
    assert request.json["stream"] is True
    assert request.json["stream_options"] == {"include_usage": True}


def test_stream_retries_once_without_stream_options_when_the_server_rejects_them():
    with OpenAIStub(
        [("status", 400, {}, "Unrecognized request argument supplied: stream_options"), ("ok", "a b")]
    ) as stub:
        model, _ = make_model(stub)
        deltas, final = stream(model)

    assert "".join(deltas) == "a b" and final.text == "a b"
    assert final.usage.total_tokens == 0  # the server could not be asked for usage
    first, second = stub.chat_requests
    assert "stream_options" in first.json and "stream_options" not in second.json


def test_models_endpoint_lists_the_stub_models():
    import openai

    async def run():
        async with openai.AsyncOpenAI(api_key=KEY, base_url=stub.base_url, max_retries=0) as client:
            return [m.id async for m in client.models.list()]

    with OpenAIStub(models=["a", "b"]) as stub:
        assert asyncio.run(run()) == ["a", "b"]


# -- retries ------------------------------------------------------------------------------


def test_rate_limit_honours_retry_after_then_succeeds():
    with OpenAIStub([("status", 429, {"Retry-After": "2"}), ("ok", "done")]) as stub:
        model, sleep = make_model(stub)
        assert complete(model).text == "done"
    assert len(stub.chat_requests) == 2
    assert sleep.waits == [2.0]


def test_retry_after_ms_wins_and_long_waits_are_capped():
    with OpenAIStub(
        [
            ("status", 429, {"retry-after-ms": "250", "Retry-After": "9"}),
            ("status", 503, {"Retry-After": "3600"}),
            ("ok", "done"),
        ]
    ) as stub:
        model, sleep = make_model(stub)
        assert complete(model).text == "done"
    assert sleep.waits == [0.25, MAX_RETRY_AFTER]


@pytest.mark.parametrize(
    "failure",
    [("status", 500), ("status", 502), ("status", 408), ("drop",)],
    ids=["500", "502", "408", "dropped-connection"],
)
def test_transient_failure_then_success(failure):
    with OpenAIStub([failure, ("ok", "recovered")]) as stub:
        model, sleep = make_model(stub)
        assert complete(model).text == "recovered"
    assert len(stub.chat_requests) == 2
    # No Retry-After: exponential backoff with jitter, starting near half a second.
    assert len(sleep.waits) == 1 and 0.5 <= sleep.waits[0] <= 1.0


def test_timeout_then_success():
    # The first request outlives the client's 0.3 s timeout; the retry is answered at once.
    with OpenAIStub([("sleep", 1.0), ("ok", "in time")], default=lambda body: "too late") as stub:
        model, sleep = make_model(stub, timeout=0.3)
        assert complete(model).text == "in time"
    assert len(stub.chat_requests) == 2 and len(sleep.waits) == 1


def test_stream_retries_a_failure_before_anything_was_yielded():
    with OpenAIStub([("status", 503), ("drop",), ("ok", "x y")]) as stub:
        deltas, final = stream(make_model(stub)[0])
    assert "".join(deltas) == "x y" and final.text == "x y"
    assert len(stub.chat_requests) == 3


def test_stream_broken_after_text_was_yielded_is_not_retried():
    async def run(model):
        seen = []
        try:
            async for chunk in model.stream(MESSAGES):
                seen.append(chunk.delta)
        finally:
            await model.aclose()
        return seen

    with OpenAIStub([("break", "partial answer"), ("ok", "never asked")]) as stub:
        model, _ = make_model(stub)
        with pytest.raises(ModelUnavailableError, match="not retried"):
            asyncio.run(run(model))
    assert len(stub.chat_requests) == 1


def test_a_stream_that_ends_without_a_finish_reason_was_cut_short():
    """A body that stops cleanly mid-answer (no finish chunk) is not taken as the answer."""
    with OpenAIStub([("ok", "half an ans", {"finish_reason": None})]) as stub:
        with pytest.raises(ModelUnavailableError, match="without a finish_reason"):
            stream(make_model(stub)[0])


@pytest.mark.parametrize("cut", [("break", "partial answer"), ("ok", "partial", {"finish_reason": None})],
                         ids=["broken", "cut-short"])
def test_a_role_whose_stream_breaks_after_text_gets_the_whole_answer_asked_again(cut):
    """The roles stream for progress only: a stream cut after some text is asked again,
    whole, with the backend's retries, and the run goes on with the whole answer."""
    from mgpt.llm.backends.client import LLM

    async def ask(model):
        try:
            return await LLM(model, role="Engineer").ask("write it", action="WriteCode")
        finally:
            await model.aclose()

    with OpenAIStub([cut, ("status", 503), ("ok", "the whole answer")]) as stub:
        model, sleep = make_model(stub)
        answer = asyncio.run(ask(model))
    assert answer.text == "the whole answer" and answer.finish_reason == "stop"
    assert [bool(r.json.get("stream")) for r in stub.chat_requests] == [True, False, False]


@pytest.mark.parametrize("refused", [False, True], ids=["answered", "first-refused-then-retried"])
def test_concurrent_streams_reach_the_server_in_the_order_they_were_made(refused):
    """Calls made together are sent one at a time, each once the one before has its
    response's headers, so a server that answers in arrival order answers call i with
    answer i; the slower the server is to take an early request, the likelier the
    requests would overtake each other without that."""
    import threading
    import time as clock

    lock, answers = threading.Lock(), iter(f"answer {i}" for i in range(6))

    def answer(body):
        asked = int(body["messages"][-1]["content"].split()[-1])
        clock.sleep(0.05 * (5 - asked))  # the early calls are the slow ones to be taken
        with lock:
            return next(answers)

    async def run(model):
        try:
            async def one(i):
                async for chunk in model.stream([ChatMessage(role="user", content=f"call {i}")]):
                    if chunk.completion is not None:
                        return chunk.completion.text
            return await asyncio.gather(*(asyncio.create_task(one(i)) for i in range(6)))
        finally:
            await model.aclose()

    with OpenAIStub(default=answer) as stub:
        if refused:  # the first request is rate limited: its retry keeps its place
            stub.push(("status", 429, {"Retry-After": "0"}))
        texts = asyncio.run(run(make_model(stub)[0]))
    assert texts == [f"answer {i}" for i in range(6)]
    assert len(stub.chat_requests) == 6 + refused


def test_an_error_event_inside_a_stream_is_a_clear_error():
    with OpenAIStub([("stream_error", "prompt is too long for this model")]) as stub:
        with pytest.raises(ModelUnavailableError, match="failed: prompt is too long"):
            stream(make_model(stub)[0])
    assert len(stub.chat_requests) == 1


def test_persistent_server_errors_stop_after_max_attempts(caplog):
    with OpenAIStub(default=lambda body: ("status", 500, {}, "the GPU caught fire")) as stub:
        model, sleep = make_model(stub, max_attempts=3)
        with caplog.at_level(logging.WARNING, logger="mgpt.llm.backends.openai_model"):
            with pytest.raises(ModelUnavailableError) as info:
                complete(model)

    message = str(info.value)
    assert len(stub.chat_requests) == 3 and len(sleep.waits) == 2
    assert stub.base_url in message and "stub-model" in message
    assert "3 attempt" in message and "HTTP 500" in message and "the GPU caught fire" in message
    assert KEY not in message
    assert len(caplog.records) == 2 and all(KEY not in r.getMessage() for r in caplog.records)


def test_total_retry_time_bounds_the_attempts():
    # Each wait (Retry-After: 5) would end past max_retry_time, so no second attempt starts.
    with OpenAIStub(default=lambda body: ("status", 429, {"Retry-After": "5"})) as stub:
        model, sleep = make_model(stub, max_attempts=10, max_retry_time=3.0)
        with pytest.raises(ModelUnavailableError, match="1 attempt"):
            complete(model)
    assert len(stub.chat_requests) == 1 and sleep.waits == []


# -- what the user must fix fails at once -------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_fails_at_once_without_leaking_it(status):
    # Servers sometimes echo the key they rejected; it must not reach our message anyway.
    planned = ("status", status, {}, f"Incorrect API key provided: {KEY}")
    with OpenAIStub([planned, ("ok", "never")]) as stub:
        model, sleep = make_model(stub)
        with pytest.raises(ModelConfigError) as info:
            complete(model)

    message = str(info.value)
    assert len(stub.chat_requests) == 1 and sleep.waits == []
    assert "rejected" in message and stub.base_url in message and "--api-key-file" in message
    assert KEY not in message and KEY not in repr(info.value)
    assert info.value.__cause__ is None  # the SDK's error quoting the server is not chained


def test_stub_require_key_rejects_a_wrong_key():
    with OpenAIStub([("ok", "never")], require_key="sk-right") as stub:
        with pytest.raises(ModelConfigError, match="API key was rejected"):
            complete(make_model(stub)[0])
        assert len(stub.chat_requests) == 1 and stub.pending == 1


def test_unknown_model_fails_at_once():
    with OpenAIStub([("status", 404, {}, "The model `stub-model` does not exist"), ("ok", "never")]) as stub:
        model, _ = make_model(stub)
        with pytest.raises(ModelConfigError, match="model 'stub-model' was not found at .*--model"):
            complete(model)
    assert len(stub.chat_requests) == 1


def test_bad_request_fails_at_once_with_the_servers_message():
    with OpenAIStub([("status", 400, {}, "maximum context length is 4096 tokens"), ("ok", "never")]) as stub:
        with pytest.raises(ModelConfigError, match="HTTP 400.*maximum context length is 4096"):
            complete(make_model(stub)[0])
    assert len(stub.chat_requests) == 1


def test_an_exhausted_stub_fails_loudly():
    with OpenAIStub() as stub:
        with pytest.raises(ModelConfigError, match="no planned response left"):
            complete(make_model(stub)[0])


# -- configuration and secrets ------------------------------------------------------------


def test_missing_key_for_openai_says_how_to_set_it():
    with pytest.raises(ModelConfigError, match="OPENAI_API_KEY.*MGPT_API_KEY.*--api-key-file"):
        OpenAIModel("gpt-4o-mini")


def test_local_server_needs_no_key():
    with OpenAIStub([("ok", "local")]) as stub:
        model = OpenAIModel("stub-model", base_url=stub.base_url)
        assert complete(model).text == "local"
    assert stub.chat_requests[0].headers["authorization"] == "Bearer not-needed"


def test_repr_and_name_leave_out_the_key():
    model = OpenAIModel("gpt-4o-mini", api_key=KEY, base_url="https://user:pw@example.invalid/v1")
    text = repr(model)
    assert KEY not in text and "pw" not in text
    assert "gpt-4o-mini" in text and "example.invalid" in text
    assert model.name == "openai:gpt-4o-mini"


def test_importing_mgpt_llm_does_not_import_openai():
    code = (
        "import sys, mgpt.llm, mgpt.llm.backends.openai_model; "
        "sys.exit(1 if 'openai' in sys.modules else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr or "importing mgpt.llm imported openai"


# -- Retry-After parsing ------------------------------------------------------------------


def test_retry_after_seconds_parses_seconds_ms_and_dates():
    now = 1_700_000_000.0
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": "1.5"}) == 1.5
    assert retry_after_seconds({"retry-after-ms": "1200"}) == 1.2
    assert retry_after_seconds({"Retry-After-Ms": "300", "Retry-After": "9"}) == 0.3
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_seconds({"Retry-After": date}, now=now) == pytest.approx(30.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert retry_after_seconds({"Retry-After": past}, now=now) == 0.0
    assert retry_after_seconds({"Retry-After": "-3"}) == 0.0
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({"retry-after-ms": "x", "Retry-After": "2"}) == 2.0

"""The pieces under `mgpt run`'s hardening, one at a time: worst-case budget holds, price and
cap lookup, settings resolution and secret registration, the OpenAI client's answers that
are no chat completion and its retry window, workspace file modes and failed attempts."""

from __future__ import annotations

import asyncio
import os
import random

import pytest
from openai_stub import OpenAIStub

from mgpt.agents import secrets
from mgpt.agents.budget import Budget
from mgpt.agents.errors import BudgetExceeded
from mgpt.llm.backends.base import ChatMessage, Completion, Usage
from mgpt.llm.backends.client import LLM
from mgpt.llm.backends.cost import PriceTable, UnknownPriceError, call_cap, estimate_prompt_tokens, priced_as
from mgpt.llm.backends.testing import FunctionModel


class CappedModel(FunctionModel):
    """A function model that promises at most ``max_tokens`` completion tokens a call."""

    def __init__(self, fn, *, name: str, max_tokens: int):
        super().__init__(fn, name=name)
        self.max_tokens = max_tokens


# -- the budget holds a call's worst case -------------------------------------------------------


def test_a_dollar_budget_is_never_overshot():
    rng = random.Random(7)
    cap = 400

    def answer(messages, ctx):  # honest about usage, never above the cap
        prompt = estimate_prompt_tokens(messages) - rng.randint(0, 5)
        return Completion(text="x", usage=Usage(prompt_tokens=prompt, completion_tokens=rng.randint(1, cap)))

    budget = Budget(max_cost=0.05)
    llm = LLM(CappedModel(answer, name="openai:gpt-4o", max_tokens=cap), role="R", budget=budget)
    calls = 0
    with pytest.raises(BudgetExceeded, match=r"budget of \$0.0500 would not cover R's next model call"):
        for _ in range(1000):
            asyncio.run(llm.ask("write something " * rng.randint(1, 40)))
            calls += 1
    assert calls > 5
    assert budget.total.cost <= 0.05


def test_concurrent_calls_hold_their_worst_case():
    # Each call's worst case is 4 + 2 (prompt) + 100 (cap) tokens; 150 fit one call, not two.
    started = []

    async def answer(messages, ctx):
        started.append(ctx.role)
        await asyncio.sleep(0.01)
        return Completion(text="x", usage=Usage(prompt_tokens=3, completion_tokens=50))

    budget = Budget(max_tokens=150)
    model = CappedModel(answer, name="test", max_tokens=100)
    a, b = (LLM(model, role=r, budget=budget) for r in ("A", "B"))

    async def both():
        return await asyncio.gather(a.ask("hi"), b.ask("hi"), return_exceptions=True)

    results = asyncio.run(both())
    assert started == ["A"] and isinstance(results[1], BudgetExceeded)
    assert budget._held == {}  # the hold became a charge
    # A failing call releases its hold.
    broken = LLM(CappedModel(lambda m, c: 1 / 0, name="test", max_tokens=10), role="C", budget=budget)
    with pytest.raises(ZeroDivisionError):
        asyncio.run(broken.ask("hi"))
    assert budget._held == {}


def test_a_dollar_budget_needs_a_price():
    llm = LLM(FunctionModel(lambda m, c: "x", name="openai:my-own"), role="R", budget=Budget(max_cost=1))
    with pytest.raises(UnknownPriceError, match=r'"my-own" = \['):
        asyncio.run(llm.ask("hi"))
    # Priced by the table the run was given.
    llm = LLM(FunctionModel(lambda m, c: "x", name="openai:my-own"), role="R", budget=Budget(max_cost=1),
              prices=PriceTable({"my-own": (1.0, 2.0)}))
    assert asyncio.run(llm.ask("hi")).text == "x"


def test_measured_token_ratio_raises_the_estimate():
    # A character-level model: one token per character, far above the default of 1/3.
    def answer(messages, ctx):
        chars = sum(len(m.content) for m in messages)
        return Completion(text="y", usage=Usage(prompt_tokens=chars, completion_tokens=1))

    budget = Budget(max_tokens=2000)
    llm = LLM(CappedModel(answer, name="hf:chars", max_tokens=1), role="R", budget=budget)
    asyncio.run(llm.ask("a" * 600))  # estimated 204 + 1, really 600 + 1
    # At the default ratio 1500 characters would be ~504 tokens and fit; at the measured one
    # they are ~1504, and 1504 + 1 > 2000 - 601.
    with pytest.raises(BudgetExceeded, match="~1504 prompt tokens"):
        asyncio.run(llm.ask("a" * 1500))
    assert budget.total.total_tokens == 601


def test_replay_and_recording_are_priced_and_capped_as_recorded(tmp_path):
    from mgpt.llm.backends.replay import RecordingModel, ReplayModel

    golden = ReplayModel("tests/golden/todo_cli.jsonl")
    assert priced_as(golden) == "openai:gpt-4o-mini" and call_cap(golden) == 240
    recording = RecordingModel(golden, tmp_path / "t.jsonl")
    assert priced_as(recording) == "openai:gpt-4o-mini" and call_cap(recording) == 240
    assert call_cap(FunctionModel(lambda m, c: "x")) is None


# -- settings ---------------------------------------------------------------------------------


def test_key_precedence_and_registration(tmp_path):
    from mgpt.cli.config import load_settings

    key_file = tmp_path / "key"
    key_file.write_text("\n  sk-from-the-file-000111  \n")
    cfg = tmp_path / "c.toml"
    cfg.write_text('api_key_env = "PROVIDER_TOK"\napi_key = "sk-in-config-000111"\n')
    env = {"PROVIDER_TOK": "sk-from-named-var-000111"}
    assert load_settings(config=cfg, env=env).api_key == "sk-from-named-var-000111"
    assert load_settings(config=cfg, env=env | {"MGPT_API_KEY": "sk-mgpt-var-000111"}).api_key == "sk-mgpt-var-000111"
    assert load_settings(config=cfg, env=env, api_key_file=key_file).api_key == "sk-from-the-file-000111"
    assert load_settings(config=cfg, env={}).api_key == "sk-in-config-000111"
    for value in ("sk-from-named-var-000111", "sk-mgpt-var-000111", "sk-from-the-file-000111", "sk-in-config-000111"):
        assert value in secrets.known({})
    assert secrets.redact("key=sk-from-the-file-000111", env={}) == "key=[redacted]"


def test_timeout_and_cap_from_the_config(tmp_path):
    from mgpt.cli.config import load_settings
    from mgpt.llm.models import infer_model

    cfg = tmp_path / "c.toml"
    cfg.write_text('timeout = 300\nmax_tokens_per_call = 1000\n')
    settings = load_settings(config=cfg, env={})
    assert settings.timeout == 300.0 and settings.max_tokens_per_call == 1000
    assert load_settings(config=cfg, env={}, timeout=5).timeout == 5
    model = infer_model("openai:m", base_url="http://127.0.0.1:9/v1", timeout=settings.timeout,
                        max_tokens=settings.max_tokens_per_call, env={})
    assert model.timeout == 300 and model.max_retry_time == 900 and model.max_tokens == 1000


# -- the OpenAI-compatible client -------------------------------------------------------------


def test_retry_window_is_longer_than_the_timeout():
    from mgpt.llm.backends.openai_model import OpenAIModel

    url = "http://127.0.0.1:9/v1"
    default = OpenAIModel("m", base_url=url)
    assert (default.timeout, default.max_retry_time) == (120, 360)
    assert OpenAIModel("m", base_url=url, timeout=600).max_retry_time == 1800
    assert OpenAIModel("m", base_url=url, timeout=1).max_retry_time == 120


@pytest.mark.slow
def test_a_hung_request_is_retried_with_the_default_window():
    from mgpt.llm.backends.openai_model import OpenAIModel

    async def run(model):
        try:
            return await model.complete([ChatMessage(role="user", content="hi")])
        finally:
            await model.aclose()

    with OpenAIStub([("sleep", 3.0), ("ok", "answered")], default=lambda body: "late") as stub:
        model = OpenAIModel("stub-model", base_url=stub.base_url, timeout=0.5)  # no max_retry_time given
        assert asyncio.run(run(model)).text == "answered"
    assert len(stub.chat_requests) == 2


def test_openai_hosts_get_max_completion_tokens():
    from mgpt.llm.backends.openai_model import OpenAIModel

    msgs = [ChatMessage(role="user", content="hi")]
    hosts = {
        None: "max_completion_tokens",
        "https://res.openai.azure.com/openai/v1/": "max_completion_tokens",
        "http://localhost:11434/v1": "max_tokens",
    }
    for url, field in hosts.items():
        payload = OpenAIModel("m", base_url=url, api_key="sk-x-000000000", max_tokens=77)._payload(msgs)
        assert payload[field] == 77 and len({"max_tokens", "max_completion_tokens"} & set(payload)) == 1


def test_a_cap_too_large_for_the_context_says_which_setting_to_lower():
    from mgpt.llm.errors import ModelConfigError
    from mgpt.llm.models import infer_model

    said = "This model's maximum context length is 4096 tokens. However, you requested 4200 tokens."
    with OpenAIStub([("status", 400, {}, said)]) as stub:
        model = infer_model("openai:stub-model", base_url=stub.base_url, env={})

        async def run():
            try:
                await model.complete([ChatMessage(role="user", content="hi")])
            finally:
                await model.aclose()

        with pytest.raises(ModelConfigError, match="up to 4096 completion tokens: lower max_tokens_per_call"):
            asyncio.run(run())


@pytest.mark.parametrize("body", ['{"choices": "none"}', '{"choices": [1]}', "[1, 2]"])
def test_a_200_that_is_no_chat_completion_is_not_retried(body):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mgpt.llm.errors import ModelConfigError
    from mgpt.llm.backends.openai_model import OpenAIModel

    hits = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hits.append(1)
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    model = OpenAIModel("m", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1")

    async def run(stream: bool):
        try:
            if stream:
                return [c async for c in model.stream([ChatMessage(role="user", content="hi")])]
            return await model.complete([ChatMessage(role="user", content="hi")])
        finally:
            await model.aclose()

    try:
        with pytest.raises(ModelConfigError, match="--base-url"):
            asyncio.run(run(False))
        model = OpenAIModel("m", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1")
        with pytest.raises(ModelConfigError, match="--base-url"):  # a stream request: the same diagnosis
            asyncio.run(run(True))
    finally:
        server.shutdown()
        server.server_close()
    assert len(hits) == 2


# -- the workspace ----------------------------------------------------------------------------


def test_written_files_get_the_umask_and_keep_an_existing_mode(tmp_path):
    from mgpt.sandbox.workspace import Workspace

    ws = Workspace(tmp_path)
    old = os.umask(0o027)
    try:
        assert ws.write("a.py", "x").stat().st_mode & 0o777 == 0o640
        os.umask(0o022)
        assert ws.write("pkg/b.py", "x").stat().st_mode & 0o777 == 0o644
        (tmp_path / "run.sh").write_text("old")
        (tmp_path / "run.sh").chmod(0o755)
        assert ws.write("run.sh", "new").stat().st_mode & 0o777 == 0o755
    finally:
        os.umask(old)
    assert sorted(ws.written()) == ["a.py", "pkg/b.py", "run.sh"]
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_failed_attempt_needs_an_error_as_the_last_event(tmp_path):
    from mgpt.sandbox.workspace import Workspace
    from mgpt.agents.runlog import Event, RunLog

    ws = Workspace(tmp_path)
    ws.write("pkg/a.py", "x")
    assert ws.failed_attempt() is None  # no log at all
    log = RunLog(tmp_path / ".mgpt/run.jsonl")
    log.write(Event(kind="round"))
    assert ws.failed_attempt() is None  # killed, or still running: not ours to clear
    log.write(Event(kind="error", detail="boom"))
    log.close()
    failed = ws.failed_attempt()
    assert failed is not None and failed.files == ["pkg/a.py"] and failed.error == "boom"
    (tmp_path / "pkg/__pycache__").mkdir()
    (tmp_path / "pkg/__pycache__/a.pyc").write_bytes(b"\0")
    ws.clear(failed.files)
    assert list(tmp_path.iterdir()) == []


def test_local_models_cost_nothing():
    """The embedded model and any hf: folder run here: their cost is known and zero."""
    from mgpt.llm.backends.base import Usage
    from mgpt.llm.backends.cost import PriceTable

    usage = Usage(prompt_tokens=1000, completion_tokens=500)
    for name in ("local:smollm2-135m-instruct", "hf:/models/mine", "test"):
        assert PriceTable().cost(name, usage) == 0.0, name
    assert PriceTable().cost("openai:some-unknown-model", usage) is None

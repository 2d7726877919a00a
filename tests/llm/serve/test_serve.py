"""``mgpt serve`` over real HTTP on 127.0.0.1, driven by the official ``openai`` SDK."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="mgpt serve needs the [train] extra")
pytest.importorskip("starlette", reason="mgpt serve needs the [serve] extra")
pytest.importorskip("uvicorn", reason="mgpt serve needs the [serve] extra")
import httpx
import openai
import uvicorn

from mgpt.llm import ChatMessage
from mgpt.llm.local.testing import make_tiny_checkpoint
from mgpt.llm.local.model import LocalModel
from mgpt.llm.serve.app import ServeLimits, create_app, load_served_model

KEY = "sk-serve-test-key-123"
NAME = "tiny-llama"


def make_tiny_llama(folder: Path, *, context: int = 256, seed: int = 0) -> Path:
    """The tiny byte-level tokenizer with a chat template, and a random 2-layer Llama."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    make_tiny_checkpoint(folder, chat_template=True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


class Server:
    """Runs an app with uvicorn in a thread on a free 127.0.0.1 port."""

    def __init__(self, app):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()
        assert not self.thread.is_alive()


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


LIMITS = ServeLimits(max_body_bytes=20_000, max_messages=8, max_tokens=64, default_max_tokens=16)


@pytest.fixture(scope="module")
def served(checkpoint):
    return load_served_model(checkpoint, name=NAME, device="cpu")


@pytest.fixture(scope="module")
def server(served):
    with Server(create_app(served, api_key=KEY, limits=LIMITS)) as s:
        yield s


@pytest.fixture
def client(server):
    with openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=60) as c:
        yield c


def ask(client, text="hello there", **kw):
    kw.setdefault("max_tokens", 8)
    return client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": text}], **kw)


def test_models_and_health(server, client):
    assert [m.id for m in client.models.list()] == [NAME]
    health = httpx.get(f"http://127.0.0.1:{server.port}/health")
    assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["model"] == NAME


def test_completion_matches_the_local_backend(client, checkpoint):
    """Greedy by default, formatted with the chat template exactly as hf:<dir> does."""
    response = ask(client, max_tokens=8)
    choice = response.choices[0]
    local = asyncio.run(LocalModel(checkpoint, max_new_tokens=8).complete([ChatMessage(role="user", content="hello there")]))
    assert choice.message.role == "assistant" and choice.message.content == local.text
    assert choice.finish_reason == local.finish_reason
    assert response.usage.prompt_tokens == local.usage.prompt_tokens
    assert response.usage.completion_tokens == local.usage.completion_tokens
    assert response.model == NAME and response.id.startswith("chatcmpl-")


def test_streaming_gives_the_same_answer(client):
    whole = ask(client, "stream me", max_tokens=10).choices[0].message.content
    chunks = list(ask(client, "stream me", max_tokens=10, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes in (["length"], ["stop"])
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_default_max_tokens_and_stop(client):
    response = ask(client, "go on", max_tokens=None)
    assert response.usage.completion_tokens <= LIMITS.default_max_tokens
    text = ask(client, "go on", max_tokens=20).choices[0].message.content
    if len(text) >= 6:
        stop = text[3:5]
        cut = ask(client, "go on", max_tokens=20, stop=[stop])
        assert cut.choices[0].message.content == text[: text.find(stop)]
        assert cut.choices[0].finish_reason == "stop"


def test_concurrent_requests_are_batched_and_equal_sequential_answers(server, served):
    prompts = ["a", "the quick brown fox", "hello there, how are you doing today?", "roles turn ideas", "x y", "perplexity"]
    with openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=60) as c:
        sequential = [ask(c, p, max_tokens=12).choices[0].message.content for p in prompts]

    async def together():
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=60) as ac:
            return await asyncio.gather(
                *(ac.chat.completions.create(model=NAME, messages=[{"role": "user", "content": p}], max_tokens=12) for p in prompts)
            )

    before = served.engine.stats.max_batch_seen
    served.engine.stats.max_batch_seen = 0
    batched = [r.choices[0].message.content for r in asyncio.run(together())]
    assert batched == sequential
    assert served.engine.stats.max_batch_seen > 1
    served.engine.stats.max_batch_seen = max(before, served.engine.stats.max_batch_seen)


def test_shared_system_prompt_is_reused(client, served):
    system = "You are a careful engineer who writes small, tested Python modules. " * 2
    reused = served.engine.stats.prefix_tokens_reused
    for question in ("first question", "another one"):
        client.chat.completions.create(
            model=NAME, max_tokens=2,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
        )
    assert served.engine.stats.prefix_tokens_reused - reused >= 20


# -- errors -----------------------------------------------------------------------------------


def _raw(server, body: bytes | str, key=KEY, path="/chat/completions"):
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return httpx.post(server.base_url + path, content=body, headers=headers, timeout=30)


def _error(response, status):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def test_bad_json_is_a_400(server):
    error = _error(_raw(server, b"{not json"), 400)
    assert error["code"] == "invalid_json"
    _error(_raw(server, b"[1, 2]"), 400)


def test_unknown_model_is_a_404(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["code"] == "model_not_found" and NAME in info.value.body["message"]


def test_missing_or_bad_fields_are_400s(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=NAME, messages=[])
    assert info.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError, match="role"):
        client.chat.completions.create(model=NAME, messages=[{"role": "wizard", "content": "hi"}])
    with pytest.raises(openai.BadRequestError) as info:
        ask(client, temperature=3)
    assert info.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as info:
        ask(client, tools=[{"type": "function", "function": {"parameters": {}}}])
    assert info.value.body["param"] == "tools.0"
    with pytest.raises(openai.BadRequestError):
        ask(client, n=2)


def test_missing_messages_is_a_400(server):
    error = _error(_raw(server, json.dumps({"model": NAME})), 400)
    assert error["param"] == "messages"


def test_oversized_requests_are_refused(server, client):
    error = _error(_raw(server, json.dumps({"model": NAME, "messages": [{"role": "user", "content": "x" * 30_000}]})), 413)
    assert error["code"] == "request_too_large"
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": "hi"}] * 9)
    assert info.value.body["code"] == "too_many_messages"
    with pytest.raises(openai.BadRequestError) as info:
        ask(client, max_tokens=65)
    assert info.value.body["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError) as info:  # ~1900 tokens > the 256-token context
        ask(client, "the quick brown fox " * 400)
    assert info.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as info:  # the prompt fits, the answer would not
        ask(client, "the quick brown fox " * 50, max_tokens=64)
    assert info.value.body["code"] == "context_length_exceeded"


def test_bad_or_missing_key_is_a_401(server):
    with openai.OpenAI(base_url=server.base_url, api_key="sk-wrong-key", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError):
            ask(c)
        with pytest.raises(openai.AuthenticationError):
            c.models.list()
    response = httpx.get(server.base_url + "/models")
    assert _error(response, 401)["code"] == "invalid_api_key"
    assert KEY not in response.text


def test_unknown_route_is_a_json_404(server):
    _error(httpx.get(server.base_url + "/completions"), 404)


def test_json_schema_without_the_constrained_extra_is_a_clear_400(client, monkeypatch):
    import mgpt.llm

    monkeypatch.setitem(sys.modules, "mgpt.llm.local.constrained", None)  # as if not installed
    monkeypatch.delattr(mgpt.llm, "constrained", raising=False)
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError, match="constrained-decoding extra") as info:
        ask(client, response_format=schema)
    assert info.value.body["param"] == "response_format"
    with pytest.raises(openai.BadRequestError, match="response_format"):
        ask(client, response_format={"type": "yaml"})


def test_json_schema_is_decoded_under_the_constraint(client):
    pytest.importorskip("xgrammar", reason="constrained decoding needs xgrammar")
    pytest.importorskip("mgpt.llm.local.constrained", reason="constrained decoding is not installed")
    schema = {
        "type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}}
    for question in ("is it ok?", "another question", "a third one"):  # a random model obeys the grammar
        response = ask(client, question, max_tokens=40, response_format=fmt)
        assert json.loads(response.choices[0].message.content) in ({"ok": True}, {"ok": False})
        assert response.choices[0].finish_reason == "stop"
    # A random model rambles inside strings; the matcher closes the object before max_tokens.
    for max_tokens in (40, 60):
        answer = ask(client, "an object", max_tokens=max_tokens, response_format={"type": "json_object"})
        assert isinstance(json.loads(answer.choices[0].message.content), dict)
        assert answer.usage.completion_tokens <= max_tokens


def test_a_constraint_factory_plugs_into_decoding(checkpoint):
    """The per-request hook: a factory turns response_format into a token mask."""
    served = load_served_model(checkpoint, name=NAME, device="cpu")
    tokenizer = served.loaded.tokenizer
    digits = [tokenizer.convert_tokens_to_ids(d) for d in "0123456789"]
    calls = []

    def factory(response_format, served):
        calls.append(response_format["type"])
        allowed = torch.zeros(served.vocab_size, dtype=torch.bool)
        allowed[digits] = True
        return lambda generated: allowed

    with Server(create_app(served, constraint_factory=factory)) as s:
        with openai.OpenAI(base_url=s.base_url, api_key="unused", max_retries=0) as c:
            answer = ask(c, max_tokens=6, response_format={"type": "json_object"}).choices[0].message.content
            plain = ask(c, max_tokens=6).choices[0].message.content
    assert calls == ["json_object"]
    assert answer.isdigit() and len(answer) == 6
    assert not plain.isdigit()


# -- the command ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_serve(checkpoint, *args, env=None):
    port = _free_port()
    log = open(Path(checkpoint).parent / f"serve-{port}.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mgpt", "serve", "-m", f"hf:{checkpoint}", "--port", str(port), "--threads", "1", *args],
        stdout=log, stderr=subprocess.STDOUT, env=env or os.environ.copy(),
    )
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, Path(log.name).read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, port, log
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "mgpt serve did not come up"
        time.sleep(0.2)


@pytest.mark.slow
def test_serve_command_stops_cleanly_on_sigterm_mid_stream(tmp_path):
    checkpoint = make_tiny_llama(tmp_path / "ckpt", context=100_000)
    env = {**os.environ, "SERVE_TEST_KEY": KEY}
    proc, port, log = _start_serve(checkpoint, "--api-key-env", "SERVE_TEST_KEY", "--max-tokens", "50000",
                                   "--graceful-timeout", "2", env=env)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=30)
        stream = client.chat.completions.create(
            model="ckpt", messages=[{"role": "user", "content": "go"}], max_tokens=50_000, stream=True
        )
        chunks = iter(stream)
        next(chunks)  # the request is running
        proc.send_signal(signal.SIGTERM)
        # The answer would take hours: after the graceful timeout it is cut with an error
        # event the client sees, not a dropped connection, and the server exits 0.
        with pytest.raises(openai.APIError, match="shutting down"):
            for _ in chunks:
                pass
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    log.seek(0)
    text = log.read()
    assert "engine stopped" in text and "Traceback" not in text and KEY not in text


def test_serve_refuses_a_missing_key_variable_and_non_local_specs(tmp_path):
    from typer.testing import CliRunner

    from mgpt.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["serve", "-m", "hf:/nowhere", "--api-key-env", "NO_SUCH_VAR_FOR_MGPT"])
    assert result.exit_code == 2 and "NO_SUCH_VAR_FOR_MGPT" in result.output
    result = runner.invoke(app, ["serve", "-m", f"hf:{tmp_path}"])
    assert result.exit_code == 2 and "config.json" in result.output
    (tmp_path / "key").write_text("")
    result = runner.invoke(app, ["serve", "-m", "hf:/nowhere", "--api-key-file", str(tmp_path / "key")])
    assert result.exit_code == 2 and "empty" in result.output


@pytest.mark.slow
def test_mgpt_run_against_mgpt_serve(tmp_path):
    """The whole company on a served tiny model: the run ends with a truthful exit code
    and the server's log shows the calls."""
    checkpoint = make_tiny_llama(tmp_path / "company-model", context=8192)
    proc, port, log = _start_serve(checkpoint, "--served-name", "tiny", "--default-max-tokens", "48")
    try:
        run = subprocess.run(
            [sys.executable, "-m", "mgpt", "run", "a todo app", "-m", "openai:tiny",
             "--base-url", f"http://127.0.0.1:{port}/v1", "-w", str(tmp_path / "ws"), "--max-rounds", "6",
             "--fix-rounds", "0", "--test-timeout", "20"],
            capture_output=True, text=True, timeout=600,
        )
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    log.seek(0)
    served_log = log.read()
    calls = served_log.count("POST /v1/chat/completions")
    assert calls >= 1, served_log
    # Gibberish from a random model cannot pass tests: 1 (tests failed), 2 (an error the run
    # reports), or 3 (stopped by a limit) — never 0, and never a traceback.
    assert run.returncode in (1, 2, 3), run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    if run.returncode != 2:
        assert f"model calls" in run.stderr + run.stdout


def test_serve_picks_the_lean_decoder_for_llama_on_cpu_and_hf_when_asked(checkpoint, monkeypatch):
    """The default forward path is the lean decoder with int4 weights (a Llama on the
    CPU); --decoder hf (or $MGPT_DECODER) keeps the HF model; a wrong name is refused."""
    from mgpt.llm.errors import ModelConfigError

    monkeypatch.delenv("MGPT_DECODER", raising=False)
    default = load_served_model(checkpoint, name=NAME, device="cpu", threads=1)
    assert default.decoder == "fast-int4" and default.engine._fast is not None
    monkeypatch.setenv("MGPT_DECODER", "hf")
    plain = load_served_model(checkpoint, name=NAME, device="cpu", threads=1)
    assert plain.decoder == "hf" and plain.engine._fast is None
    fp32 = load_served_model(checkpoint, name=NAME, device="cpu", decoder="fast", threads=1)
    assert fp32.decoder == "fast"
    # fp32 lean decoder and the HF model give the same greedy answer.
    prompt = plain.prompt_ids([{"role": "user", "content": "hello"}])
    try:
        from mgpt.llm.serve.engine import SamplingParams

        a = plain.engine.generate([prompt], SamplingParams(max_tokens=10, ignore_eos=True))[0]
        b = fp32.engine.generate([prompt], SamplingParams(max_tokens=10, ignore_eos=True))[0]
    finally:
        plain.engine.stop()
        fp32.engine.stop()
    assert a.token_ids == b.token_ids
    with pytest.raises(ModelConfigError, match="unknown decoder"):
        load_served_model(checkpoint, decoder="turbo")


def test_a_model_mgpt_trained_is_served_with_int8_weights_by_default(checkpoint, tmp_path, monkeypatch):
    """int4 would put a fine-tune's small weight changes back on the base's values, so a
    folder mgpt's trainer wrote (metrics.jsonl beside the model; for LoRA, beside the
    ``merged`` folder) defaults to fast-int8; $MGPT_DECODER and --decoder still win."""
    import shutil

    from mgpt.llm.local.generate import quantized_decoder

    monkeypatch.delenv("MGPT_DECODER", raising=False)
    tuned = tmp_path / "tuned"
    shutil.copytree(checkpoint, tuned)
    assert quantized_decoder(tuned) == "fast-int4"
    (tuned / "metrics.jsonl").write_text('{"kind": "train", "iter": 1, "loss": 1.0}\n')
    assert quantized_decoder(tuned) == "fast-int8"
    lora = tmp_path / "lora"
    shutil.copytree(checkpoint, lora / "merged")
    (lora / "metrics.jsonl").write_text("")
    assert quantized_decoder(lora / "merged") == "fast-int8"
    served = load_served_model(tuned, name=NAME, device="cpu", threads=1)
    try:
        assert served.decoder == "fast-int8" and served.engine._fast is not None
    finally:
        served.engine.stop()
    monkeypatch.setenv("MGPT_DECODER", "fast-int4")
    asked = load_served_model(tuned, name=NAME, device="cpu", threads=1)
    asked.engine.stop()
    assert asked.decoder == "fast-int4"


def test_serve_cli_refuses_an_unknown_decoder(checkpoint):
    from typer.testing import CliRunner

    from mgpt.cli import app

    result = CliRunner().invoke(app, ["serve", "-m", f"hf:{checkpoint}", "--decoder", "turbo", "--threads", "1"])
    assert result.exit_code == 2 and "unknown decoder" in result.output

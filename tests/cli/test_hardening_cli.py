"""Hardening of `mgpt run`: keys kept out of argv, one-line errors for bad input, budgets
refused or bounded up front, retried timeouts, failed runs logged and retried in place.

Every test goes through the real command line (typer's CliRunner, or a subprocess where a
signal is needed); servers are started by the tests on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from openai_stub import OpenAIStub
from typer.testing import CliRunner

from mgpt.agents.runlog import read_log
from mgpt.cli import app
from testpaths import GOLDEN

TODO = GOLDEN / "todo_cli.jsonl"
ANSWERS = [json.loads(l)["response"]["text"] for l in TODO.read_text().splitlines() if '"type":"call"' in l]
KEY = "sk-hardening-test-key-0123456789"


def invoke(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def one_line_error(result, code: int = 2) -> str:
    """The error line of a failed command, checking it is a single line and no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [l for l in result.output.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("error: ")]
    assert len(errors) == 1, result.output
    return errors[0]


def golden_stub(*planned) -> OpenAIStub:
    """A stub answering with the golden todo app's recorded answers, in order."""
    answers = iter(ANSWERS)
    return OpenAIStub(planned, default=lambda body: next(answers))


# -- keys never on the command line ---------------------------------------------------------


def test_api_key_on_the_command_line_is_refused(tmp_path):
    result = invoke("run", "x", "-m", "openai:gpt-4o-mini", "--api-key", KEY, "-w", tmp_path / "ws")
    line = one_line_error(result)
    assert "--api-key is refused" in line and "MGPT_API_KEY" in line and "--api-key-file" in line
    assert KEY not in result.output
    assert not (tmp_path / "ws").exists()


def test_api_key_file_reaches_the_server_and_is_registered(tmp_path):
    from mgpt.agents import secrets

    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    with golden_stub() as stub:
        stub.require_key = KEY
        result = invoke("run", "build a todo app", "-m", "openai:stub-model", "--base-url", stub.base_url,
                        "--api-key-file", key_file, "-w", tmp_path / "ws", "--max-rounds", "1")
    assert result.exit_code == 3, result.output  # the round limit, after one good call
    assert len(stub.chat_requests) == 1
    assert stub.chat_requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert KEY in secrets.known({})
    assert "note:" not in result.output  # a private key file gets no warning
    for path in (tmp_path / "ws").rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="replace"), path


def test_config_key_file_is_relative_to_the_config_and_a_readable_one_gets_a_note(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "key").write_text(KEY)
    (tmp_path / "cfg" / "key").chmod(0o644)
    cfg = tmp_path / "cfg" / "config.toml"
    with golden_stub() as stub:
        stub.require_key = KEY
        cfg.write_text(f'model = "openai:stub-model"\nbase_url = "{stub.base_url}"\napi_key_file = "key"\n')
        result = invoke("run", "build a todo app", "--config", cfg, "-w", tmp_path / "ws", "--max-rounds", "1")
    assert result.exit_code == 3, result.output
    assert "can be read by other users: chmod 600" in result.output
    assert stub.chat_requests[0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    "content, expected",
    [(None, "does not exist"), (b"", "is empty"), (b"\xff\xfe\x00k\x00e\x00y", "not UTF-8"),
     ("dir", "is not a file"), (b"sk-one two", "has spaces")],
)
def test_bad_key_file_is_one_line(tmp_path, content, expected):
    key_file = tmp_path / "key"
    if content == "dir":
        key_file.mkdir()
    elif content is not None:
        key_file.write_bytes(content)
    result = invoke("run", "x", "-m", "openai:stub-model", "--base-url", "http://127.0.0.1:9/v1",
                    "--api-key-file", key_file, "-w", tmp_path / "ws")
    assert expected in one_line_error(result)
    assert not (tmp_path / "ws").exists()


# -- bad files and values are one line, exit 2 ----------------------------------------------


@pytest.mark.parametrize(
    "data, expected",
    [(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\xff\xed\xc1\x01", "not UTF-8"),        # a gzip file
     (b"\x00\x01\x02binary\x00", "not a transcript record"),                       # NULs, valid UTF-8
     (b'{"type": "header", "version": 1}\n[1, 2, 3]\n', ":2: not a transcript record"),
     (b'{"type": "call", "role": 5}\n', "not a transcript record"),
     ("dir", "is not a file")],
)
def test_unreadable_transcript_is_one_line(tmp_path, data, expected):
    transcript = tmp_path / "t.jsonl"
    if data == "dir":
        transcript.mkdir()
    else:
        transcript.write_bytes(data)
    result = invoke("run", "--replay", transcript, "-w", tmp_path / "ws")
    assert expected in one_line_error(result)


def test_non_utf8_config_file_is_one_line(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_bytes('model = "caf\u00e9"\n'.encode("latin-1"))
    result = invoke("run", "x", "--config", cfg, "-w", tmp_path / "ws")
    line = one_line_error(result)
    assert "not UTF-8" in line and str(cfg) in line


@pytest.mark.parametrize(
    "toml, key",
    [("model = 42", "model"), ("prices = 3", "prices"), ("base_url = []", "base_url"),
     ("api_key_env = 1", "api_key_env"), ("api_key = true", "api_key"), ("api_key_file = 7", "api_key_file"),
     ('timeout = "slow"', "timeout"), ("timeout = -1", "timeout"), ("max_tokens_per_call = 0", "max_tokens_per_call"),
     ("max_tokens_per_call = 1.5", "max_tokens_per_call"),
     ('[prices]\n"m" = 3', "prices.m"), ('[prices]\n"m" = [1, "x"]', "prices.m"),
     ('[prices]\n"m" = [true, 1]', "prices.m"), ('[prices]\n"m" = [-1, 1]', "prices.m"),
     ("model = [", "not valid TOML")],
)
def test_config_value_of_the_wrong_type_is_one_line(tmp_path, toml, key):
    cfg = tmp_path / "config.toml"
    cfg.write_text(toml + "\n")
    result = invoke("run", "--replay", TODO, "--config", cfg, "-w", tmp_path / "ws")
    line = one_line_error(result)
    assert key in line and str(cfg) in line
    assert not (tmp_path / "ws").exists()


def test_timeout_flag_of_zero_is_one_line(tmp_path):
    assert "--timeout" in one_line_error(invoke("run", "--replay", TODO, "--timeout", "0", "-w", tmp_path / "ws"))


class _WebPage:
    """A server that answers every request with 200 and a fixed body: an ordinary web page,
    or broken JSON."""

    def __init__(self, body: bytes, content_type: str):
        outer = self
        self.hits = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer()

            do_GET = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    "body, content_type, expected",
    [(b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>", "text/html", "a page that is not JSON"),
     (b'{"choices": [{"message": ', "application/json", "not valid JSON"),
     (b'{"status": "ok"}', "application/json", "not a chat completion")],
)
def test_a_server_answering_200_with_no_chat_completion_is_one_line(tmp_path, body, content_type, expected):
    page = _WebPage(body, content_type)
    try:
        result = invoke("run", "x", "-m", "openai:any", "--base-url", page.url, "-w", tmp_path / "ws")
    finally:
        page.close()
    line = one_line_error(result)
    assert expected in line and "--base-url" in line and "/v1" in line
    assert page.hits == 1  # not retried: a web page will not turn into an API
    events = list(read_log(tmp_path / "ws/.mgpt/run.jsonl"))
    assert events[-1].kind == "error" and expected in events[-1].detail


# -- budgets ---------------------------------------------------------------------------------


def test_budget_for_a_model_without_a_price_is_refused_with_the_fix(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text("")
    with golden_stub() as stub:
        result = invoke("run", "x", "-m", "openai:stub-model", "--base-url", stub.base_url,
                        "--budget", "0.5", "--config", cfg, "-w", tmp_path / "ws")
        line = one_line_error(result)
        assert "no price for openai:stub-model" in line
        assert '[prices]' in line and f"{cfg}" in line and '"stub-model" = [' in line
        assert stub.chat_requests == [] and not (tmp_path / "ws").exists()

        # The fix, as the message shows it, works.
        cfg.write_text('[prices]\n"stub-model" = [0.15, 0.60]\n')
        result = invoke("run", "build a todo app", "-m", "openai:stub-model", "--base-url", stub.base_url,
                        "--budget", "0.5", "--config", cfg, "-w", tmp_path / "ws", "--max-rounds", "1")
    assert result.exit_code == 3, result.output
    assert len(stub.chat_requests) == 1


def test_a_replay_is_priced_as_the_recorded_model(tmp_path):
    # todo_cli.jsonl recorded openai:gpt-4o-mini: a budget applies, and a tiny one stops it at once.
    result = invoke("run", "--replay", TODO, "-w", tmp_path / "a", "--budget", "0.0001")
    assert result.exit_code == 3, result.output
    assert "budget of $0.0001 would not cover" in result.output
    # A transcript of a model with no known price gets the same refusal as that model would.
    unpriced = tmp_path / "unpriced.jsonl"
    lines = TODO.read_text().splitlines()
    header = json.loads(lines[0]) | {"model": "openai:my-finetune"}
    unpriced.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    line = one_line_error(invoke("run", "--replay", unpriced, "-w", tmp_path / "b", "--budget", "1"))
    assert "no price for openai:my-finetune" in line and '"my-finetune" = [' in line
    # Test models and local checkpoints cost nothing, so a USD budget is no problem for them.
    from mgpt.llm.backends.cost import PriceTable

    assert PriceTable().price("test") == (0.0, 0.0) and PriceTable().price("hf:tiny") == (0.0, 0.0)


def test_every_request_carries_the_per_call_cap(tmp_path):
    cfg = tmp_path / "config.toml"
    with OpenAIStub(default=lambda body: ANSWERS[0]) as stub:  # the PRD, for each run's one call
        result = invoke("run", "build a todo app", "-m", "openai:stub-model", "--base-url", stub.base_url,
                        "-w", tmp_path / "a", "--max-rounds", "1")
        assert result.exit_code == 3, result.output
        cfg.write_text("max_tokens_per_call = 700\n")
        result = invoke("run", "build a todo app", "-m", "openai:stub-model", "--base-url", stub.base_url,
                        "-w", tmp_path / "b", "--max-rounds", "1", "--config", cfg)
        assert result.exit_code == 3, result.output
    assert [r.json["max_tokens"] for r in stub.chat_requests] == [4096, 700]


def test_token_budget_refuses_a_call_whose_worst_case_does_not_fit(tmp_path):
    # The first call's prompt is ~600 tokens: with a 4096-token cap per call, 4000 cannot hold it.
    with golden_stub() as stub:
        result = invoke("run", "build a todo app", "-m", "openai:stub-model", "--base-url", stub.base_url,
                        "-w", tmp_path / "ws", "--max-tokens", "4000")
    assert result.exit_code == 3, result.output
    stop = list(read_log(tmp_path / "ws/.mgpt/run.jsonl"))[-1]
    assert stop.kind == "stop" and stop.data["reason"] == "budget"
    assert "token budget of 4000 would not cover ProductManager's next model call" in stop.detail
    assert "up to 4096 completion tokens" in stop.detail
    assert stub.chat_requests == []


# -- timeouts --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_hung_request_is_retried_after_the_timeout(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text("timeout = 600\n")  # the flag beats the file
    with golden_stub(("sleep", 8.0)) as stub:
        started = time.monotonic()
        result = invoke("run", "build a todo app", "-m", "openai:stub-model", "--base-url", stub.base_url,
                        "-w", tmp_path / "ws", "--max-rounds", "1", "--timeout", "0.5", "--config", cfg)
        seconds = time.monotonic() - started
    assert result.exit_code == 3, result.output  # the round limit: the PM's call was answered
    assert len(stub.chat_requests) == 2
    assert seconds < 7  # the hung request was abandoned, not waited out
    assert (tmp_path / "ws/docs/prd.md").is_file()


# -- failed runs -----------------------------------------------------------------------------


def test_a_failed_run_logs_an_error_and_a_retry_needs_no_force(tmp_path):
    ws = tmp_path / "ws"
    with golden_stub(("ok", ANSWERS[0]), ("status", 400, {}, "this model cannot do that")) as stub:
        result = invoke("run", "build a todo app", "-m", "openai:stub-model", "--base-url", stub.base_url, "-w", ws)
    line = one_line_error(result)
    assert "this model cannot do that" in line
    events = list(read_log(ws / ".mgpt/run.jsonl"))
    assert events[-1].kind == "error" and "this model cannot do that" in events[-1].detail
    assert events[-1].data["type"] == "ModelConfigError"
    assert (ws / "docs/prd.md").is_file()

    # Generated files get the permissions a plain open() gives (umask 022 here: 0644).
    umask = os.umask(0)
    os.umask(umask)
    assert (ws / "docs/prd.md").stat().st_mode & 0o777 == 0o666 & ~umask

    # The retry, same command shape, no --force: the failed attempt's files are cleared.
    result = invoke("run", "--replay", TODO, "-w", ws)
    assert result.exit_code == 0, result.output
    assert "cleared 2 file(s) of a failed attempt" in result.output
    events = list(read_log(ws / ".mgpt/run.jsonl"))
    assert events[0].kind == "workspace" and events[-1].kind == "stop"


def test_a_failed_attempt_with_a_users_file_still_needs_force(tmp_path):
    ws = tmp_path / "ws"
    with golden_stub(("ok", ANSWERS[0]), ("status", 400, {}, "no")) as stub:
        invoke("run", "build a todo app", "-m", "openai:stub-model", "--base-url", stub.base_url, "-w", ws)
    (ws / "notes.txt").write_text("mine")
    line = one_line_error(invoke("run", "--replay", TODO, "-w", ws))
    assert "not empty" in line and "--force" in line and "failed run is reused without --force" in line
    assert (ws / "notes.txt").read_text() == "mine" and (ws / "docs/prd.md").is_file()
    # An edited generated file counts as the user's too.
    (ws / "notes.txt").unlink()
    (ws / "docs/prd.md").write_text("my edits")
    assert "not empty" in one_line_error(invoke("run", "--replay", TODO, "-w", ws))
    assert (ws / "docs/prd.md").read_text() == "my edits"


def test_a_finished_run_is_not_cleared(tmp_path):
    ws = tmp_path / "ws"
    assert invoke("run", "--replay", TODO, "-w", ws, "--max-rounds", "1").exit_code == 3
    assert "not empty" in one_line_error(invoke("run", "--replay", TODO, "-w", ws))


@pytest.mark.slow
def test_ctrl_c_logs_an_error_event_and_exits_130_without_a_traceback(tmp_path):
    ws = tmp_path / "ws"
    with OpenAIStub([("sleep", 30.0)]) as stub:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mgpt", "run", "build a todo app", "-m", "openai:stub-model",
             "--base-url", stub.base_url, "-w", str(ws), "--timeout", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not stub.chat_requests and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            assert stub.chat_requests, proc.communicate(timeout=10)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "error: interrupted" in err
    events = list(read_log(ws / ".mgpt/run.jsonl"))
    assert events[-1].kind == "error" and events[-1].data["interrupted"] is True

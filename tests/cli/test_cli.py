"""The command line: configuration errors, workspace refusal, exit codes, a live-model run."""

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from mgpt import __version__
from mgpt.cli import app
from testpaths import GOLDEN

TODO = GOLDEN / "todo_cli.jsonl"


def invoke(*args, env=None):
    return CliRunner().invoke(app, list(args), env=env)


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"mgpt {__version__}"


def test_no_model_configured_says_how(tmp_path):
    result = invoke("run", "a todo app", "-w", str(tmp_path / "ws"))
    assert result.exit_code == 2
    assert "no model configured" in result.output and "--model" in result.output
    assert not (tmp_path / "ws").exists()


def test_no_api_key_says_what_to_set(tmp_path, monkeypatch):
    from mgpt.llm.backends import guard

    monkeypatch.setattr(guard, "ALLOW_MODEL_REQUESTS", True)
    result = invoke("run", "x", "-m", "openai:gpt-4o-mini", "-w", str(tmp_path / "ws"))
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.output


def test_unknown_spec_and_conflicting_flags(tmp_path):
    assert "unknown model spec" in invoke("run", "x", "-m", "gpt4", "-w", str(tmp_path)).output
    result = invoke("run", "--replay", str(TODO), "-m", "openai:x", "-w", str(tmp_path / "w"))
    assert result.exit_code == 2 and "not both" in result.output


def test_missing_transcript(tmp_path):
    result = invoke("run", "--replay", str(tmp_path / "nope.jsonl"), "-w", str(tmp_path / "w"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_non_empty_workspace_is_refused_unless_forced(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("mine")
    result = invoke("run", "--replay", str(TODO), "-w", str(ws))
    assert result.exit_code == 2 and "not empty" in result.output and "--force" in result.output
    assert [p.name for p in ws.iterdir()] == ["notes.txt"]
    result = invoke("run", "--replay", str(TODO), "-w", str(ws), "--force")
    assert result.exit_code == 0, result.output
    assert (ws / "notes.txt").read_text() == "mine"


def test_config_file_supplies_the_model(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'model = "replay:{TODO}"\n')
    result = invoke("run", "build a todo app", "-w", str(tmp_path / "ws"), "--config", str(cfg))
    assert result.exit_code == 0, result.output
    cfg.write_text('modle = "x"\n')
    result = invoke("run", "x", "-w", str(tmp_path / "ws2"), "--config", str(cfg))
    assert result.exit_code == 2 and "unknown key(s) modle" in result.output


def test_round_limit_exit_code(tmp_path):
    result = invoke("run", "--replay", str(TODO), "-w", str(tmp_path / "ws"), "--max-rounds", "2")
    assert result.exit_code == 3
    assert "round limit of 2" in result.output


def test_budget_stops_before_the_next_call(tmp_path):
    # A call runs only if its worst case (prompt estimate + the longest recorded answer) fits.
    result = invoke("run", "--replay", str(TODO), "-w", str(tmp_path / "ws"), "--max-tokens", "2000")
    assert result.exit_code == 3
    stop = [json.loads(l) for l in (tmp_path / "ws/.mgpt/run.jsonl").read_text().splitlines()][-1]
    assert stop["kind"] == "stop" and "token budget of 2000 would not cover" in stop["detail"]
    records = [json.loads(l) for l in (tmp_path / "ws/.mgpt/transcript.jsonl").read_text().splitlines()]
    calls = [r for r in records if r["type"] == "call"]
    assert len(calls) >= 1
    used = sum(c["response"]["usage"]["prompt_tokens"] + c["response"]["usage"]["completion_tokens"] for c in calls)
    assert used <= 2000
    # Too small for even the first call's worst case: nothing is asked.
    result = invoke("run", "--replay", str(TODO), "-w", str(tmp_path / "ws2"), "--max-tokens", "10")
    assert result.exit_code == 3 and "token budget of 10" in result.output
    records = [json.loads(l) for l in (tmp_path / "ws2/.mgpt/transcript.jsonl").read_text().splitlines()]
    assert not [r for r in records if r["type"] == "call"]


def test_record_writes_a_replayable_transcript(tmp_path):
    out = tmp_path / "again.jsonl"
    assert invoke("run", "--replay", str(TODO), "-w", str(tmp_path / "a"), "--record", str(out)).exit_code == 0
    result = invoke("run", "--replay", str(out), "-w", str(tmp_path / "b"))
    assert result.exit_code == 0, result.output
    assert "differ from the recording" not in result.output


def test_full_run_against_an_openai_compatible_server(tmp_path, monkeypatch):
    """The whole company over real HTTP with the real openai SDK, key kept out of everything."""
    from openai_stub import OpenAIStub

    calls = [json.loads(l) for l in TODO.read_text().splitlines() if '"type":"call"' in l]
    answers = iter([c["response"]["text"] for c in calls])
    secret = "sk-test-do-not-leak-1234"
    with OpenAIStub(default=lambda body: next(answers)) as stub:
        stub.push(("status", 429, {"Retry-After": "0"}))  # the first call is rate limited once
        ws = tmp_path / "ws"
        result = invoke("run", "build a todo app", "-m", "openai:stub-model", "--base-url", stub.base_url,
                        "-w", str(ws), env={"MGPT_API_KEY": secret})
        assert result.exit_code == 0, result.output
        assert len(stub.chat_requests) == len(calls) + 1
        assert all(r.headers["authorization"] == f"Bearer {secret}" for r in stub.chat_requests)
    assert "9 passed" in result.output
    for path in ws.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys\nfrom mgpt.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'openai', 'numpy', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_workspace_that_is_a_file_is_a_clear_error(tmp_path):
    target = tmp_path / "afile"
    target.write_text("x")
    result = invoke("run", "--replay", str(TODO), "-w", str(target))
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output
    assert target.read_text() == "x"


def test_an_empty_idea_is_told_what_its_command_wants_and_nothing_is_written(tmp_path):
    for args, expected in [
        (("run", " "), 'say what to build: mgpt run "a todo app'),
        (("write", ""), 'say what to write: mgpt write "a HOWTO'),
        (("run", "--sop", "recommend", ""), "say what the recommend team should work on"),
    ]:
        ws = tmp_path / args[0] / str(len(args))
        result = invoke(*args, "-w", str(ws), "-m", "test")
        assert result.exit_code == 2 and expected in result.output, result.output
        assert not ws.exists()

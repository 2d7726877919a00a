"""``mgpt run`` with nothing configured runs on the embedded model (here: a tiny converted
stand-in in a temporary MGPT_HOME), and says how to get it when it is missing."""

import json
import os
import shutil

import pytest

pytest.importorskip("torch", reason="the embedded model needs the [train] extra")
pytest.importorskip("gguf", reason="converting a GGUF needs the [all] extra (gguf)")

from typer.testing import CliRunner

from mgpt.cli import app
from mgpt.llm.local.store import DEFAULT_MODEL, convert_gguf
from mgpt.llm.local.testing import write_tiny_gguf
from mgpt.cli.models import NO_MODEL_NOTICE, SMALL_MODEL_NOTE


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    write_tiny_gguf(root / "tiny.gguf", context=8192)  # the PM's prompt is ~2,700 tiny-vocabulary tokens
    return convert_gguf(root / "tiny.gguf", root / "model")


@pytest.mark.slow
def test_nothing_configured_runs_on_the_embedded_model(tiny_model, tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(tiny_model, home / "models" / DEFAULT_MODEL)
    monkeypatch.setenv("MGPT_HOME", str(home))
    ws = tmp_path / "ws"
    result = CliRunner().invoke(app, ["run", "build a todo app", "-w", str(ws), "--max-rounds", "1", "--threads", "1"])
    assert NO_MODEL_NOTICE in result.output
    header = json.loads((ws / ".mgpt" / "transcript.jsonl").read_text().splitlines()[0])
    assert header["model"] == f"local:{DEFAULT_MODEL}"
    calls = [json.loads(line) for line in (ws / ".mgpt" / "run.jsonl").read_text().splitlines()]
    assert any(event["kind"] == "llm_call" for event in calls)
    # A random tiny model cannot write a PRD: the run ends in an error (2) or at the round
    # bound (3), and either way the output says what to do about the model.
    assert result.exit_code in (2, 3), result.output
    # (the note may sit in the summary table: read it without the table's borders)
    words = [w for w in result.output.split() if w.strip("│─┌┐└┘├┤┬┴┼╭╮╰╯")]
    assert " ".join(SMALL_MODEL_NOTE.split()) in " ".join(words)


def test_missing_model_and_unreachable_index_is_one_line_naming_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("MGPT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    ws = tmp_path / "ws"
    result = CliRunner().invoke(app, ["run", "build a todo app", "-w", str(ws)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines[0] == NO_MODEL_NOTICE
    assert "fetching it once" in lines[1]
    assert len(lines) == 3 and lines[2].startswith("error:") and "run `mgpt models pull`" in lines[2]
    assert not ws.exists()

"""Whole runs with concurrent calls: a replay is byte-identical at any --parallel (and to the
recording), and a run killed with calls in flight resumes to exactly the same project."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mgpt.cli import app
from mgpt.llm.backends.replay import Transcript
from mgpt.llm.serve.latency import LatencyProfile, LatencyServer
from testpaths import GOLDEN

LIBRARY = GOLDEN / "lending_library.jsonl"


def _project(ws: Path) -> dict[str, bytes]:
    return {p.relative_to(ws).as_posix(): p.read_bytes() for p in sorted(ws.rglob("*"))
            if p.is_file() and p.relative_to(ws).parts[0] not in (".mgpt", ".git", ".venv")
            and "__pycache__" not in p.parts}


def _records(path: Path) -> list[str]:
    """A transcript's lines after its header (the header holds the run's own git commit)."""
    return path.read_text().splitlines()[1:]


@pytest.mark.slow
def test_a_replay_is_byte_identical_at_any_parallel(tmp_path):
    projects, transcripts = [], []
    for parallel in ("1", "16"):
        ws, out = tmp_path / f"ws{parallel}", tmp_path / f"t{parallel}.jsonl"
        result = CliRunner().invoke(app, ["run", "--replay", str(LIBRARY), "-w", str(ws), "--parallel", parallel,
                                          "--record", str(out)])
        assert result.exit_code == 0, result.output
        # The fix prompt carries pytest's output with its object addresses normalised, so
        # the recording's prompts are today's, byte for byte: no drift.
        assert "differ from the recording" not in result.output
        projects.append(_project(ws))
        transcripts.append(_records(out))
    assert projects[0] == projects[1] and len(projects[0]) > 25
    assert transcripts[0] == transcripts[1] == _records(LIBRARY)


def _calls_on_disk(ws: Path) -> list[tuple[str, str, int]]:
    path = ws / ".mgpt/transcript.jsonl"
    if not path.is_file():
        return []
    return [(c.role, c.action, c.turn) for c in Transcript.load(path, resuming=True).calls]


def _mgpt(*args: str) -> list[str]:
    return [sys.executable, "-m", "mgpt", "run", *args]


@pytest.mark.slow
def test_kill_9_while_files_are_written_together_then_resume(tmp_path):
    reference = tmp_path / "reference"
    assert CliRunner().invoke(app, ["run", "--replay", str(LIBRARY), "-w", str(reference)]).exit_code == 0
    idea = Transcript.load(LIBRARY).header.idea
    env = {k: v for k, v in os.environ.items() if not k.startswith("MGPT_CRASH")}
    ws = tmp_path / "ws"
    profile = LatencyProfile(ttft=0.2, tokens_per_s=300)
    with LatencyServer([LIBRARY], profile) as server:
        child = subprocess.Popen(_mgpt(idea, "-w", str(ws), "--model", "openai:simulated", "--base-url",
                                       server.base_url), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        in_flight = 0
        while time.monotonic() < deadline and child.poll() is None:
            written = [k for k in _calls_on_disk(ws) if k[1] == "WriteCode"]
            in_flight = server.in_flight
            if len(written) >= 3 and in_flight >= 2:
                break
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
    killed = _calls_on_disk(ws)
    assert in_flight >= 2, "the kill must land while several calls are in flight"
    assert 3 <= len([k for k in killed if k[1] == "WriteCode"]) < 12
    with LatencyServer([LIBRARY], LatencyProfile(ttft=0.0, tokens_per_s=100000)) as server:
        resumed = subprocess.run(_mgpt("--resume", "-w", str(ws), "--model", "openai:simulated", "--base-url",
                                       server.base_url), env=env, capture_output=True, text=True, timeout=600)
        made = len(server.served)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # Every call the killed run had recorded was answered from its transcript; only the rest
    # were asked, and the project is byte for byte the one an uninterrupted run makes.
    assert f"resume: {len(killed)} model call(s) answered from the workspace transcript, {27 - len(killed)} made" \
        in resumed.stderr
    assert made == 27 - len(killed)
    keys = _calls_on_disk(ws)
    assert len(keys) == len(set(keys)) == 27
    assert _project(ws) == _project(reference)

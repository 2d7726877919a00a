"""Untrusted paths and untrusted code."""

import asyncio
import sys
from pathlib import Path

import pytest

from mgpt.sandbox.isolation import Limits, run_pytest, run_sandboxed
from mgpt.sandbox.workspace import UnsafePathError, Workspace


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    return Workspace(root)


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/etc/passwd", "absolute"),
        ("C:/windows/x.py", "absolute"),
        ("~/x.py", "absolute"),
        ("../outside.py", "climbs out"),
        ("pkg/../../outside.py", "climbs out"),
        ("pkg\\..\\..\\x.py", "climbs out"),
        ("", "empty"),
        (".mgpt/transcript.jsonl", "reserved"),
        (".git/config", "reserved"),
        ("a\x00b", "NUL"),
    ],
)
def test_unsafe_paths_are_refused(ws, path, reason):
    with pytest.raises(UnsafePathError, match=reason):
        ws.write(path, "x")
    assert list(ws.root.iterdir()) == []


def test_links_out_of_the_workspace_are_refused(ws, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (ws.root / "escape").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="link"):
        ws.write("escape/evil.py", "x")
    (ws.root / "file_link.py").symlink_to(outside / "target.py")
    with pytest.raises(UnsafePathError, match="link"):
        ws.write("file_link.py", "x")
    assert list(outside.iterdir()) == []


def test_links_inside_the_workspace_are_fine(ws):
    (ws.root / "real").mkdir()
    (ws.root / "alias").symlink_to(ws.root / "real")
    ws.write("alias/ok.py", "x = 1\n")
    assert (ws.root / "real" / "ok.py").read_text() == "x = 1\n"


def test_read_refuses_what_generated_code_could_leave_behind(ws, tmp_path):
    """After a test run a file may be a link to the host's files, a FIFO (a read would
    block for ever), a link to a device (one that never ends), or enormous."""
    import os

    secret = tmp_path / "host_secret.txt"
    secret.write_text("sk-host-secret")
    (ws.root / "docs").mkdir()
    (ws.root / "docs" / "prd.md").symlink_to(secret)
    with pytest.raises(UnsafePathError, match="link"):
        ws.read("docs/prd.md")
    os.mkfifo(ws.root / "pipe.py")
    with pytest.raises(UnsafePathError, match="not a regular file"):
        ws.read("pipe.py")
    (ws.root / "inner").symlink_to(ws.root / "pipe.py")  # a link inside, to a FIFO
    with pytest.raises(UnsafePathError, match="not a regular file"):
        ws.read("inner")
    (ws.root / "big.py").write_bytes(b"x" * 2048)
    with pytest.raises(UnsafePathError, match="limit"):
        ws.read("big.py", limit=1024)
    (ws.root / "latin1.py").write_bytes(b"caf\xe9\n")
    assert ws.read("latin1.py") == "caf\ufffd\n"


def test_write_read_and_list(ws):
    ws.write("pkg/mod.py", "a = 1\n")
    ws.write("./docs/x.md", "# x\n")
    assert ws.read("pkg/mod.py") == "a = 1\n"
    assert ws.files() == ["docs/x.md", "pkg/mod.py"]
    assert not ws.exists("../x")


def test_fix_with_one_bad_path_writes_nothing(ws):
    from mgpt.actions.base import ActionContext
    from mgpt.actions.coding import FixBug, RunTests
    from mgpt.actions.documents import TestReport
    from mgpt.agents import Message
    from mgpt.llm import LLM
    from mgpt.llm.backends.testing import TestModel

    ws.write("pkg/a.py", "a = 1\n")
    reply = "## pkg/a.py\n```python\na = 2\n```\n## ../../evil.py\n```python\nboom\n```"
    action = FixBug().bind(LLM(TestModel([reply]), role="Engineer"))
    report = TestReport(passed=0, failed=1, errors=0, exit_code=1, output="pkg/a.py failed")
    ctx = ActionContext(workspace=ws.root, news=[Message(content="r", payload=report, cause_by=RunTests)])
    with pytest.raises(UnsafePathError, match="climbs out"):
        asyncio.run(action.run(ctx))
    assert ws.read("pkg/a.py") == "a = 1\n"


def test_sandbox_timeout_kills_the_process_group(tmp_path):
    marker = tmp_path / "still_running"
    (tmp_path / "grandchild.py").write_text(f"import time\ntime.sleep(3)\nopen({str(marker)!r}, 'w')\n")
    code = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, 'grandchild.py'])\n"
        "time.sleep(30)\n"
    )
    result = run_sandboxed([sys.executable, "-c", code], tmp_path, Limits(timeout=1))
    assert result.timed_out and not result.ok
    assert "timeout" in result.output
    assert result.seconds < 10
    import time

    time.sleep(3.5)
    assert not marker.exists()  # the grandchild was killed with the group


def test_sandbox_environment_has_no_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-123")
    monkeypatch.setenv("MGPT_API_KEY", "sk-secret-456")
    result = run_sandboxed([sys.executable, "-c", "import os; print(sorted(os.environ))"], tmp_path)
    assert result.ok
    assert "OPENAI_API_KEY" not in result.output and "MGPT_API_KEY" not in result.output
    assert "sk-secret" not in result.output


def test_sandbox_memory_limit(tmp_path):
    result = run_sandboxed(
        [sys.executable, "-c", "x = bytearray(400 * 1024 * 1024)"], tmp_path, Limits(memory_mb=200)
    )
    assert not result.ok
    assert "MemoryError" in result.output


def test_sandbox_runs_in_the_workspace(tmp_path):
    result = run_sandboxed([sys.executable, "-c", "import os; print(os.getcwd())"], tmp_path)
    assert Path(result.output.strip()).resolve() == tmp_path.resolve()


def test_run_pytest_counts(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "def test_ok():\n    assert True\n\ndef test_bad():\n    assert 1 == 2\n"
    )
    result = run_pytest(tmp_path)
    assert (result.passed, result.failed, result.exit_code) == (1, 1, 1)
    assert "assert 1 == 2" in result.output


def test_pytest_output_is_normalised_for_reproducible_prompts(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "def test_tmp(tmp_path):\n    assert str(tmp_path) == 'x'\n"
    )
    first = run_pytest(tmp_path)
    second = run_pytest(tmp_path)
    assert first.failed == 1
    assert first.output == second.output
    assert str(tmp_path) not in first.output
    assert " in 0." not in first.output.splitlines()[-1]
    assert (tmp_path / ".mgpt" / "pytest-tmp").is_dir()  # temp files stay in the workspace


def test_fix_sees_the_modules_a_failing_test_imports(ws):
    from mgpt.actions.coding import files_for_fix

    ws.write("pkg/__init__.py", "")
    ws.write("pkg/money.py", "def parse(x):\n    return 1998\n")
    ws.write("pkg/other.py", "y = 1\n")
    ws.write("tests/test_money.py", "from pkg.money import parse\n\ndef test_p():\n    assert parse('19.99') == 1999\n")
    output = "tests/test_money.py:4: AssertionError\nassert 1998 == 1999"
    assert files_for_fix(ws, output) == ["pkg/money.py", "tests/test_money.py"]
    assert files_for_fix(ws, "no file named") == ws.files()


def test_deadline_holds_unisolated_too_with_a_grandchild_holding_the_pipe(tmp_path):
    """--sandbox none keeps the deadline even when a setsid grandchild (out of the killed
    process group) keeps the output pipe open: mgpt stops waiting for it."""
    import time

    code = "import subprocess, time\nsubprocess.Popen(['setsid', 'sleep', '4.321'])\ntime.sleep(60)\n"
    start = time.perf_counter()
    result = run_sandboxed([sys.executable, "-c", code], tmp_path, Limits(timeout=1, sandbox="none"))
    assert result.timed_out and not result.isolated
    assert time.perf_counter() - start < 3


def test_output_is_capped_with_head_and_tail_kept(tmp_path):
    code = "import sys\nprint('FIRST')\nfor i in range(20000): print('line', i)\nprint('LAST')\n"
    result = run_sandboxed([sys.executable, "-c", code], tmp_path, Limits(output_kb=16, sandbox="none"))
    assert result.ok
    assert result.output.startswith("FIRST") and result.output.rstrip().endswith("LAST")
    assert result.dropped_bytes > 100_000
    assert f"{result.dropped_bytes} bytes of output left out" in result.output
    assert len(result.output) < 17 * 1024


def test_sandbox_output_is_redacted(tmp_path, monkeypatch):
    from mgpt.agents import secrets

    secrets.register("sk-registered-canary-42")
    code = "print('key: sk-registered-canary-42')"
    result = run_sandboxed([sys.executable, "-c", code], tmp_path, Limits(sandbox="none"))
    assert "sk-registered-canary-42" not in result.output and "[redacted]" in result.output


def test_mgpt_own_interpreter_is_visible_inside_when_it_runs_from_a_venv(monkeypatch, tmp_path):
    """mgpt installed in a venv under a folder the sandbox hides (/tmp, $HOME) still finds
    its interpreter there: the venv is bound back read-only, like the base install."""
    from mgpt.sandbox import isolation as sandbox
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    (tmp_path / "venv").mkdir()
    assert (tmp_path / "venv").resolve() in sandbox._python_roots()
    assert Path(sys.base_prefix).resolve() in sandbox._python_roots()

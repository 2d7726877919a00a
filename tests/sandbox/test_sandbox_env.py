"""The project environment: built offline from the wheel cache, reused by hash, pytest from
the project's venv (not mgpt's), declared dependencies installed, failures sent to the
engineer; and the refusal to run unisolated unless asked.

No test here reaches a package index: MGPT_OFFLINE=1 and a private MGPT_HOME whose wheel
cache holds pytest's wheels (copied from the real cache, which .ci/run fills) plus a tiny
wheel each test builds itself."""

import asyncio
import base64
import hashlib
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from mgpt.sandbox import isolation as sandbox
from mgpt.sandbox import project_env
from mgpt.sandbox.project_env import ensure_project_env
from mgpt.sandbox.isolation import Limits, bwrap_problem, run_pytest
from testpaths import GOLDEN

REAL_WHEELS = project_env.wheelhouse()
needs_bwrap = pytest.mark.skipif(bool(bwrap_problem()), reason=f"needs bubblewrap: {bwrap_problem()}")
needs_wheels = pytest.mark.skipif(
    not list(REAL_WHEELS.glob("pytest-*.whl")),
    reason=f"no pytest wheel in {REAL_WHEELS}: fill it with `python3 -m pip download -d {REAL_WHEELS} pytest setuptools wheel`",
)
pytestmark = [needs_bwrap, needs_wheels]


def build_wheel(folder: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """A minimal pure-Python wheel, written by hand: no build tools, no network."""
    dist = f"{name}-{version}.dist-info"
    contents = dict(files)
    contents[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    contents[f"{dist}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: mgpt-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, text in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    out = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as zf:
        for path, text in contents.items():
            zf.writestr(path, text)
        zf.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return out


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private MGPT_HOME: the real cache's wheels plus tinydep 1.0, offline."""
    home = tmp_path / "mgpt-home"
    wheels = home / "wheels"
    wheels.mkdir(parents=True)
    for whl in REAL_WHEELS.glob("*.whl"):
        shutil.copy(whl, wheels)
    build_wheel(wheels, "tinydep", "1.0", {"tinydep/__init__.py": "VALUE = 42\n"})
    monkeypatch.setenv("MGPT_HOME", str(home))
    monkeypatch.setenv("MGPT_OFFLINE", "1")
    return home


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    ws = tmp_path / "ws"
    (ws / ".mgpt").mkdir(parents=True)
    for rel, text in files.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(textwrap.dedent(text))
    return ws


USES_TINYDEP = """
import pytest
import tinydep

def test_dependency_and_pytest_come_from_the_project_venv():
    assert tinydep.VALUE == 42
    assert "/.mgpt/venv/" in pytest.__file__ and "/.mgpt/venv/" in tinydep.__file__
"""


def test_declared_dependency_installs_offline_and_tests_use_the_project_venv(tmp_path, home):
    ws = project(tmp_path, {"requirements.txt": "tinydep==1.0\n", "tests/test_dep.py": USES_TINYDEP})
    env = ensure_project_env(ws)
    assert env.ok and not env.reused, env.log
    assert "wheel cache (offline)" in env.log
    result = run_pytest(ws, python=str(env.python), path=[str(env.bin)])
    assert (result.passed, result.failed, result.exit_code) == (1, 0, 0), result.output
    # Same declarations: reused as is. A changed requirements.txt: rebuilt.
    assert ensure_project_env(ws).reused
    (ws / "requirements.txt").write_text("tinydep>=1.0\n")
    again = ensure_project_env(ws)
    assert again.ok and not again.reused


def test_pyproject_project_is_installed_with_its_console_script(tmp_path, home):
    if not list((home / "wheels").glob("setuptools-*.whl")):
        pytest.skip("no setuptools wheel in the wheel cache (tools/install.sh downloads one)")
    ws = project(tmp_path, {
        "pyproject.toml": """
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "srcapp"
            version = "0.1"
            dependencies = ["tinydep"]

            [project.scripts]
            srcapp = "srcapp.cli:main"
        """,
        "src/srcapp/__init__.py": "",
        "src/srcapp/cli.py": "import tinydep\n\ndef main():\n    print('value', tinydep.VALUE)\n",
        "tests/test_cli.py": """
            import subprocess

            def test_console_script_runs():
                out = subprocess.run(["srcapp"], capture_output=True, text=True, check=True).stdout
                assert out.strip() == "value 42"
        """,
    })
    env = ensure_project_env(ws)
    assert env.ok, env.log
    result = run_pytest(ws, python=str(env.python), path=[str(env.bin)])
    assert result.passed == 1 and result.exit_code == 0, result.output


def test_a_dependency_that_cannot_install_goes_to_the_engineer(tmp_path, home):
    from mgpt.actions.base import ActionContext
    from mgpt.actions.coding import RunTests, files_for_fix
    from mgpt.sandbox.workspace import Workspace
    from mgpt.llm import LLM
    from mgpt.llm.backends.testing import TestModel

    ws = project(tmp_path, {
        "requirements.txt": "no-such-package-for-mgpt-tests==9.9\n",
        "app/__init__.py": "",
        "tests/test_app.py": "def test_x():\n    assert True\n",
    })
    action = RunTests().bind(LLM(TestModel([]), role="QaEngineer"))
    message = asyncio.run(action.run(ActionContext(workspace=ws, settings={"fix_rounds": 1})))
    report = message.payload
    assert message.send_to == {"Engineer"}
    assert not report.ok and report.errors == 1
    assert "requirements.txt" in report.output and "no-such-package-for-mgpt-tests" in report.output
    assert "requirements.txt" in files_for_fix(Workspace(ws), report.output)


def test_agents_only_install_runs_generated_tests(tmp_path, home):
    """mgpt's own pytest hidden (as after `pip install mgpt` without extras): the tests
    still run, with the project venv's pytest."""
    ws = project(tmp_path, {"tests/test_ok.py": "import pytest\n\ndef test_ok():\n    assert '/.mgpt/venv/' in pytest.__file__\n"})
    script = textwrap.dedent(f"""
        import sys
        sys.modules["pytest"] = None  # import pytest now fails in mgpt's interpreter
        sys.modules["_pytest"] = None
        from pathlib import Path
        from mgpt.sandbox.project_env import ensure_project_env
        from mgpt.sandbox.isolation import run_pytest
        ws = Path({str(ws)!r})
        env = ensure_project_env(ws)
        r = run_pytest(ws, python=str(env.python), path=[str(env.bin)])
        print(env.ok, r.passed, r.exit_code)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "1", "0"], proc.stdout


@pytest.mark.slow
def test_pip_installer_without_uv(tmp_path, home, monkeypatch):
    monkeypatch.setattr(project_env, "find_uv", lambda: None)
    ws = project(tmp_path, {"requirements.txt": "tinydep\n", "tests/test_dep.py": USES_TINYDEP})
    env = ensure_project_env(ws)
    assert env.ok, env.log
    assert run_pytest(ws, python=str(env.python), path=[str(env.bin)]).passed == 1


def test_installer_output_is_redacted(tmp_path, home, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-install-0b1c2d3e")
    ws = project(tmp_path, {"requirements.txt": "sk-canary-install-0b1c2d3e\n"})
    env = ensure_project_env(ws)
    assert not env.ok
    assert "sk-canary-install-0b1c2d3e" not in env.log and "[redacted]" in env.log


# --- refusing to run unisolated ---------------------------------------------------------

def test_missing_bubblewrap_is_refused_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mgpt.cli import app

    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "bubblewrap (bwrap) is not installed")
    todo = GOLDEN / "todo_cli.jsonl"
    result = CliRunner().invoke(app, ["run", "--replay", str(todo), "-w", str(tmp_path / "ws")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "apt-get install bubblewrap" in lines[0] and "--sandbox none" in lines[0]
    assert not (tmp_path / "ws" / ".mgpt" / "transcript.jsonl").exists()  # refused before any call
    with pytest.raises(sandbox.SandboxUnavailable, match="bubblewrap"):
        sandbox.run_sandboxed([sys.executable, "-c", "pass"], tmp_path)


def test_sandbox_none_is_explicit_and_the_summary_says_so(tmp_path, monkeypatch, home):
    from typer.testing import CliRunner

    from mgpt.cli import app

    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "bubblewrap (bwrap) is not installed")
    todo = GOLDEN / "todo_cli.jsonl"
    result = CliRunner().invoke(app, ["run", "--replay", str(todo), "-w", str(tmp_path / "ws"), "--sandbox", "none"])
    assert result.exit_code == 0, result.output
    assert "UNISOLATED" in result.output
    monkeypatch.setenv("MGPT_SANDBOX", "none")
    assert sandbox.require() == "none"
    assert not sandbox.run_sandboxed([sys.executable, "-c", "pass"], tmp_path).isolated
    monkeypatch.setenv("MGPT_SANDBOX", "docker")
    with pytest.raises(sandbox.SandboxUnavailable, match="unknown sandbox"):
        sandbox.require()


def test_limits_carry_the_mode(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "no bwrap here")
    result = sandbox.run_sandboxed([sys.executable, "-c", "print('hi')"], tmp_path, Limits(sandbox="none"))
    assert result.ok and "hi" in result.output and not result.isolated


def _serve_index(root: Path):
    """A PEP 503 simple index of ``root``'s wheels on 127.0.0.1 (the only network a test
    may use); returns (url, server)."""
    import functools
    import http.server
    import threading

    simple = root / "simple"
    for whl in root.glob("*.whl"):
        name = whl.name.split("-")[0].lower().replace("_", "-")
        (simple / name).mkdir(parents=True, exist_ok=True)
        (simple / name / "index.html").write_text(f'<a href="../../{whl.name}">{whl.name}</a>\n')
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/simple", server


@pytest.mark.slow
@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_online_only_when_the_cache_fails_and_then_cached(tmp_path, home, monkeypatch, installer):
    """Not in the wheel cache: fetched from the index (a local one here) in the install
    step, then a fresh project installs it offline."""
    if installer == "pip":
        monkeypatch.setattr(project_env, "find_uv", lambda: None)
    elif project_env.find_uv() is None:
        pytest.skip("uv is not installed")
    index_root = tmp_path / "index"
    index_root.mkdir()
    build_wheel(index_root, "remotedep", "2.0", {"remotedep/__init__.py": "VALUE = 7\n"})
    url, server = _serve_index(index_root)
    try:
        monkeypatch.delenv("MGPT_OFFLINE")
        monkeypatch.setenv("PIP_INDEX_URL", url)
        monkeypatch.setenv("UV_INDEX_URL", url)
        test = "import remotedep\n\ndef test_remote():\n    assert remotedep.VALUE == 7\n"
        ws = project(tmp_path / "a", {"requirements.txt": "remotedep\n", "tests/test_r.py": test})
        env = ensure_project_env(ws)
        assert env.ok, env.log
        assert "from the package index" in env.log  # the offline try failed first
        assert run_pytest(ws, python=str(env.python), path=[str(env.bin)]).passed == 1
    finally:
        server.shutdown()
    monkeypatch.setenv("MGPT_OFFLINE", "1")
    again = project(tmp_path / "b", {"requirements.txt": "remotedep\n", "tests/test_r.py": test})
    env = ensure_project_env(again)
    assert env.ok, env.log
    assert "from the package index" not in env.log


def test_no_pytest_to_be_had_is_the_users_problem_in_one_line(tmp_path, monkeypatch):
    """An empty wheel cache offline: not a bug for the engineer (the replay would run out
    of answers for FixBug), but one line telling the user how to fill the cache."""
    monkeypatch.setenv("MGPT_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("MGPT_OFFLINE", "1")
    ws = project(tmp_path, {"requirements.txt": "tinydep\n", "tests/test_x.py": "def test_x():\n    pass\n"})
    with pytest.raises(project_env.ProjectEnvError, match="pip download -d .*pytest") as info:
        ensure_project_env(ws)
    assert "\n" not in str(info.value) and "MGPT_OFFLINE" in str(info.value)

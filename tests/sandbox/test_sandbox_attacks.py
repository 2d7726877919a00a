"""A hostile model's generated code, run in the sandbox: each attack that worked against
the old rlimits-only runner is shown contained here.

These need bubblewrap with user and PID namespaces; they skip, saying why, where it is
missing (CI installs it: .ci/run)."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from mgpt.sandbox.isolation import Limits, bwrap_problem, run_sandboxed

pytestmark = pytest.mark.skipif(bool(bwrap_problem()), reason=f"needs bubblewrap: {bwrap_problem()}")

from testpaths import GOLDEN
TODO = GOLDEN / "todo_cli.jsonl"
CANARIES = {"OPENAI_API_KEY": "sk-canary-openai-7f3a9c1e", "MGPT_API_KEY": "sk-canary-mgpt-52d8b0aa"}
CONFIG_CANARY = "sk-canary-config-91c4e6"


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def _ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / ".mgpt").mkdir(parents=True)
    return ws


def hostile_transcript(tmp_path: Path, test_code: str, source: Path = TODO) -> Path:
    """A golden transcript with QA's first test file replaced by ``test_code``."""
    out = tmp_path / "hostile.jsonl"
    lines = [json.loads(line) for line in source.read_text().splitlines()]
    first = next(line for line in lines if line.get("action") == "WriteTests")
    first["response"]["text"] = f"```python\n{textwrap.dedent(test_code)}\n```"
    out.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return out


def _processes_in(ws: Path) -> list[int]:
    """Processes whose working directory is ``ws`` (what a sandboxed run leaves behind)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).resolve() == ws.resolve():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


# --- keys -------------------------------------------------------------------------------

STEAL = """
import glob, os

def test_steal():
    found = []
    paths = ["/proc/self/environ", "/proc/1/environ", f"/proc/{os.getppid()}/environ", CONFIG]
    paths += glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline")
    for path in paths:
        try:
            found.append(path + ": " + open(path, "rb").read().decode("latin-1"))
        except Exception as exc:
            found.append(path + ": " + repr(exc))
    found.append(repr(dict(os.environ)))
    blob = "\\n".join(found)
    # hex as well: proves the keys never got in, not merely that the output was redacted
    assert False, blob + "\\nHEX " + blob.encode().hex()
"""


@pytest.mark.parametrize("golden, fix_rounds", [("todo_cli", 0), ("bank_ledger_bug", 1)],
                         ids=["report", "fix-prompt"])
def test_keys_do_not_reach_generated_code_or_any_record(tmp_path, monkeypatch, golden, fix_rounds):
    """The hostile test's failure travels into the QA report, the run log and (with a fix
    round) the FixBug prompt, recorded in the transcript: no key in any of them."""
    from typer.testing import CliRunner

    from mgpt.cli import app

    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "mgpt" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'api_key = "{CONFIG_CANARY}"\n')
    transcript = hostile_transcript(tmp_path, STEAL.replace("CONFIG", repr(str(config))),
                                    GOLDEN / f"{golden}.jsonl")
    ws = tmp_path / "ws"
    result = CliRunner().invoke(app, ["run", "--replay", str(transcript), "-w", str(ws),
                                      "--fix-rounds", str(fix_rounds)])
    assert result.exit_code == 1, result.output
    calls = [json.loads(line) for line in (ws / ".mgpt" / "transcript.jsonl").read_text().splitlines()]
    fix_prompts = [json.dumps(c["request"]) for c in calls if c.get("action") == "FixBug"]
    assert len(fix_prompts) == fix_rounds
    assert all("test_steal" in p for p in fix_prompts)  # the hostile output reached the prompt...
    report = (ws / "docs" / "qa_report.md").read_text()
    assert "test_steal" in report and "/proc/" in report  # the hostile test ran and reported
    secrets = [*CANARIES.values(), CONFIG_CANARY]
    needles = [s.encode() for s in secrets] + [s.encode().hex().encode() for s in secrets]
    for path in ws.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            leaked = [n for n in needles if n in data]
            assert not leaked, f"{path} holds {leaked}"  # ...but no key did
    assert not any(n.decode() in result.output for n in needles)


def test_proc_shows_only_the_sandbox_and_no_parent_cmdline(tmp_path):
    """A key passed on mgpt's command line (--api-key) is not visible: mgpt's process is
    outside the sandbox's PID namespace."""
    ws = _ws(tmp_path)
    parent = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from mgpt.sandbox.isolation import run_sandboxed
        code = "import glob; print([open(p,'rb').read().hex() for p in glob.glob('/proc/[0-9]*/cmdline')])"
        r = run_sandboxed([sys.executable, "-c", code], Path({str(ws)!r}))
        print(r.output)
    """)
    proc = subprocess.run([sys.executable, "-c", parent, "--api-key", CONFIG_CANARY],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    listed = eval(proc.stdout.strip().splitlines()[0])
    assert 1 <= len(listed) <= 4  # bwrap's init, the wrapper chain and the command itself
    assert all(CONFIG_CANARY.encode().hex() not in c for c in listed)


def test_mgpt_own_records_are_read_only_inside(tmp_path):
    ws = _ws(tmp_path)
    (ws / ".mgpt" / "run.jsonl").write_text("original\n")
    result = run_sandboxed(_py("""
        try:
            open('.mgpt/run.jsonl', 'w').write('forged')
        except OSError as exc:
            print('refused', exc.errno)
    """), ws)
    assert "refused" in result.output
    assert (ws / ".mgpt" / "run.jsonl").read_text() == "original\n"


# --- deadlines and survivors ------------------------------------------------------------

def test_deadline_holds_with_a_setsid_grandchild_holding_stdout(tmp_path):
    ws = _ws(tmp_path)
    start = time.perf_counter()
    result = run_sandboxed(_py("""
        import subprocess, time
        subprocess.Popen(["setsid", "sleep", "infinity"])
        print("grandchild started", flush=True)
        time.sleep(3600)
    """), ws, Limits(timeout=2))
    took = time.perf_counter() - start
    assert result.timed_out and "grandchild started" in result.output
    assert took < 6, took
    assert not _processes_in(ws)


def test_a_grandchild_holding_stdout_does_not_keep_a_finished_run_open(tmp_path):
    ws = _ws(tmp_path)
    start = time.perf_counter()
    result = run_sandboxed(_py("""
        import subprocess
        subprocess.Popen(["setsid", "sleep", "infinity"])
    """), ws, Limits(timeout=30))
    assert result.ok and not result.timed_out
    assert time.perf_counter() - start < 5
    assert not _processes_in(ws)


DAEMON = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(3)
        open({marker!r}, "w").write("alive")
        os._exit(0)
    os._exit(0)
open({started!r}, "w").write("x")
time.sleep(3600)
"""


def test_a_detached_daemon_dies_at_the_deadline(tmp_path):
    ws = _ws(tmp_path)
    marker, started = ws / "daemon_alive", ws / "started"
    result = run_sandboxed([sys.executable, "-c", DAEMON.format(marker=str(marker), started=str(started))],
                           ws, Limits(timeout=1.5))
    assert result.timed_out and started.exists()
    time.sleep(3.5)
    assert not marker.exists()
    assert not _processes_in(ws)


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_killing_mgpt_run_leaves_no_process_behind(tmp_path, how):
    ws = tmp_path / "ws"
    marker, started = ws / "daemon_alive", ws / "started"
    body = "\n    ".join(DAEMON.format(marker=str(marker), started=str(started)).strip().splitlines())
    transcript = hostile_transcript(tmp_path, f"def test_daemon():\n    {body}\n")
    mgpt = subprocess.Popen(
        [sys.executable, "-m", "mgpt", "run", "--replay", str(transcript), "-w", str(ws), "--test-timeout", "300"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and time.monotonic() < deadline and mgpt.poll() is None:
            time.sleep(0.1)
        assert started.exists(), "the hostile test never started"
        t0 = time.perf_counter()
        mgpt.send_signal(how)
        mgpt.wait(timeout=10)
        if how == signal.SIGINT:  # Ctrl-C: the run stops, mgpt exits, promptly
            assert time.perf_counter() - t0 < 2.0
    finally:
        if mgpt.poll() is None:
            mgpt.kill()
    time.sleep(3.5)
    assert not marker.exists(), "a sandboxed process outlived mgpt"
    assert not _processes_in(ws)


def test_ctrl_c_stops_the_run_within_a_second(tmp_path):
    ws = _ws(tmp_path)
    started = ws / "started"
    parent = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from mgpt.sandbox.isolation import run_sandboxed
        code = "open({str(started)!r}, 'w').write('x'); import time; time.sleep(3600)"
        run_sandboxed([sys.executable, "-c", code], Path({str(ws)!r}))
    """)
    proc = subprocess.Popen([sys.executable, "-c", parent], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists()
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)
    assert time.perf_counter() - t0 < 2.0  # "about a second", with room for a loaded machine
    assert b"KeyboardInterrupt" in proc.stderr.read()
    time.sleep(0.3)
    assert not _processes_in(ws)


# --- isolation --------------------------------------------------------------------------

def test_nothing_is_written_outside_the_workspace(tmp_path):
    ws = _ws(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    token = f"mgpt-escape-{os.getpid()}-{time.monotonic_ns()}"
    targets = [outside / "x", Path("/tmp") / token, Path.home() / token, Path("/var/tmp") / token,
               Path(sys.prefix) / token]
    result = run_sandboxed(_py(f"""
        for path in {[str(t) for t in targets]!r}:
            try:
                open(path, "w").write("escaped")
                print("wrote", path)
            except OSError as exc:
                print("refused", path, exc.errno)
        open("inside.txt", "w").write("ok")
    """), ws)
    assert result.ok, result.output
    assert (ws / "inside.txt").read_text() == "ok"
    assert [t for t in targets if t.exists()] == []


def test_no_network_not_even_localhost(tmp_path):
    ws = _ws(tmp_path)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    port = server.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True)
    thread.start()
    result = run_sandboxed(_py(f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=3)
            print("CONNECTED")
        except OSError as exc:
            print("blocked", exc)
    """), ws)
    thread.join(6)
    server.close()
    assert "blocked" in result.output and "CONNECTED" not in result.output
    assert accepted == [None]


def _accept(server):
    try:
        conn, _ = server.accept()
        conn.close()
        return "accepted"
    except OSError:
        return None


def _pids_cap_available() -> bool:
    return os.geteuid() != 0 or Path("/sys/fs/cgroup/pids/cgroup.procs").exists()


@pytest.mark.skipif(not _pids_cap_available(), reason="as root the process cap needs the cgroup pids controller")
def test_a_fork_bomb_is_capped(tmp_path):
    ws = _ws(tmp_path)
    result = run_sandboxed(_py("""
        import os, time
        n = 0
        for i in range(200):
            try:
                pid = os.fork()
            except OSError as exc:
                print("fork refused after", n, exc.errno)
                break
            if pid == 0:
                time.sleep(5)
                os._exit(0)
            n += 1
        print("forked", n)
    """), ws, Limits(timeout=20, processes=32))
    forked = int(result.output.split("forked")[-1].split()[0])
    assert "fork refused" in result.output, result.output
    assert forked <= 32 + 4  # the cap counts bwrap's own few processes too


def test_output_is_capped_and_mgpt_memory_stays_flat(tmp_path):
    ws = _ws(tmp_path)
    parent = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        from mgpt.sandbox.isolation import run_sandboxed
        ws = Path({str(ws)!r})
        run_sandboxed([sys.executable, "-c", "pass"], ws)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        code = "import sys\\nsys.stdout.write('HEAD\\\\n')\\nfor _ in range(200): sys.stdout.write('x' * 1048575 + '\\\\n')\\nsys.stdout.write('TAIL\\\\n')"
        r = run_sandboxed([sys.executable, "-c", code], ws)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(before, after, r.dropped_bytes, len(r.output), r.ok, r.output[:4], r.output.rstrip()[-4:])
    """)
    proc = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    before, after, dropped, length, ok, head, tail = proc.stdout.split()
    assert ok == "True" and head == "HEAD" and tail == "TAIL"
    assert int(dropped) > 190 * 1024 * 1024
    assert int(length) < 300 * 1024
    assert int(after) - int(before) < 30 * 1024, (before, after)  # KiB: flat, not +200 MB


def test_secret_files_are_hidden_even_inside_the_workspace(tmp_path):
    """mgpt's config (and a --config file, wherever it is) reads as empty inside."""
    ws = _ws(tmp_path)
    secret = ws / "my-config.toml"
    secret.write_text(f'api_key = "{CONFIG_CANARY}"\n')
    home_config = Path(os.environ["XDG_CONFIG_HOME"]) / "mgpt" / "config.toml"
    home_config.parent.mkdir(parents=True, exist_ok=True)
    home_config.write_text(f'api_key = "{CONFIG_CANARY}"\n')
    result = run_sandboxed(_py(f"""
        import os
        for path in {[str(secret), str(home_config)]!r}:
            try:
                print(path, repr(open(path).read().encode().hex()))
            except OSError as exc:
                print(path, "unreadable", exc.errno)
        print(sorted(os.listdir({str(Path.home())!r})))
    """), ws, Limits(hide=(str(secret),)))
    assert result.ok, result.output
    assert CONFIG_CANARY.encode().hex() not in result.output
    # $HOME is an empty tmpfs but for the Python install bound back (pyenv lives there).
    listed = eval(result.output.strip().splitlines()[-1])
    home = Path.home().resolve()
    bound = {Path(p).resolve().relative_to(home).parts[0] for p in (sys.base_prefix, sys.base_exec_prefix)
             if Path(p).resolve().is_relative_to(home)}
    assert set(listed) <= bound, listed
    assert secret.read_text().startswith("api_key")  # hidden, not harmed


PLANT_GIT_CONFIG = """
import os, pathlib
results = []
for attempt in ("config", "hooks/post-commit", "info/attributes"):
    try:
        with open(os.path.join(".git", attempt), "a") as f:
            f.write("[core]\\n\\tfsmonitor = \\"touch CANARY; false\\"\\n[filter \\"x\\"]\\n\\tclean = \\"touch CANARY\\"\\n")
        results.append(attempt + " written")
    except OSError as exc:
        results.append(attempt + " refused")
pathlib.Path(".gitattributes").write_text("* filter=x\\n")
# A nested repository with its own hostile config.
os.makedirs("sub/.git", exist_ok=True)
pathlib.Path("sub/.git/config").write_text("[core]\\n\\tfsmonitor = \\"touch CANARY; false\\"\\n")
print(results)
"""


def test_generated_code_cannot_plant_commands_for_mgpt_git(tmp_path):
    """mgpt commits each step with git *outside* the sandbox: a test that could write
    .git/config (core.fsmonitor, a filter driver) would have the host run its command."""
    from mgpt.workflows.history import GitHistory

    ws = _ws(tmp_path)
    (ws / "app.py").write_text("x = 1\n")
    history = GitHistory(ws)
    history.start("an idea")
    config_before = (ws / ".git" / "config").read_text()
    canary = tmp_path / "canary"
    result = run_sandboxed(_py(PLANT_GIT_CONFIG.replace("CANARY", str(canary))), ws)
    assert "config refused" in result.output and "written" not in result.output, result.output
    assert (ws / ".git" / "config").read_text() == config_before
    (ws / "more.py").write_text("y = 2\n")
    history.git("add", "-A")
    history.git("status", "--porcelain", check=False)
    history.git("commit", "-q", "-m", "step", check=False)
    assert not canary.exists(), "a command planted by generated code ran on the host"

"""Run untrusted generated code: in a bubblewrap sandbox, with limits and a hard deadline.

Generated code is written by a model that may be wrong or hostile. On Linux with
bubblewrap (``bwrap``) every run gets its own user, PID and network namespaces: a read-only
view of the system with ``$HOME`` and mgpt's config hidden, the workspace as the only
writable path (its ``.mgpt/`` and ``.git/`` read-only), a private ``/tmp``, a fresh ``/proc`` that
shows only the sandbox's processes, no network, an environment built from an allow-list,
and a process cap. Everything in the sandbox dies at the deadline, when the command ends,
and when mgpt dies (``--die-with-parent``; the thread that spawns waits, since the parent
death signal follows the spawning *thread*).

Without bubblewrap a run is refused (:class:`SandboxUnavailable`) unless the caller chose
``sandbox="none"``, which keeps only the deadline, rlimits, the clean environment and the
output cap: the run is then *not isolated*, and the run summary says so.

Output goes through a pipe to a reader thread that keeps the first and last part and
counts what it dropped, so a test that prints gigabytes costs mgpt no memory; whatever
comes out is passed through :func:`mgpt.agents.secrets.redact`.
"""

from __future__ import annotations

import collections
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mgpt.agents.errors import MgptError
from mgpt.agents.secrets import redact

#: The only variables a generated project's code sees from our environment.
SAFE_ENV_VARS = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT")
#: Sandbox modes: ``bwrap`` isolates (the default); ``none`` runs unisolated, by choice only.
MODES = ("bwrap", "none")
BWRAP_HELP = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install "
    "bubblewrap; Arch: pacman -S bubblewrap) and allow user namespaces, or pass --sandbox none "
    "(MGPT_SANDBOX=none) to run generated code unisolated"
)
#: The way out when isolation is impossible here and cannot be fixed: chosen knowingly.
UNISOLATED_HELP = "or pass --sandbox none (MGPT_SANDBOX=none) to run generated code unisolated, knowingly"
#: The uid/gid generated code runs as inside the sandbox (not root, so no capabilities).
SANDBOX_UID = 1000


class SandboxUnavailable(MgptError):
    """Isolation was asked for (the default) but bubblewrap cannot run here."""


class RunCancelled(Exception):
    """The caller cancelled a sandboxed run (its processes are dead when this is raised)."""


@dataclass
class Limits:
    """Bounds on one sandboxed run. ``sandbox`` is the mode (``bwrap`` or ``none``); None
    means ``$MGPT_SANDBOX``, else ``bwrap``."""

    timeout: float = 60.0
    cpu_seconds: int = 60
    memory_mb: int = 1024
    file_size_mb: int = 64
    open_files: int = 256
    processes: int = 64
    output_kb: int = 256
    sandbox: str | None = None
    #: Extra files or folders to hide from generated code (e.g. a --config file).
    hide: tuple[str, ...] = ()


@dataclass
class SandboxResult:
    exit_code: int
    output: str
    timed_out: bool
    seconds: float
    passed: int = 0
    failed: int = 0
    errors: int = 0
    #: False when the run used ``sandbox="none"``.
    isolated: bool = True
    #: Bytes of output left out of the middle (see :class:`Limits.output_kb`).
    dropped_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def sandbox_mode(requested: str | None = None) -> str:
    """The mode to use: ``requested``, else ``$MGPT_SANDBOX``, else ``bwrap``."""
    mode = (requested or os.environ.get("MGPT_SANDBOX") or "bwrap").strip().lower()
    if mode not in MODES:
        raise SandboxUnavailable(f"unknown sandbox {mode!r}: use one of {', '.join(MODES)}")
    return mode


def probe_args(exe: str = "bwrap") -> list[str]:
    """A bwrap command that needs every namespace a run uses (user with an unprivileged uid,
    PID, IPC, UTS, network, mount with /proc, /dev and a private /tmp) and runs ``true``."""
    uid = str(SANDBOX_UID)
    return [exe, "--unshare-user", "--uid", uid, "--gid", uid, "--unshare-pid", "--unshare-ipc",
            "--unshare-uts", "--unshare-net", "--die-with-parent", "--new-session",
            "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "true"]


@functools.lru_cache(maxsize=None)
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot isolate here (None when it can). Probed once per process."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap sandboxing needs Linux (this is {sys.platform})"
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap (bwrap) is not installed"
    try:
        proc = subprocess.run(probe_args(exe), capture_output=True, text=True, timeout=20, env={})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not start ({exc})"
    if proc.returncode != 0:
        said = " ".join(proc.stderr.split())[:300] or f"exit code {proc.returncode}"
        return f"bubblewrap cannot create namespaces here ({said})"
    return None


def _sysctl(root: Path, name: str) -> str | None:
    try:
        return (root / name.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def bwrap_fix(problem: str, *, sysctl: Path = Path("/proc/sys"), root: Path = Path("/")) -> str:
    """What to do about ``problem`` (from :func:`bwrap_problem`), in one line: the kernel
    setting that forbids user namespaces here and the command that allows them, or how to
    install bubblewrap; always ending with the unisolated way out, chosen knowingly.
    ``sysctl`` and ``root`` are where ``/proc/sys`` and ``/`` are (tests point them elsewhere)."""
    if "not installed" in problem or "needs Linux" in problem:
        return BWRAP_HELP
    keep = " (add it to /etc/sysctl.d/ to keep it after a reboot)"
    if _sysctl(sysctl, "kernel.apparmor_restrict_unprivileged_userns") == "1":
        return ("AppArmor forbids unprivileged user namespaces here (Ubuntu 23.10+): allow them with "
                f"`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`{keep}, {UNISOLATED_HELP}")
    if _sysctl(sysctl, "kernel.unprivileged_userns_clone") == "0" or "unprivileged_userns_clone" in problem:
        return ("the kernel forbids unprivileged user namespaces: allow them with "
                f"`sudo sysctl -w kernel.unprivileged_userns_clone=1`{keep}, {UNISOLATED_HELP}")
    if _sysctl(sysctl, "user.max_user_namespaces") == "0":
        return ("user namespaces are switched off (user.max_user_namespaces is 0): allow them with "
                f"`sudo sysctl -w user.max_user_namespaces=15000`{keep}, {UNISOLATED_HELP}")
    if any((root / marker).exists() for marker in (".dockerenv", "run/.containerenv")):
        return ("this container's seccomp/AppArmor profile forbids the namespaces: start it with "
                "`--security-opt seccomp=unconfined --security-opt apparmor=unconfined` (docker/podman), "
                f"{UNISOLATED_HELP}")
    return f"user namespaces are forbidden here (a hardened kernel, container or VM policy), {UNISOLATED_HELP}"


def require(mode: str | None = None) -> str:
    """Resolve the mode and check it can run; raises :class:`SandboxUnavailable` (one line)."""
    mode = sandbox_mode(mode)
    if mode == "bwrap":
        problem = bwrap_problem()
        if problem:
            raise SandboxUnavailable(f"cannot isolate generated code: {problem}; {bwrap_fix(problem)}")
    return mode


#: The files that make a project installable: its environment installs it (editable), so
#: its imports work whatever its layout.
PACKAGING_FILES = ("pyproject.toml", "setup.py")


def import_paths(workspace: Path) -> list[str]:
    """Where generated code imports from: the workspace, and its ``src/`` when there is one
    and no packaging file installs it (what pytest's ``pythonpath = src`` would add), so a
    ``src/`` layout collects its tests without being packaged."""
    paths = [str(workspace)]
    if (workspace / "src").is_dir() and not any((workspace / name).is_file() for name in PACKAGING_FILES):
        paths.append(str(workspace / "src"))
    return paths


def clean_env(workspace: Path, path: list[str] | None = None) -> dict[str, str]:
    """The environment generated code gets: an allow-list, nothing else of ours."""
    env = {k: os.environ[k] for k in SAFE_ENV_VARS if k in os.environ}
    env.update(
        PATH=os.pathsep.join([*(path or []), "/usr/local/bin", "/usr/bin", "/bin"]),
        HOME=str(workspace),
        TMPDIR="/tmp",
        PYTHONPATH=os.pathsep.join(import_paths(workspace)),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0",
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
    )
    return env


def _hidden_paths(extra: tuple[str, ...]) -> list[Path]:
    """mgpt's own config (it may hold an API key) wherever it lives, plus ``extra``."""
    candidates = [*extra, os.environ.get("MGPT_CONFIG", "")]
    xdg = os.environ.get("XDG_CONFIG_HOME")
    candidates.append(str(Path(xdg) / "mgpt") if xdg else "")
    candidates.append(str(Path.home() / ".config" / "mgpt"))
    return [Path(p).resolve() for p in candidates if p and Path(p).exists()]


def _python_roots() -> list[Path]:
    """Where the interpreter lives (pyenv installs under $HOME, which is hidden), and mgpt's
    own venv when it runs from one (a venv under $HOME or /tmp would be hidden too, and
    ``sys.executable`` with it): bound read-only, like the rest of the system."""
    roots = {Path(p).resolve() for p in (sys.base_prefix, sys.base_exec_prefix, sys.prefix)}
    return sorted(roots)


def _bwrap_args(
    workspace: Path,
    env: dict[str, str],
    limits: Limits,
    *,
    network: bool,
    writable: list[Path],
    readable: list[Path],
) -> list[str]:
    args = [
        shutil.which("bwrap") or "bwrap",
        "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
        "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session",
        "--ro-bind", "/", "/",
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/tmp",
    ]
    if not network:
        args.append("--unshare-net")
    home = Path.home().resolve()
    if home != Path("/"):
        args += ["--tmpfs", str(home)]
    for path in [*_python_roots(), *readable]:
        args += ["--ro-bind", str(path), str(path)]
    args += ["--bind", str(workspace), str(workspace)]
    # mgpt's records, and the git repository whose config mgpt's own (unsandboxed) git
    # commands read: writable, a test could plant core.fsmonitor or a filter driver there
    # and have the host run it at the next commit.
    for name in (".mgpt", ".git"):
        inside = workspace / name
        if inside.exists():
            real = inside.resolve()  # a link's target: the mount goes where writes would
            args += ["--ro-bind", str(real), str(real)]
    for path in writable:
        args += ["--bind", str(path), str(path)]
    # Last, so a secret file stays hidden even inside a folder bound above.
    for path in _hidden_paths(limits.hide):
        if path.is_dir():
            args += ["--tmpfs", str(path)]
        else:
            args += ["--ro-bind", "/dev/null", str(path)]
    args += ["--chdir", str(workspace), "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    # The process cap is set inside the new user namespace, so it counts only the
    # sandbox's processes (set outside, it would count all of the user's).
    prlimit = shutil.which("prlimit")
    if prlimit:
        args += ["--", prlimit, f"--nproc={limits.processes}", "--"]
    else:
        args += ["--", sys.executable, "-S", "-I", "-c",
                 "import os,resource,sys;"
                 f"resource.setrlimit(resource.RLIMIT_NPROC,({limits.processes},{limits.processes}));"
                 "os.execvp(sys.argv[1],sys.argv[1:])"]
    return args


class _PidsCgroup:
    """A cgroup-v1 ``pids`` group capping the sandbox's process count.

    RLIMIT_NPROC does not bind root (the kernel exempts uid 0 even inside a user
    namespace), so when mgpt runs as root the cap comes from the pids controller where it
    is writable. Best effort: without it, the PID namespace and the deadline still bound
    the run."""

    BASE = Path("/sys/fs/cgroup/pids")

    def __init__(self, limit: int) -> None:
        self.path: Path | None = None
        if os.geteuid() != 0 or not (self.BASE / "cgroup.procs").exists():
            return
        self._sweep()
        path = self.BASE / f"mgpt-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(limit))
            self.path = path
        except OSError:
            self.close()

    def _sweep(self) -> None:
        """Remove groups left by an mgpt that was killed (empty once their processes died)."""
        for stale in self.BASE.glob("mgpt-*"):
            try:
                pid = int(stale.name.split("-")[1])
                os.kill(pid, 0)
            except ProcessLookupError:
                try:
                    stale.rmdir()
                except OSError:
                    pass
            except (ValueError, IndexError, PermissionError):
                pass

    def enter(self) -> None:  # runs in the child before exec
        if self.path is not None:
            try:
                with open(self.path / "cgroup.procs", "w") as f:
                    f.write("0")
            except OSError:
                pass

    def close(self) -> None:
        if self.path is None:
            return
        for _ in range(50):  # the group empties as its processes are reaped
            try:
                self.path.rmdir()
                break
            except OSError:
                time.sleep(0.02)
        self.path = None


def _preexec(limits: Limits, cgroup: _PidsCgroup | None, new_session: bool):
    def apply() -> None:  # runs in the child before exec
        import resource

        if new_session:
            os.setsid()
        if cgroup is not None:
            cgroup.enter()
        mb = 1024 * 1024
        for res, value in (
            (resource.RLIMIT_CPU, limits.cpu_seconds),
            (resource.RLIMIT_AS, limits.memory_mb * mb),
            (resource.RLIMIT_FSIZE, limits.file_size_mb * mb),
            (resource.RLIMIT_NOFILE, limits.open_files),
        ):
            try:
                resource.setrlimit(res, (value, value))
            except (ValueError, OSError):
                pass  # a limit the platform does not support is skipped, not fatal

    return apply


class _CappedReader(threading.Thread):
    """Drains a pipe, keeping the first and last ``cap/2`` bytes and counting the rest."""

    def __init__(self, fd: int, cap: int) -> None:
        super().__init__(daemon=True, name="mgpt-sandbox-output")
        self.fd = fd
        self.half = max(cap // 2, 1024)
        self.head = bytearray()
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_len = 0
        self.dropped = 0

    def run(self) -> None:
        try:
            while True:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                room = self.half - len(self.head)
                if room > 0:
                    self.head += chunk[:room]
                    chunk = chunk[room:]
                if chunk:
                    self.tail.append(chunk)
                    self.tail_len += len(chunk)
                    while self.tail_len - len(self.tail[0]) >= self.half:
                        self.tail_len -= len(self.tail[0])
                        self.dropped += len(self.tail.popleft())
        except OSError:
            pass
        finally:
            try:
                os.close(self.fd)
            except OSError:
                pass

    def text(self) -> str:
        tail = b"".join(self.tail)
        if self.tail_len > self.half:  # trim the oldest partial chunk
            cut = self.tail_len - self.half
            self.dropped += cut
            tail = tail[cut:]
            self.tail_len = self.half
        middle = b""
        if self.dropped:
            middle = f"\n[mgpt] ... {self.dropped} bytes of output left out ...\n".encode()
        return (bytes(self.head) + middle + tail).decode("utf-8", "replace")


class _ExitWaiter:
    """Wait for a child's exit with a timeout, waking the moment it exits.

    ``Popen.wait(timeout)`` polls with sleeps that grow to 50 ms, which was most of the
    sandbox's overhead on a short run; a Linux pidfd becomes readable exactly at exit.
    Elsewhere it falls back to ``Popen.wait``."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.fd: int | None = None
        if hasattr(os, "pidfd_open"):
            try:
                self.fd = os.pidfd_open(proc.pid)
            except OSError:
                self.fd = None

    def wait(self, timeout: float) -> int:
        if self.fd is None:
            return self.proc.wait(timeout=timeout)
        import select

        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            raise subprocess.TimeoutExpired(self.proc.args, timeout)
        return self.proc.wait()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _kill(proc: subprocess.Popen, isolated: bool) -> None:
    """Kill the run: in bwrap, killing bwrap takes down its whole PID namespace; without
    it, the process group (a child that called setsid escapes: not isolated)."""
    try:
        if not isolated and os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


def run_sandboxed(
    args: list[str],
    workspace: Path,
    limits: Limits | None = None,
    *,
    path: list[str] | None = None,
    network: bool = False,
    writable: list[Path] | None = None,
    readable: list[Path] | None = None,
    env: dict[str, str] | None = None,
    cancel: threading.Event | None = None,
) -> SandboxResult:
    """Run ``args`` in ``workspace`` under ``limits``; never raises for the child's failures.

    ``path`` is put first on PATH (a project venv's bin); ``network`` lets the run reach
    the network (installing dependencies only); ``writable``/``readable`` are extra
    folders bound into the sandbox; ``env`` adds variables to the allow-listed ones.
    Setting ``cancel`` (from another thread: an async caller runs this in a worker thread)
    kills the run and raises :class:`RunCancelled` within a quarter of a second; so does
    Ctrl-C (KeyboardInterrupt) when this runs in the main thread.
    Raises :class:`SandboxUnavailable` when isolation was asked for and cannot be had.
    """
    limits = limits or Limits()
    workspace = Path(workspace).resolve()
    child_env = clean_env(workspace, path)
    child_env.update(env or {})
    launch = _Launch.plan(
        list(args), workspace, child_env, limits, isolated=require(limits.sandbox) == "bwrap",
        network=network, writable=writable or [], readable=readable or [],
    )
    start = time.perf_counter()
    proc, reader = _spawn(launch, workspace, limits)
    try:
        # Wait in this (the spawning) thread: bwrap's parent-death signal is tied to it.
        timed_out = _wait(proc, start + limits.timeout, cancel, launch.isolated)
    finally:
        # In bwrap mode the namespace is gone, so the pipe closes at once; without it a
        # detached grandchild may hold the pipe open: stop waiting for it after a moment.
        reader.join(timeout=2.0 if launch.isolated else 0.5)
        if launch.cgroup is not None:
            launch.cgroup.close()
    output = redact(reader.text() if not reader.is_alive() else _snapshot(reader))
    if timed_out:
        output += f"\n[mgpt] killed: the run took longer than the {limits.timeout:g} s timeout\n"
    return SandboxResult(
        exit_code=proc.returncode if not timed_out else -9,
        output=output,
        timed_out=timed_out,
        seconds=time.perf_counter() - start,
        isolated=launch.isolated,
        dropped_bytes=reader.dropped,
    )


@dataclass
class _Launch:
    """What to start: the command (bwrap's, wrapping the run, when isolated), the
    environment the started process gets, and the pids cgroup capping it (root only)."""

    cmd: list[str]
    env: dict[str, str]
    isolated: bool
    cgroup: _PidsCgroup | None = None

    @classmethod
    def plan(cls, args: list[str], workspace: Path, child_env: dict[str, str], limits: Limits, *,
             isolated: bool, network: bool, writable: list, readable: list) -> "_Launch":
        if not isolated:
            return cls(args, child_env, isolated=False)
        cmd = _bwrap_args(workspace, child_env, limits, network=network,
                          writable=[Path(p).resolve() for p in writable],
                          readable=[Path(p).resolve() for p in readable]) + args
        # bwrap itself gets the clean environment too: its PID-1 process is visible in
        # the sandbox's /proc, and its environ must hold nothing of ours.
        return cls(cmd, {"PATH": child_env["PATH"]}, isolated=True,
                   cgroup=_PidsCgroup(limits.processes + 4))  # + bwrap's own processes


def _spawn(launch: _Launch, workspace: Path, limits: Limits) -> tuple[subprocess.Popen, _CappedReader]:
    """Start the run with its output on a pipe that a :class:`_CappedReader` drains."""
    read_fd, write_fd = os.pipe()
    reader = _CappedReader(read_fd, limits.output_kb * 1024)
    preexec = _preexec(limits, launch.cgroup, new_session=not launch.isolated) if os.name == "posix" else None
    try:
        proc = subprocess.Popen(launch.cmd, cwd=workspace, env=launch.env, stdin=subprocess.DEVNULL,
                                stdout=write_fd, stderr=write_fd, preexec_fn=preexec)
    except BaseException:
        os.close(read_fd)
        if launch.cgroup is not None:
            launch.cgroup.close()
        raise
    finally:
        os.close(write_fd)
    reader.start()
    return proc, reader


def _wait(proc: subprocess.Popen, deadline: float, cancel: threading.Event | None, isolated: bool) -> bool:
    """Wait for the run to end, or kill it at ``deadline`` (returns True then), on ``cancel``
    (raises :class:`RunCancelled`) or on Ctrl-C: nothing it started may outlive us."""
    waiter = _ExitWaiter(proc)
    try:
        while True:
            try:
                waiter.wait(max(0.0, min(0.25, deadline - time.perf_counter())))
                return False
            except subprocess.TimeoutExpired:
                if cancel is not None and cancel.is_set():
                    raise RunCancelled("the run was cancelled") from None
                if time.perf_counter() >= deadline:
                    _kill(proc, isolated)
                    proc.wait()
                    return True
    except BaseException:  # Ctrl-C or a cancelled task
        _kill(proc, isolated)
        proc.wait()
        raise
    finally:
        waiter.close()


def _snapshot(reader: _CappedReader) -> str:
    """What a still-running reader holds (an escaped process keeps the pipe open)."""
    head = bytes(reader.head)
    for _ in range(10):  # the reader may append while we copy
        try:
            tail = b"".join(list(reader.tail))
            break
        except RuntimeError:
            time.sleep(0.01)
    else:
        tail = b""
    note = b"\n[mgpt] ... output still open: a process escaped the run ...\n"
    return (head + note + tail[-reader.half:]).decode("utf-8", "replace")


def _count(summary: str, word: str) -> int:
    m = re.search(rf"(\d+) {word}", summary)
    return int(m.group(1)) if m else 0


def normalize_output(output: str, workspace: Path) -> str:
    """pytest's output with what changes from run to run taken out (the workspace's
    absolute path, temp folders, timings), so prompts built from it are reproducible and
    a replayed transcript matches."""
    for root in {str(workspace), str(Path(workspace).resolve())}:
        output = output.replace(root + "/", "").replace(root, ".")
    output = output.replace(ISOLATED_PYTEST_TMP, ".mgpt/pytest-tmp/run")
    output = re.sub(r"/tmp/pytest-of-[^/\s]+/pytest-\d+/", "<tmp>/", output)
    # Object addresses (``<dict_valueiterator object at 0x7f33dcde57b0>``) differ each run,
    # also where pytest cut a long repr short (``<generator ob...x7f8ab5f22b20>``).
    output = re.sub(r"\b0x[0-9a-fA-F]{8,16}\b", "0x…", output)
    output = re.sub(r"(\.\.\.)(?:0?x)?[0-9a-fA-F]{4,16}>", r"\1…>", output)
    return re.sub(r" in \d+(\.\d+)?s( \([^)]*\))?", "", output)


#: Where pytest's temporary folders go inside the bwrap sandbox (its own tmpfs): one path
#: whatever the workspace's, so a repr pytest cuts short at 240 characters (a ``tmp_path``
#: in a traceback's arguments) is cut at the same place in every workspace, and a prompt
#: built from the output replays without drift. The output names it as the workspace's
#: ``.mgpt/pytest-tmp`` (:func:`normalize_output`).
ISOLATED_PYTEST_TMP = "/tmp/mgpt-pytest-run"


def pytest_args(python: str, workspace: Path, tests: str = "tests", *, isolated: bool = False) -> list[str]:
    """pytest's command line; ``isolated``: it runs in bwrap (temporary folders in the
    sandbox's own /tmp, at :data:`ISOLATED_PYTEST_TMP`)."""
    base = ISOLATED_PYTEST_TMP if isolated else str(workspace / ".mgpt" / "pytest-tmp" / "run")
    return [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no", "--basetemp", base, tests]


def parse_counts(result: SandboxResult) -> SandboxResult:
    tail = result.output.strip().splitlines()[-1:] or [""]
    summary = tail[0]
    result.passed = _count(summary, "passed")
    result.failed = _count(summary, "failed")
    result.errors = _count(summary, "error")
    return result


def run_pytest(
    workspace: Path,
    limits: Limits | None = None,
    tests: str = "tests",
    *,
    python: str | None = None,
    path: list[str] | None = None,
    cancel: threading.Event | None = None,
) -> SandboxResult:
    """Run the workspace's pytest suite in the sandbox and count the outcome.

    ``python`` is the project environment's interpreter (see
    :mod:`mgpt.sandbox.project_env`); mgpt's own is used only when none is given (tests of
    this module). pytest's temporary folders go in the sandbox's own /tmp under bwrap, else
    under ``.mgpt/pytest-tmp`` inside the workspace (writable in the sandbox although ``.mgpt``
    is not; either way the output names the latter), and the output is
    normalised (:func:`normalize_output`).
    """
    workspace = Path(workspace).resolve()
    limits = limits or Limits()
    tmp = workspace / ".mgpt" / "pytest-tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    result = run_sandboxed(
        pytest_args(python or sys.executable, workspace, tests, isolated=require(limits.sandbox) == "bwrap"),
        workspace,
        limits,
        path=path,
        writable=[tmp],
        cancel=cancel,
    )
    result.output = normalize_output(result.output, workspace)
    return parse_counts(result)

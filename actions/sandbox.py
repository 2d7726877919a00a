"""Run untrusted generated code: a subprocess in the workspace, with limits.

The child gets a timeout (its whole process group is killed when it runs over), limits on
CPU time, memory, file size and open files, and an environment with only what Python needs:
no API keys or other secrets from ours.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: The only variables a generated project's tests see from our environment.
SAFE_ENV_VARS = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT", "TMPDIR")


@dataclass
class Limits:
    timeout: float = 60.0
    cpu_seconds: int = 60
    memory_mb: int = 1024
    file_size_mb: int = 64
    open_files: int = 256


@dataclass
class SandboxResult:
    exit_code: int
    output: str
    timed_out: bool
    seconds: float
    passed: int = 0
    failed: int = 0
    errors: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def clean_env(workspace: Path) -> dict[str, str]:
    env = {k: os.environ[k] for k in SAFE_ENV_VARS if k in os.environ}
    env.update(
        HOME=str(workspace),
        PYTHONPATH=str(workspace),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0",
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
    )
    return env


def _limit(limits: Limits):
    def apply() -> None:  # runs in the child before exec
        import resource

        os.setsid()
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


def run_sandboxed(args: list[str], workspace: Path, limits: Limits | None = None) -> SandboxResult:
    """Run ``args`` in ``workspace`` under ``limits``; never raises for the child's failures."""
    limits = limits or Limits()
    start = time.perf_counter()
    preexec = _limit(limits) if os.name == "posix" else None
    proc = subprocess.Popen(
        args,
        cwd=workspace,
        env=clean_env(workspace),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=preexec,
    )
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=limits.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        if os.name == "posix":
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            proc.kill()
        out, _ = proc.communicate()
    output = out.decode("utf-8", "replace")
    if timed_out:
        output += f"\n[mgpt] killed: the run took longer than the {limits.timeout:g} s timeout\n"
    return SandboxResult(
        exit_code=proc.returncode if not timed_out else -9,
        output=output,
        timed_out=timed_out,
        seconds=time.perf_counter() - start,
    )


def _count(summary: str, word: str) -> int:
    m = re.search(rf"(\d+) {word}", summary)
    return int(m.group(1)) if m else 0


def normalize_output(output: str, workspace: Path) -> str:
    """pytest's output with what changes from run to run taken out (the workspace's
    absolute path, temp folders, timings), so prompts built from it are reproducible and
    a replayed transcript matches."""
    for root in {str(workspace), str(Path(workspace).resolve())}:
        output = output.replace(root + "/", "").replace(root, ".")
    output = re.sub(r"/tmp/pytest-of-[^/\s]+/pytest-\d+/", "<tmp>/", output)
    return re.sub(r" in \d+(\.\d+)?s( \([^)]*\))?", "", output)


def run_pytest(workspace: Path, limits: Limits | None = None, tests: str = "tests") -> SandboxResult:
    """Run the workspace's pytest suite in the sandbox and count the outcome.

    pytest's temporary folders go under ``.mgpt/pytest-tmp`` inside the workspace (not the
    machine's shared /tmp), and the output is normalised (:func:`normalize_output`).
    """
    workspace = Path(workspace)
    (workspace / ".mgpt").mkdir(exist_ok=True)
    result = run_sandboxed(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no",
         "--basetemp", str(workspace / ".mgpt" / "pytest-tmp"), tests],
        workspace,
        limits,
    )
    result.output = normalize_output(result.output, workspace)
    tail = result.output.strip().splitlines()[-1:] or [""]
    summary = tail[0]
    result.passed = _count(summary, "passed")
    result.failed = _count(summary, "failed")
    result.errors = _count(summary, "error")
    return result

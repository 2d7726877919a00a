"""The sandbox's cost per test run, against a plain subprocess running the same command.

    python benchmarks/bench_sandbox.py [--repeat 10]

Side by side in one run, interleaved (plain, none, bwrap, plain, ...) so a busy machine
hurts all three alike, each case --repeat times:
  * ``python -c pass``
  * a tiny pytest run (two tests) with the project venv's interpreter
where *plain* is ``subprocess.run`` with output captured, *none* is
``run_sandboxed(..., sandbox="none")`` (deadline, rlimits, clean env, capped output) and
*bwrap* is the full bubblewrap sandbox. Prints the median, min, max and standard deviation
of the wall time and the overhead: the median of the paired differences against the\nplain run made just before. Also the one-off cost of building a
project venv (offline, from the wheel cache) and of reusing it. Target: overhead at most
150 ms per run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from mgpt.sandbox.isolation import Limits, bwrap_problem, pytest_args, run_sandboxed
from mgpt.sandbox.project_env import ensure_project_env

TARGET_MS = 150.0


def _plain(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, capture_output=True, timeout=120)
    return time.perf_counter() - start


def _boxed(args: list[str], cwd: Path, mode: str) -> float:
    start = time.perf_counter()
    result = run_sandboxed(args, cwd, Limits(sandbox=mode), writable=[cwd / ".mgpt" / "pytest-tmp"])
    took = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"{mode} run failed:\n{result.output[-2000:]}")
    return took


def _row(name: str, times: list[float], plain: list[float] | None) -> str:
    ms = [t * 1000 for t in times]
    sd = statistics.stdev(ms) if len(ms) > 1 else 0.0
    over = ""
    if plain is not None:
        over = f"{_overhead(times, plain) * 1000:+8.1f}"
    return f"| {name:<30} | {statistics.median(ms):8.1f} | {min(ms):8.1f} | {max(ms):8.1f} | {sd:7.1f} | {over:>8} |"


def _overhead(times: list[float], plain: list[float]) -> float:
    """Median of the paired differences: each sandboxed run against the plain run made
    just before it, so load that comes and goes on a shared machine mostly cancels."""
    return statistics.median(t - p for t, p in zip(times, plain))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    problem = bwrap_problem()
    modes = ["none"] + ([] if problem else ["bwrap"])
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        (ws / "tests").mkdir(parents=True)
        (ws / ".mgpt" / "pytest-tmp").mkdir(parents=True)
        (ws / "tests" / "test_tiny.py").write_text("def test_a():\n    assert 1\n\ndef test_b():\n    assert 2\n")
        start = time.perf_counter()
        env = ensure_project_env(ws, Limits(sandbox=modes[-1]), network=False)
        build = time.perf_counter() - start
        if not env.ok:
            raise SystemExit(f"could not build the project venv offline:\n{env.log}")
        start = time.perf_counter()
        reused = ensure_project_env(ws, Limits(sandbox=modes[-1]), network=False)
        reuse = time.perf_counter() - start
        assert reused.reused
        cases = {
            "python -c pass": [str(env.python), "-c", "pass"],
            "pytest, 2 tests": pytest_args(str(env.python), ws),
        }
        print(f"# machine: {platform.machine()} {platform.system()} {platform.release()}, "
              f"python {platform.python_version()}, repeat {args.repeat}"
              + (f"; bwrap unavailable: {problem}" if problem else ""))
        print(f"# project venv: built offline in {build * 1000:.0f} ms, reused in {reuse * 1000:.1f} ms")
        print("| case                           | median ms |   min ms |   max ms |  sd ms | overhead ms |")
        print("|---|---:|---:|---:|---:|---:|")
        worst = 0.0
        for name, cmd in cases.items():
            _plain(cmd, ws)  # warm the page cache
            times: dict[str, list[float]] = {"plain": [], **{m: [] for m in modes}}
            for _ in range(args.repeat):
                times["plain"].append(_plain(cmd, ws))
                for mode in modes:
                    times[mode].append(_boxed(cmd, ws, mode))
            print(_row(f"{name}: plain", times["plain"], None))
            for mode in modes:
                print(_row(f"{name}: sandbox={mode}", times[mode], times["plain"]))
                worst = max(worst, _overhead(times[mode], times["plain"]) * 1000)
        verdict = "met" if worst <= TARGET_MS else "MISSED"
        print(f"# worst median overhead {worst:.1f} ms: target {TARGET_MS:.0f} ms {verdict}")


if __name__ == "__main__":
    main()

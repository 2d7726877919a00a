"""Start-up, import and replay figures for mgpt's agent side.

    python benchmarks/bench_agents.py [--repeat 7]

Prints, each as the median of --repeat cold processes (wall seconds, peak RSS):
  * `mgpt --help`
  * `from mgpt.roles import Role`
  * `mgpt run --replay <golden>` for every golden transcript, generated tests included,
    with the model calls and prompt characters the run sent.
Run it on an idle machine; docs/benchmarks.md records the figures and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mgpt.llm.backends.replay import Transcript

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = sorted((ROOT / "tests" / "golden").glob("*.jsonl"))


def measure(args: list[str], cwd: Path | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, exit code) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def median_of(repeat: int, args: list[str], **kw) -> tuple[float, float]:
    runs = [measure(args, **kw) for _ in range(repeat)]
    bad = [r for r in runs if r[2] != 0]
    if bad:
        raise SystemExit(f"{' '.join(args)} exited {bad[0][2]}")
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    mgpt = shutil.which("mgpt") or sys.exit("install mgpt first: pip install -e .")
    # A wheel install is byte-compiled; compile the editable sources the same way so the
    # figures do not include parsing our own .py files on every start.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT)], check=False,
                   stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"median of {args.repeat} cold runs")
    baseline, base_rss = median_of(args.repeat, [sys.executable, "-c", "pass"])
    print(f"{'python -c pass (floor)':<44} {baseline:7.3f} s {base_rss:7.1f} MiB")
    wall, rss = median_of(args.repeat, [mgpt, "--help"])
    print(f"{'mgpt --help':<44} {wall:7.3f} s {rss:7.1f} MiB")
    wall, rss = median_of(args.repeat, [sys.executable, "-c", "from mgpt.roles import Role"])
    print(f"{'from mgpt.roles import Role':<44} {wall:7.3f} s {rss:7.1f} MiB")
    for transcript in GOLDEN:
        runs = []
        for _ in range(max(3, args.repeat // 2)):
            with tempfile.TemporaryDirectory() as tmp:
                ws = Path(tmp) / "ws"
                wall, rss, code = measure([mgpt, "run", "--replay", str(transcript), "-w", str(ws)])
                if code != 0:
                    raise SystemExit(f"replay of {transcript.name} exited {code}")
                calls = Transcript.load(ws / ".mgpt" / "transcript.jsonl").calls
                chars = sum(len(m.content) for c in calls for m in c.request)
                runs.append((wall, rss, len(calls), chars))
        wall = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        label = f"mgpt run --replay {transcript.stem}"
        print(f"{label:<44} {wall:7.3f} s {rss:7.1f} MiB  {runs[0][2]:3d} calls {runs[0][3]:7d} prompt chars")


if __name__ == "__main__":
    main()

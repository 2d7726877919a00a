"""Wall time under a hosted model's latency: mgpt before and after concurrent calls, against
the critical path of each project's calls.

    python benchmarks/bench_latency.py --before /tmp/mgpt-main [--ttft 0.5 --tps 80 --jitter 0.1]
                                       [--projects lending_library,todo_cli] [--repeat 1] [--parallel N]

Each golden transcript (tests/golden/*.jsonl) is served by the latency-simulating server
(:mod:`mgpt.llm.serve.latency`): the first token after ``--ttft`` seconds, then ``--tps``
tokens a second, each call scaled by up to ``--jitter``. ``mgpt run`` is pointed at it
(``--model openai:simulated --base-url ...``) twice per project: the checkout given as
``--before`` (e.g. ``git archive main | tar -x -C /tmp/mgpt-main``), then this one. For each
it reports the run's wall time (process start to exit, and the run log's first event to its
stop), the calls made, and whether the project's tests passed. Beside them:

* the critical path: the longest chain of dependent calls at their simulated durations,
  PRD -> design -> tasks -> the longest chain of files along their dependencies -> the
  longest test-writing call -> each fix round's longest fix: the floor no scheduler can beat
  (the generated tests' own runs are not model calls and are not in it);
* the sum of all calls' durations: what one call at a time waits for.

The profile default (0.5 s to the first token, 80 tokens/s) is the order of what hosted
small models (gpt-4o-mini class) are published to do; pass another to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mgpt.actions.coding import code_dependencies
from mgpt.actions.documents import SystemDesign, TaskList
from mgpt.agents.runlog import read_log
from mgpt.llm.backends.replay import CallRecord, Transcript
from mgpt.llm.serve.latency import LatencyProfile, LatencyServer

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"


def critical_path(transcript: Transcript, workspace: Path, profile: LatencyProfile) -> float:
    """Seconds of the longest chain of dependent calls, each at its simulated duration."""
    calls: dict[str, list[CallRecord]] = {}
    for call in transcript.calls:
        calls.setdefault(call.action, []).append(call)
    seconds = {(c.action, c.turn): profile.seconds(c) for c in transcript.calls}
    total = sum(seconds[("WritePRD", c.turn)] for c in calls.get("WritePRD", []))
    total += sum(seconds[("WriteDesign", c.turn)] for c in calls.get("WriteDesign", []))
    total += sum(seconds[("WriteTasks", c.turn)] for c in calls.get("WriteTasks", []))
    tasks = TaskList.model_validate_json((workspace / "docs/tasks.json").read_text())
    design = SystemDesign.model_validate_json((workspace / "docs/design.json").read_text())
    needs = code_dependencies(tasks, {f.path: f.purpose for f in design.files})
    finish: dict[str, float] = {}
    for turn, task in enumerate(tasks.tasks, 1):  # plan order: a file's dependencies come first
        start = max((finish[d] for d in needs[task.path] if d in finish), default=0.0)
        finish[task.path] = start + seconds[("WriteCode", turn)]
    total += max(finish.values(), default=0.0)
    total += max((seconds[("WriteTests", c.turn)] for c in calls.get("WriteTests", [])), default=0.0)
    # Fix rounds follow one another; within a round the independent fixes run together. A
    # recorded round is told apart by its turns: one round's calls were all reserved at once.
    fixes = sorted(calls.get("FixBug", []), key=lambda c: c.turn)
    rounds = _fix_rounds(workspace, len(fixes))
    at = 0
    for size in rounds:
        total += max(seconds[("FixBug", c.turn)] for c in fixes[at:at + size])
        at += size
    return total


def _fix_rounds(workspace: Path, calls: int) -> list[int]:
    """How many FixBug calls each fix round made, from the run log (one round per FixBug action)."""
    sizes, current = [], None
    for event in read_log(workspace / ".mgpt/run.jsonl"):
        if event.kind == "action_start" and event.detail == "FixBug":
            current = 0
        elif event.kind == "llm_call" and event.detail == "FixBug" and current is not None:
            current += 1
        elif event.kind == "action_end" and event.detail == "FixBug" and current is not None:
            sizes.append(current)
            current = None
    return sizes if sum(sizes) == calls else [1] * calls


def run_once(code: Path | None, transcript: Path, profile: LatencyProfile, workspace: Path, parallel: int | None) -> dict:
    """One ``mgpt run`` of ``code`` (None: this checkout) against the simulated model."""
    idea = Transcript.load(transcript).header.idea
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MGPT_MODEL", "OPENAI_", "MGPT_API"))}
    if code is not None:
        link = workspace.parent / f"pp-{workspace.name}"
        link.mkdir(parents=True, exist_ok=True)
        (link / "mgpt").symlink_to(code.resolve(), target_is_directory=True)
        env["PYTHONPATH"] = str(link)
    with LatencyServer([transcript], profile) as server:
        args = [sys.executable, "-m", "mgpt", "run", idea, "-w", str(workspace), "--model", "openai:simulated",
                "--base-url", server.base_url]
        if parallel is not None and code is None:
            args += ["--parallel", str(parallel)]
        started = time.perf_counter()
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - started
        served, matches = server.served, server.state.answers.matches
    events = list(read_log(workspace / ".mgpt/run.jsonl"))
    calls = [e for e in events if e.kind == "llm_call"]
    return {
        "exit": proc.returncode, "wall": wall, "run": (events[-1].at - events[0].at).total_seconds(),
        "calls": len(calls), "alike": matches.count("alike"),
        "model_seconds": sum(s.end - s.start for s in served),
        "cached_tokens": sum(int(e.data.get("cached_tokens") or 0) for e in calls),
        "prompt_tokens": sum(int(e.data.get("prompt_tokens") or 0) for e in calls),
        "most_at_once": _most_at_once(served), "error": proc.stderr[-2000:] if proc.returncode else "",
    }


def _most_at_once(served) -> int:
    edges = sorted([(s.start, 1) for s in served] + [(s.end, -1) for s in served])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def bench_project(name: str, args, profile: LatencyProfile, tmp: Path) -> dict:
    transcript_path = GOLDEN / f"{name}.jsonl"
    transcript = Transcript.load(transcript_path)
    result: dict = {"project": name, "calls": len(transcript.calls),
                    "sum_of_calls": sum(profile.seconds(c) for c in transcript.calls)}
    for label, code in (("before", args.before), ("after", None)):
        if code is None and label == "before":
            continue
        runs = [run_once(code, transcript_path, profile, tmp / f"{name}-{label}-{i}", args.parallel)
                for i in range(args.repeat)]
        bad = [r for r in runs if r["exit"] != 0]
        if bad:
            print(f"  {name} {label}: exit {bad[0]['exit']}\n{bad[0]['error']}", file=sys.stderr)
        result[label] = runs
        result[f"{label}_wall"] = statistics.median(r["wall"] for r in runs)
        result[f"{label}_run"] = statistics.median(r["run"] for r in runs)
    result["critical_path"] = critical_path(transcript, tmp / f"{name}-after-0", profile)
    return result


def print_table(results: list[dict], profile: LatencyProfile) -> None:
    print(f"\nprofile: first token {profile.ttft} s, {profile.tokens_per_s} tokens/s, jitter {profile.jitter}; "
          f"times are medians (process wall; run log span in brackets)\n")
    print("| project | calls | sum of calls | critical path | before | after | after / critical path | before / after | most calls at once | cached prompt tokens |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        before = f"{r['before_wall']:.1f} s ({r['before_run']:.1f})" if "before_wall" in r else "-"
        speedup = f"{r['before_wall'] / r['after_wall']:.2f}x" if "before_wall" in r else "-"
        after = r["after"][0]
        print(f"| {r['project']} | {r['calls']} | {r['sum_of_calls']:.1f} s | {r['critical_path']:.1f} s | {before} | "
              f"{r['after_wall']:.1f} s ({r['after_run']:.1f}) | {r['after_wall'] / r['critical_path']:.2f} "
              f"({r['after_run'] / r['critical_path']:.2f}) | {speedup} | {after['most_at_once']} | "
              f"{after['cached_tokens']} of {after['prompt_tokens']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=None, help="a checkout of the code to compare with (e.g. main)")
    parser.add_argument("--projects", default="", help="golden transcripts by name (default: all)")
    parser.add_argument("--ttft", type=float, default=0.5)
    parser.add_argument("--tps", type=float, default=80.0)
    parser.add_argument("--jitter", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=None, help="--parallel for this checkout's runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    profile = LatencyProfile(ttft=args.ttft, tokens_per_s=args.tps, jitter=args.jitter)
    names = [n for n in args.projects.split(",") if n] or sorted(p.stem for p in GOLDEN.glob("*.jsonl"))
    try:
        load = "load average %.1f" % os.getloadavg()[0]
    except OSError:
        load = "load unknown"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {load}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            result = bench_project(name, args, profile, Path(tmp))
            results.append(result)
            print(f"  {name}: critical path {result['critical_path']:.1f} s, after {result['after_wall']:.1f} s"
                  + (f", before {result['before_wall']:.1f} s" if "before_wall" in result else ""), flush=True)
    print_table(results, profile)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()

"""The embedded local model: how long a pull takes, and what a whole run on it achieves.

    python benchmarks/bench_embedded.py pull [--home DIR]          # download + sha256 + convert
    python benchmarks/bench_embedded.py run [--home DIR] [--max-rounds N] [--unconstrained] [--code DIR] [IDEA]
    python benchmarks/bench_embedded.py analyze WORKSPACE           # figures from a finished run
    python benchmarks/bench_embedded.py batch [--home DIR] [--calls 4] [--tokens 96]

``pull`` runs ``mgpt models pull --force`` into DIR (default: a fresh temporary folder) and
reports wall time and the conversion time recorded in the model's manifest. ``run`` runs
``mgpt run IDEA`` (default "build a todo app") with no model configured, so on the embedded
model (``--unconstrained``: with ``MGPT_CONSTRAINED=0``, no grammar), then ``analyze``s its workspace: wall time, exit code, model calls, tokens,
generation speed, how many answers hit the token limit, the first-try structured parse rate
(replies to "Reply with one JSON object" prompts that needed no re-ask; and how many of those
first replies held a JSON object at all), and the tests. ``--code DIR`` runs another checkout
of mgpt (e.g. main, for a before/after).

``batch`` measures the batched decoder on the embedded model: ``--calls`` concurrent calls
(distinct prompts, greedy, ``--tokens`` new tokens each, the code-block grammar) through one
``LocalModel`` that decodes them together (``parallel=calls``), against the same calls one at
a time (``parallel=1``, what a local model did before calls were batched), same process,
alternating, best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mgpt.workflows.company_eval import RETRY_MARK, STRUCTURED_MARK


def _mgpt(*args: str) -> list[str]:
    return [sys.executable, "-m", "mgpt", *args]


def _machine() -> str:
    try:
        load = "load average %.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        load = "load unknown"
    return f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}, {load}"


def bench_pull(home: Path) -> None:
    env = {**os.environ, "MGPT_HOME": str(home)}
    started = time.perf_counter()
    done = subprocess.run(_mgpt("models", "pull", "--force"), env=env)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"mgpt models pull exited {done.returncode}")
    manifest = json.loads((home / "models" / "smollm2-135m-instruct" / "mgpt-model.json").read_text())
    print(f"machine: {_machine()}")
    print(f"mgpt models pull: {wall:.1f} s wall; pull as recorded in the manifest: {manifest['converted_in_s']} s")


def _is_retry(call: dict) -> bool:
    return any(m["role"] == "user" and m["content"].startswith(RETRY_MARK) for m in call["request"])


def _is_structured(call: dict) -> bool:
    return any(m["role"] == "user" and STRUCTURED_MARK in m["content"] for m in call["request"])


def analyze(workspace: Path) -> dict:
    """Figures from a finished run's transcript, event log and QA report."""
    mgpt_dir = workspace / ".mgpt"
    records = [json.loads(line) for line in (mgpt_dir / "transcript.jsonl").read_text().splitlines() if line.strip()]
    calls = [r for r in records if r.get("type") == "call"]
    events = [json.loads(line) for line in (mgpt_dir / "run.jsonl").read_text().splitlines() if line.strip()]
    llm_events = [e for e in events if e["kind"] == "llm_call"]
    seconds = sum(e["data"].get("seconds", 0.0) for e in llm_events)
    completion = sum(c["response"]["usage"]["completion_tokens"] for c in calls)
    prompt = sum(c["response"]["usage"]["prompt_tokens"] for c in calls)
    # A structured first attempt succeeded when the same role/action's next call is not a re-ask.
    from mgpt.llm.parsing import extract_json

    first, first_ok, unknown, has_json = 0, 0, 0, 0
    for i, call in enumerate(calls):
        if not _is_structured(call) or _is_retry(call):
            continue
        first += 1
        try:
            extract_json(call["response"]["text"])
            has_json += 1
        except ValueError:
            pass
        later = [c for c in calls[i + 1 :] if (c["role"], c["action"]) == (call["role"], call["action"])]
        if later and _is_retry(later[0]) and sum(m["content"].startswith(RETRY_MARK) for m in later[0]["request"] if m["role"] == "user") == 1:
            continue
        if not later and call is calls[-1]:
            unknown += 1  # the run ended on it: an error after it would have been a re-ask
            continue
        first_ok += 1
    stop = [e for e in events if e["kind"] == "stop"]
    report = workspace / "docs" / "qa_report.md"
    return {
        "model": records[0].get("model") if records and records[0].get("type") == "header" else None,
        "calls": len(calls),
        "by_action": _count(f"{c['role']}.{c['action']}" for c in calls),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "hit_token_limit": sum(c["response"]["finish_reason"] == "length" for c in calls),
        "model_seconds": round(seconds, 1),
        "completion_tokens_per_s": round(completion / seconds, 2) if seconds else None,
        "structured_first_attempts": first,
        "structured_first_try_ok": first_ok,
        "structured_unknown": unknown,
        "structured_first_try_has_json": has_json,
        "stop": stop[-1]["detail"] if stop else "no stop event (the run ended in an error)",
        "qa_report": report.read_text().splitlines()[:6] if report.is_file() else None,
        "files": sorted(str(p.relative_to(workspace)) for p in workspace.rglob("*") if p.is_file() and ".mgpt" not in p.parts),
    }


def _count(items) -> dict:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def bench_run(home: Path, idea: str, max_rounds: int, constrained: bool = True, code: Path | None = None) -> None:
    workspace = Path(tempfile.mkdtemp(prefix="mgpt-bench-embedded-")) / "ws"
    env = {k: v for k, v in os.environ.items() if k not in ("MGPT_MODEL", "MGPT_CONFIG")}
    env.update(MGPT_HOME=str(home), XDG_CONFIG_HOME=str(workspace.parent / "xdg"))  # nothing configured
    env["MGPT_CONSTRAINED"] = "1" if constrained else "0"
    if code is not None:  # another checkout of mgpt: import it instead of this one
        link = workspace.parent / "pp"
        link.mkdir()
        (link / "mgpt").symlink_to(code.resolve(), target_is_directory=True)
        env["PYTHONPATH"] = str(link)
    print(f"machine: {_machine()}")
    started = time.perf_counter()
    done = subprocess.run(_mgpt("run", idea, "-w", str(workspace), "--max-rounds", str(max_rounds)), env=env)
    wall = time.perf_counter() - started
    figures = analyze(workspace)
    print(json.dumps(
        {"idea": idea, "constrained": constrained, "code": str(code or "this checkout"), "workspace": str(workspace),
         "exit_code": done.returncode,
         "wall_s": round(wall, 1), **figures},
        indent=2,
    ))


BATCH_FILES = ["store.py", "cli.py", "report.py", "models.py", "io.py", "rules.py", "fines.py", "loans.py"]


def bench_batch(home: Path, calls: int, tokens: int, repeat: int) -> None:
    """The embedded model answering ``calls`` concurrent calls batched vs one at a time."""
    import asyncio

    from mgpt.llm.backends.base import ChatMessage, OutputFormat
    from mgpt.llm.local.generate import quantized_decoder
    from mgpt.llm.local.model import LocalModel
    from mgpt.llm.local.store import resolve_local

    _, path = resolve_local("", env={"MGPT_HOME": str(home)})
    decoder = quantized_decoder(path)  # as `mgpt run` decodes the embedded model: int4 lean decoder
    prompts = [[ChatMessage(role="system", content="You are Engineer, a software engineer."),
                ChatMessage(role="user", content=f"Write the file `pkg/{BATCH_FILES[i % len(BATCH_FILES)]}` of a "
                                                 "small lending library. Reply with the file in one ```python block.")]
               for i in range(calls)]

    async def answer(model: LocalModel) -> tuple[float, list]:
        started = time.perf_counter()
        out = await asyncio.gather(*(model.complete(m, output=OutputFormat.code_block()) for m in prompts))
        return time.perf_counter() - started, out

    models = {"one at a time": LocalModel(path, max_new_tokens=tokens, parallel=1, decoder=decoder),
              "batched": LocalModel(path, max_new_tokens=tokens, parallel=calls, decoder=decoder)}
    best: dict[str, float] = {}
    produced: dict[str, int] = {}
    cached: dict[str, int] = {}

    async def measure() -> None:  # one event loop: a model's lock belongs to the loop it first ran in
        for model in models.values():  # load and warm up both before timing
            await model.complete(prompts[0][:1] + [ChatMessage(role="user", content="hi")])
        for _ in range(repeat):
            for label, model in models.items():
                seconds, out = await answer(model)
                best[label] = min(best.get(label, seconds), seconds)
                produced[label] = sum(c.usage.completion_tokens for c in out)
                cached[label] = sum(c.usage.cached_tokens for c in out)
        for model in models.values():
            await model.aclose()

    asyncio.run(measure())
    print(f"machine: {_machine()}")
    for label in models:
        print(f"{label:>14}: {best[label]:.1f} s for {calls} calls, {produced[label]} tokens, "
              f"{produced[label] / best[label]:.1f} tokens/s, {cached[label]} prompt tokens from the prefix cache")
    print(f"batched decoder gain on {calls} calls at once ({decoder}): {best['one at a time'] / best['batched']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("pull")
    p.add_argument("--home", type=Path, help="MGPT_HOME to pull into (default: a fresh temporary folder)")
    r = sub.add_parser("run")
    r.add_argument("idea", nargs="?", default="build a todo app")
    r.add_argument("--home", type=Path, help="MGPT_HOME holding the pulled model (default: $MGPT_HOME)")
    r.add_argument("--max-rounds", type=int, default=12)
    r.add_argument("--unconstrained", action="store_true", help="no grammar (MGPT_CONSTRAINED=0), for comparison")
    r.add_argument("--code", type=Path, default=None, help="run this checkout of mgpt instead (e.g. main)")
    b = sub.add_parser("batch")
    b.add_argument("--home", type=Path, help="MGPT_HOME holding the pulled model (default: $MGPT_HOME)")
    b.add_argument("--calls", type=int, default=4)
    b.add_argument("--tokens", type=int, default=96)
    b.add_argument("--repeat", type=int, default=2)
    a = sub.add_parser("analyze")
    a.add_argument("workspace", type=Path)
    args = parser.parse_args()
    if args.what == "pull":
        home = args.home or Path(tempfile.mkdtemp(prefix="mgpt-home-"))
        try:
            bench_pull(home)
        finally:
            if args.home is None:
                shutil.rmtree(home, ignore_errors=True)
    elif args.what == "run":
        home = args.home or Path(os.environ.get("MGPT_HOME") or Path.home() / ".cache" / "mgpt")
        bench_run(home, args.idea, args.max_rounds, constrained=not args.unconstrained, code=args.code)
    elif args.what == "batch":
        home = args.home or Path(os.environ.get("MGPT_HOME") or Path.home() / ".cache" / "mgpt")
        bench_batch(home, args.calls, args.tokens, args.repeat)
    else:
        print(json.dumps(analyze(args.workspace), indent=2))


if __name__ == "__main__":
    main()

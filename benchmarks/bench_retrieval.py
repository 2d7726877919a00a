"""Retrieval figures: a contrastively trained embedder vs its untrained base vs BM25, and what
the retrieval options do to the company's prompts on the golden transcripts.

    python benchmarks/bench_retrieval.py                      # train embed_tiny, then measure
    python benchmarks/bench_retrieval.py --model runs/embed   # measure an embedder already trained
    python benchmarks/bench_retrieval.py --prompts-only       # only the prompt figures (no torch)

Part 1 trains ``mgpt train embed embed_tiny`` (pairs mined from this Python's stdlib and the
golden transcripts; held-out pairs split by module) and prints recall@1, recall@10 and MRR
of the trained model, the untrained base and BM25 on the held-out pairs, side by side.

Part 2 replays every golden transcript through ``mgpt run`` (a) as today, (b) with
``--context-budget`` for each budget given, (c) with ``--recall`` on a store that already
holds the fixes of one earlier replay of every transcript. It prints the prompt characters
each run sent, whether the generated project's tests still pass, and, for the budgeted
WriteCode/WriteTests prompts, how many of the project modules the recorded answer imports
kept their interface in the prompt (the context the answer needed).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = sorted((ROOT / "tests" / "golden").glob("*.jsonl"))


def mgpt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mgpt", *args], capture_output=True, text=True, timeout=900)


# -- part 1 ----------------------------------------------------------------------------------


def retrieval(model: Path | None, sets: list[str], work: Path) -> None:
    if model is None:
        model = work / "embed"
        t0 = time.perf_counter()
        proc = mgpt("train", "embed", "embed_tiny", "--out", str(model), "-q", *[a for s in sets for a in ("--set", s)])
        print(proc.stdout.strip() or proc.stderr.strip())
        if proc.returncode:
            sys.exit(proc.returncode)
        print(f"trained in {time.perf_counter() - t0:.0f} s wall")
    out = work / "retrieval.json"
    proc = mgpt("eval", "retrieval", "--model", str(model), "--json", str(out))
    if proc.returncode:
        print(proc.stderr)
        sys.exit(proc.returncode)
    results = json.loads(out.read_text())
    kinds = list(results["bm25"])
    print("\n| kind | queries | " + " | ".join(f"{r} R@1 | {r} R@10 | {r} MRR" for r in results) + " |")
    print("|---|---|" + "---|---|---|" * len(results))
    for kind in kinds:
        cells = [f"{results[r][kind]['recall_at_1']:.3f} | {results[r][kind]['recall_at_10']:.3f} | "
                 f"{results[r][kind]['mrr']:.3f}" for r in results]
        print(f"| {kind} | {results['bm25'][kind]['queries']} | " + " | ".join(cells) + " |")


# -- part 2 ----------------------------------------------------------------------------------


def _calls(ws: Path) -> list[dict]:
    lines = (ws / ".mgpt" / "transcript.jsonl").read_text().splitlines()
    return [d for d in map(json.loads, lines) if d.get("type") == "call"]


def _prompt_chars(calls: list[dict], actions: tuple[str, ...] | None = None) -> int:
    return sum(len(m["content"]) for c in calls if actions is None or c["action"] in actions for m in c["request"])


def _project_imports(code: str, modules: set[str]) -> set[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    found = set()
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                 if isinstance(node, ast.ImportFrom) else [])
        found.update(n for n in names if n in modules)
    return found


def _project_modules(ws: Path) -> set[str]:
    """Dotted names of the generated project's modules (tests left out)."""
    mods = set()
    for f in ws.rglob("*.py"):
        rel = f.relative_to(ws)
        if rel.parts[0] in ("tests", ".mgpt") or rel.name.startswith("test_"):
            continue
        parts = list(rel.with_suffix("").parts)
        mods.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return mods


def _needed_kept(calls: list[dict], modules: set[str]) -> tuple[int, int]:
    """(project modules the recorded answer imports whose interface was in the prompt, project
    modules it imports that had been written before it) over WriteCode/WriteTests calls."""
    kept = needed = 0
    for c in calls:
        if c["action"] not in ("WriteCode", "WriteTests"):
            continue
        prompt = c["request"][-1]["content"]
        offered = set(re.findall(r"^# \S+ \(([\w.]+)\)$", prompt, re.M))
        own = {a or b for a, b in re.findall(r"\(module `([\w.]+)`\)|import it as `([\w.]+)`", prompt)}
        block = re.search(r"```python\n(.*?)```", c["response"]["text"], re.S)
        if not block:
            continue
        # Only modules written before this call could have been offered (WriteCode writes in order).
        earlier = {m for m in modules if m not in own}
        if c["action"] == "WriteCode":
            earlier = {m for m in earlier if m in _written_before(calls, c)}
        used = _project_imports(block.group(1), earlier)
        needed += len(used)
        kept += len(used & offered)
    return kept, needed


def _written_before(calls: list[dict], call: dict) -> set[str]:
    return {m for c in calls[:calls.index(call)] if c["action"] == "WriteCode"
            for m in re.findall(r"\(module `([\w.]+)`\)", c["request"][-1]["content"])}


def replay(transcript: Path, ws: Path, *extra: str) -> tuple[bool, list[dict], tuple[int, int]]:
    proc = mgpt("run", "--replay", str(transcript), "-w", str(ws), *extra)
    ok = proc.returncode == 0 and "passed" in proc.stdout + proc.stderr
    if ok:  # the generated project's own tests, outside mgpt
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ws,
                               capture_output=True, text=True, timeout=300)
        ok = tests.returncode == 0
    calls = _calls(ws)
    return ok, calls, _needed_kept(calls, _project_modules(ws))


def prompts(budgets: list[int], work: Path) -> None:
    rows = []
    store = work / "recall"
    for t in GOLDEN:  # today's prompts; fill the recall store with each run's fixes
        ok, calls, kept = replay(t, work / f"ws-{t.stem}-off", "--recall", str(store))
        rows.append((t.stem, "today", ok, len(calls), _prompt_chars(calls), _prompt_chars(calls, ("WriteCode", "WriteTests")),
                     _prompt_chars(calls, ("FixBug",)), kept))
    for budget in budgets:
        for t in GOLDEN:
            ok, calls, kept = replay(t, work / f"ws-{t.stem}-b{budget}", "--context-budget", str(budget))
            rows.append((t.stem, f"--context-budget {budget}", ok, len(calls), _prompt_chars(calls),
                         _prompt_chars(calls, ("WriteCode", "WriteTests")), _prompt_chars(calls, ("FixBug",)), kept))
    for t in GOLDEN:  # a second run with the store the first runs filled
        ok, calls, kept = replay(t, work / f"ws-{t.stem}-recall", "--recall", str(store))
        rows.append((t.stem, "--recall (store from run 1)", ok, len(calls), _prompt_chars(calls),
                     _prompt_chars(calls, ("WriteCode", "WriteTests")), _prompt_chars(calls, ("FixBug",)), kept))
    print("\n| transcript | option | project tests pass | calls | prompt chars | WriteCode+WriteTests chars "
          "| FixBug chars | imported modules with interface in prompt |")
    print("|---|---|---|---|---|---|---|---|")
    for name, opt, ok, n, total, wc, fb, (kept, needed) in rows:
        print(f"| {name} | {opt} | {'yes' if ok else 'NO'} | {n} | {total} | {wc} | {fb} | {kept}/{needed} |")
    print("\n| option | prompt chars, all transcripts | vs today | modules kept | all pass |")
    print("|---|---|---|---|---|")
    base_total = sum(r[4] for r in rows if r[1] == "today")
    for opt in dict.fromkeys(r[1] for r in rows):
        sel = [r for r in rows if r[1] == opt]
        total = sum(r[4] for r in sel)
        kept, needed = sum(r[7][0] for r in sel), sum(r[7][1] for r in sel)
        print(f"| {opt} | {total} | {100 * (total - base_total) / base_total:+.1f}% | {kept}/{needed} | "
              f"{'yes' if all(r[2] for r in sel) else 'NO'} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="An embedder already trained (skips training).")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="Override a training config key.")
    ap.add_argument("--budgets", default="300,600", help="Comma-separated --context-budget values to measure.")
    ap.add_argument("--prompts-only", action="store_true")
    ap.add_argument("--retrieval-only", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_retrieval_"))
    try:
        if not args.prompts_only:
            retrieval(args.model, args.sets, work)
        if not args.retrieval_only:
            prompts([int(b) for b in args.budgets.split(",") if b], work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

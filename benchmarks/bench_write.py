"""The writers' room against one call, on the Python HOWTOs (the same as ``mgpt eval write``).

    python benchmarks/bench_write.py                                   # report split, embedded model
    python benchmarks/bench_write.py --model openai:gpt-4o-mini --max-new-tokens 1500 --sections 5
    python benchmarks/bench_write.py --split tune                      # the HOWTOs prompts were tried on

One task per HOWTO of python3.11-doc (``apt-get install python3.11-doc``): the title is the
brief, the library reference less the pages quoting the HOWTO the sources, the HOWTO the
reference. Rows: one call, the room without execution, the full room, each with the same
model (:mod:`mgpt.workflows.write_eval` says how each score is made). Prints the table
docs/benchmarks.md records, and writes every run and ``results.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mgpt.domains.pydocs.corpus import DEBIAN_SOURCES
from mgpt.workflows.write_eval import ROWS, WriteEvalOptions, format_table, run_write_eval


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="local", help="Model spec (default: the embedded model).")
    ap.add_argument("--base-url", help="OpenAI-compatible server URL.")
    ap.add_argument("--sources", type=Path, default=DEBIAN_SOURCES)
    ap.add_argument("--split", default="report", choices=["report", "tune", "all"])
    ap.add_argument("--task", action="append", default=[], help="Only this HOWTO (repeatable).")
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--out", type=Path, default=Path("runs/bench_write"))
    ap.add_argument("--max-new-tokens", type=int, default=512)
    ap.add_argument("--sections", type=int, default=3)
    ap.add_argument("--threads", type=int)
    args = ap.parse_args()
    started = time.perf_counter()
    result = run_write_eval(WriteEvalOptions(
        model=args.model, base_url=args.base_url, sources=args.sources, split=args.split, tasks=args.task,
        rows=[r for r in args.rows.split(",") if r], out=args.out, max_new_tokens=args.max_new_tokens,
        sections=args.sections, threads=args.threads, progress=lambda line: print(line, file=sys.stderr, flush=True)))
    print(format_table(result))
    print(f"\n{time.perf_counter() - started:.0f} s wall; runs and results.json in {args.out}")


if __name__ == "__main__":
    main()

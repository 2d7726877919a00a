"""``mgpt eval code`` end to end with two scripted "models", side by side in one run:
an oracle that answers every task with its reference solution and a model that answers
with the wrong solution. The oracle must score pass@1 = 1 and the wrong one 0 (the
harness, the code-block extraction and the sandbox agree with the task bank), and the
time per candidate is the cost of one sandboxed pytest run.

    PYTHONPATH=... python3 benchmarks/bench_code_eval.py [--split test] [--limit N]
"""

from __future__ import annotations

import argparse
import re
import time

from mgpt.llm.eval.tasks import load_tasks
from mgpt.llm.backends.testing import FunctionModel
from mgpt.llm.eval.code_sandbox import run_code_eval


def scripted(which: str) -> FunctionModel:
    tasks = {t.id: t for t in load_tasks("all")}

    def answer(messages, context):
        task_id = re.search(r"Write the file `(\w+)\.py`", messages[-1].content).group(1)
        return f"```python\n{getattr(tasks[task_id], which)}```"

    return FunctionModel(answer, name=which)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    print(f"{'model':<10} {'tasks':>5} {'pass@1':>7} {'seconds':>8} {'s/candidate':>11}")
    for which in ("reference", "wrong"):
        start = time.perf_counter()
        result = run_code_eval(scripted(which), split=args.split, limit=args.limit)
        seconds = time.perf_counter() - start
        print(f"{which:<10} {len(result.tasks):>5} {result.pass_at['pass@1']:>7.3f} {seconds:>8.1f} "
              f"{seconds / len(result.tasks):>11.2f}")


if __name__ == "__main__":
    main()

"""Re-record the golden transcripts from the app scripts in ``apps/``.

Each app script holds what a model answered at each step (``ANSWERS``, keyed by role and
action, in turn order). This runs the real software company with those answers through a
:class:`~mgpt.llm.backends.testing.FunctionModel` and records the transcript, so the committed
requests are exactly what today's prompts send. Run after changing a prompt:

    python tests/golden/build.py            # all apps
    python tests/golden/build.py todo_cli   # one
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import tempfile
from pathlib import Path

from mgpt.llm.backends.testing import FunctionModel
from mgpt.workflows import run_company

HERE = Path(__file__).parent


def load_app(name: str):
    spec = importlib.util.spec_from_file_location(f"golden_app_{name}", HERE / "apps" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scripted_model(answers: dict[tuple[str, str], list[str]]) -> FunctionModel:
    """Answers by (role, action) and turn: the n-th answer of a step answers its turn n, so
    calls made together (files written along their dependencies) get their own answers."""

    def answer(messages, context):
        script = answers.get((context.role, context.action), [])
        if context.turn > len(script):
            raise RuntimeError(f"app script has no answer for {context.role}/{context.action} turn {context.turn}")
        return script[context.turn - 1]

    return FunctionModel(answer, name="openai:gpt-4o-mini")


def build(name: str) -> Path:
    app = load_app(name)
    out = HERE / f"{name}.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(
            run_company(app.IDEA, model=scripted_model(app.ANSWERS), workspace=Path(tmp) / "ws", record=out)
        )
        status = "passed" if result.tests_passed else "FAILED"
        print(f"{name}: {result.run.stop_reason} after {result.run.rounds} rounds, tests {status} "
              f"({result.report.passed if result.report else 0} passed), fix rounds "
              f"{result.report.fix_round if result.report else '-'} -> {out.relative_to(HERE.parent.parent)}")
    return out


if __name__ == "__main__":
    names = sys.argv[1:] or sorted(p.stem for p in (HERE / "apps").glob("*.py"))
    for name in names:
        build(name)

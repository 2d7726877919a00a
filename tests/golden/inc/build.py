"""Re-record the incremental golden transcripts (``mgpt run ... --inc``) from ``apps/``.

Each app script names its base project (``BASE``: a golden transcript in ``tests/golden``
that builds it, or ``None`` with the project's files in ``FILES``) and what a model
answered at each step of the incremental run (``ANSWERS``, by role and action, in turn
order). This builds the base, then runs the real incremental company with those answers
through a :class:`~mgpt.llm.backends.testing.FunctionModel`, recording the transcript, so the
committed requests are exactly what today's prompts send. Run after changing a prompt:

    python tests/golden/inc/build.py                  # all apps
    python tests/golden/inc/build.py todo_due_dates   # one
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import tempfile
import warnings
from pathlib import Path

from mgpt.llm.backends.replay import ReplayModel, TranscriptDriftWarning
from mgpt.workflows import run_company

HERE = Path(__file__).parent
GOLDEN = HERE.parent


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_app(name: str):
    return _load(HERE / "apps" / f"{name}.py", f"golden_inc_app_{name}")


def make_base(app, workspace: Path) -> None:
    """The project the incremental run extends: a golden run replayed, or plain files."""
    if app.BASE is not None:
        with warnings.catch_warnings():  # the base transcript's own prompt drift is not ours to report
            warnings.simplefilter("ignore", TranscriptDriftWarning)
            result = asyncio.run(run_company(_idea(app.BASE), model=ReplayModel(GOLDEN / f"{app.BASE}.jsonl"),
                                             workspace=workspace))
        if not result.tests_passed:
            raise RuntimeError(f"the base run {app.BASE} did not pass its tests")
        return
    for rel, text in app.FILES.items():
        path = workspace / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _idea(base: str) -> str:
    return ReplayModel(GOLDEN / f"{base}.jsonl").transcript.header.idea


def build(name: str) -> Path:
    scripted_model = _load(GOLDEN / "build.py", "golden_build").scripted_model
    app = load_app(name)
    out = HERE / f"{name}.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        make_base(app, ws)
        result = asyncio.run(run_company(app.IDEA, model=scripted_model(app.ANSWERS), workspace=ws,
                                         record=out, incremental=True))
        report = result.report
        print(f"{name}: {result.run.stop_reason} after {result.run.rounds} rounds, tests "
              f"{'passed' if result.tests_passed else 'FAILED'} ({report.passed if report else 0} passed), "
              f"fix rounds {report.fix_round if report else '-'} -> {out.relative_to(GOLDEN.parent.parent)}")
    return out


if __name__ == "__main__":
    names = sys.argv[1:] or sorted(p.stem for p in (HERE / "apps").glob("*.py"))
    for name in names:
        build(name)

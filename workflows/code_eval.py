"""``mgpt eval code``: the task bank, a model and the sandbox wired together.

Why here and not in ``mgpt.llm.eval``: candidates are model output, hostile until proven
otherwise, so they run in the sandbox of ``mgpt.actions.sandbox``, and their code block is
found by ``mgpt.actions.parsing``. Both are a layer above ``llm``; the sampling and scoring
loop (:func:`mgpt.llm.eval.code.evaluate_code`) takes them as parameters and this module,
which may import ``actions``, passes them in. The one call into the sandbox is
:func:`sandbox_check`, so a change to the sandbox's API touches one small function.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from mgpt.actions.parsing import extract_code
from mgpt.actions.sandbox import Limits, run_pytest
from mgpt.llm.base import Model
from mgpt.llm.eval.code import CheckResult, CodeEvalResult, evaluate_code
from mgpt.llm.eval.errors import EvalInputError
from mgpt.llm.eval.tasks import CodeTask, load_tasks

__all__ = ["run_code_eval", "sandbox_check", "write_workspace"]


def write_workspace(task: CodeTask, code: str, root: Path) -> Path:
    """A fresh project folder: the candidate as ``<id>.py``, the hidden tests under ``tests/``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / task.filename).write_text(code, encoding="utf-8")
    (root / "tests").mkdir(exist_ok=True)
    (root / "tests" / task.test_filename).write_text(task.tests, encoding="utf-8")
    return root


def sandbox_check(task: CodeTask, code: str, *, timeout: float = 20.0) -> CheckResult:
    """Run one candidate against its task's hidden tests in the sandbox, in a throwaway folder."""
    tmp = Path(tempfile.mkdtemp(prefix=f"mgpt-code-{task.id}-"))
    try:
        ws = write_workspace(task, code, tmp / "ws")
        r = run_pytest(ws, Limits(timeout=timeout, cpu_seconds=max(1, int(timeout)), memory_mb=1024))
        failed = r.failed + r.errors
        return CheckResult(passed=r.ok and failed == 0 and r.passed > 0, tests_passed=r.passed,
                           tests_failed=failed, timed_out=r.timed_out, seconds=r.seconds, output=r.output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _set_temperature(model: Model, temperature: float | None) -> float | None:
    """Apply ``temperature`` to a backend that has one (hf:, openai:); returns what applies."""
    if temperature is None:
        return getattr(model, "temperature", None)
    if hasattr(model, "temperature"):
        model.temperature = temperature  # type: ignore[attr-defined]
        return temperature
    return None


def _resolve_model(model: Model | str, base_url: str | None, api_key_file: Path | None,
                   max_tokens: int | None) -> Model:
    if not isinstance(model, str):
        return model
    from mgpt.llm.models import infer_model

    api_key = None
    if api_key_file is not None:
        try:
            api_key = api_key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise EvalInputError(f"cannot read the API key file {api_key_file}: {exc.strerror or exc}") from None
    return infer_model(model, base_url=base_url, api_key=api_key, max_tokens=max_tokens)


def run_code_eval(
    model: Model | str,
    *,
    split: str = "test",
    families: Sequence[str] | None = None,
    limit: int | None = None,
    n: int = 1,
    ks: Sequence[int] = (1,),
    temperature: float | None = None,
    timeout: float = 20.0,
    json_out: Path | None = None,
    on_sample: Callable | None = None,
    base_url: str | None = None,
    api_key_file: Path | None = None,
    max_tokens: int | None = None,
    tasks: Sequence[CodeTask] | None = None,
) -> CodeEvalResult:
    """Evaluate ``model`` (a backend or a spec such as ``openai:gpt-4o-mini``, ``hf:DIR``) on
    the task bank's ``split`` (its first ``limit`` tasks if given); write the results to
    ``json_out``. ``tasks`` replaces the split with a list of its own."""
    if tasks is None:
        try:
            tasks = load_tasks(split, families)
        except ValueError as exc:
            raise EvalInputError(str(exc)) from None
    tasks = list(tasks)[:limit] if limit else list(tasks)
    model = _resolve_model(model, base_url, api_key_file, max_tokens)
    applied = _set_temperature(model, temperature)

    async def go() -> CodeEvalResult:
        try:
            return await evaluate_code(
                model, tasks, check=lambda t, code: sandbox_check(t, code, timeout=timeout), extract=extract_code,
                n=n, ks=ks, split=split, temperature=applied, on_sample=on_sample)
        finally:
            await model.aclose()

    result = asyncio.run(go())
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    return result

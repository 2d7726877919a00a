"""``mgpt eval code``: the task bank, a model and the sandbox wired together.

Candidates are model output, hostile until proven otherwise, so they run in the sandbox
(:mod:`mgpt.sandbox.isolation`), and their code block is found by
:func:`mgpt.llm.parsing.extract_code`. The sampling and scoring loop
(:func:`mgpt.llm.eval.code.evaluate_code`) takes the check as a parameter, so tests can
pass plain functions; the one call into the sandbox is :func:`sandbox_check`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import sys
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from mgpt.llm.parsing import extract_code
from mgpt.sandbox.isolation import Limits, run_pytest, run_sandboxed
from mgpt.llm.backends.base import Model
from mgpt.llm.eval.code import CheckResult, CodeEvalResult, SampleResult, TaskResult, evaluate_code
from mgpt.llm.eval.errors import EvalInputError
from mgpt.llm.eval.tasks import CodeTask, load_tasks

if TYPE_CHECKING:
    from mgpt.agents.runner import RunnerOptions

__all__ = ["quick_check", "run_code_eval", "sandbox_check", "write_workspace"]


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


#: The test runner of :func:`quick_check`, run as ``python -c RUNNER <module> <marker>`` in the
#: workspace. It does what pytest does with the bank's test files, and no more: import
#: ``tests/test_<id>.py`` (a failure there is a collection error), call every function named
#: ``test*`` in its namespace in order (imported ones too, as pytest collects them), give
#: ``capsys`` to those that ask for it, count an exception (SystemExit included) as a
#: failure and an unknown fixture as an error. ``pytest.raises`` (with ``match``) comes from
#: a stand-in module, because importing pytest is most of a check's time. The counts go
#: out as one line after ``marker``, a random token per run, so nothing a candidate prints
#: is taken for them by accident. (Code written to forge them could: it runs in the same
#: process, as it could forge pytest's summary line. Containing it is the sandbox's job.)
RUNNER = r"""
import importlib.util, inspect, io, json, re, sys, types
module, marker = sys.argv[1], sys.argv[2]
real_out = sys.stdout
class _Raises:
    def __init__(self, exc, match=None):
        self.exc, self.match = exc, match
    def __enter__(self):
        return self
    def __exit__(self, kind, value, tb):
        if kind is None:
            raise AssertionError(f"DID NOT RAISE {self.exc}")
        if not issubclass(kind, self.exc):
            return False
        if self.match is not None and not re.search(self.match, str(value)):
            raise AssertionError(f"{value!r} does not match {self.match!r}")
        self.value = value
        return True
shim = types.ModuleType("pytest")
shim.raises = _Raises
sys.modules["pytest"] = shim
class _Capsys:
    def __init__(self):
        self.out, self.err = io.StringIO(), io.StringIO()
    def readouterr(self):
        out, err = self.out.getvalue(), self.err.getvalue()
        self.out.seek(0); self.out.truncate(); self.err.seek(0); self.err.truncate()
        return types.SimpleNamespace(out=out, err=err)
counts = {"passed": 0, "failed": 0, "errors": 0}
report = []
try:
    spec = importlib.util.spec_from_file_location("test_" + module, f"tests/test_{module}.py")
    tests = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = tests
    spec.loader.exec_module(tests)
except BaseException as exc:
    counts["errors"] += 1
    report.append(f"collection error: {type(exc).__name__}: {exc}"[:300])
    tests = None
for name, fn in (list(vars(tests).items()) if tests else []):
    if not (name.startswith("test") and inspect.isfunction(fn)):
        continue
    params = list(inspect.signature(fn).parameters)
    if any(p != "capsys" for p in params):
        counts["errors"] += 1
        report.append(f"{name}: fixture not found")
        continue
    cap = _Capsys()
    sys.stdout, sys.stderr = cap.out, cap.err
    try:
        fn(*([cap] if params else []))
    except BaseException as exc:
        counts["failed"] += 1
        report.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
    else:
        counts["passed"] += 1
    finally:
        sys.stdout, sys.stderr = real_out, sys.__stderr__
print("\n".join(report), file=real_out)
print(marker, json.dumps(counts), file=real_out, flush=True)
sys.exit(0 if counts["passed"] and not counts["failed"] and not counts["errors"] else 1)
"""


def quick_check(task: CodeTask, code: str, *, timeout: float = 10.0) -> CheckResult:
    """:func:`sandbox_check` without pytest's start-up: one sandboxed subprocess per
    candidate, with a deadline, running the hidden tests with :data:`RUNNER`.

    Why: the learning loop checks thousands of answers, and starting pytest is most of
    each check (with bubblewrap on the shared 2-core box: 0.08-0.24 s a check against
    0.22-0.58 s for :func:`sandbox_check`, 11 tasks measured). The task bank's tests use
    plain functions, ``pytest.raises`` and ``capsys`` only; ``tests/llm/eval/test_quick_check.py``
    shows this check passes every task's reference and fails every wrong solution (as
    pytest does, ``tests/llm/eval/test_taskbank.py``), with pytest's exact counts on tasks
    using raises, ``match=`` and capsys. Same sandbox (``$MGPT_SANDBOX``), same limits,
    same pass rule: exit 0, no failure, a test passed.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f"mgpt-quick-{task.id}-"))
    try:
        ws = write_workspace(task, code, tmp / "ws")
        marker = "MGPT-COUNTS-" + secrets.token_hex(8)
        r = run_sandboxed([sys.executable, "-c", RUNNER, task.id, marker], ws,
                          Limits(timeout=timeout, cpu_seconds=max(1, int(timeout)), memory_mb=1024))
        counts = {"passed": 0, "failed": 0, "errors": 0}
        for line in r.output.splitlines():
            if line.startswith(marker + " "):
                try:
                    found = json.loads(line[len(marker) + 1:])
                except ValueError:
                    continue
                if isinstance(found, dict) and all(type(found.get(k)) is int and found[k] >= 0 for k in counts):
                    counts = {k: found[k] for k in counts}
        failed = counts["failed"] + counts["errors"]
        passed = counts["passed"]
        return CheckResult(passed=r.ok and failed == 0 and passed > 0, tests_passed=passed, tests_failed=failed,
                           timed_out=r.timed_out, seconds=r.seconds, output=r.output)
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
    runner: RunnerOptions | None = None,
) -> CodeEvalResult:
    """Evaluate ``model`` (a backend or a spec such as ``openai:gpt-4o-mini``, ``hf:DIR``) on
    the task bank's ``split`` (its first ``limit`` tasks if given); write the results to
    ``json_out``. ``tasks`` replaces the split with a list of its own.

    ``runner``: run the tasks on the task runner (``--workers``, ``--ray``), one runner task
    per bank task and its ``n`` samples (:func:`code_task`); ``model`` is then a spec, since
    each worker builds its own backend. ``on_sample`` is then called as each task finishes."""
    if tasks is None:
        try:
            tasks = load_tasks(split, families)
        except ValueError as exc:
            raise EvalInputError(str(exc)) from None
    tasks = list(tasks)[:limit] if limit else list(tasks)
    if runner is not None:
        settings = {"split": split, "n": n, "ks": list(ks), "temperature": temperature, "timeout": timeout,
                    "base_url": base_url, "api_key_file": str(api_key_file.resolve()) if api_key_file else None,
                    "max_tokens": max_tokens}
        return _write_result(run_code_tasks(model, tasks, settings, runner, on_sample), json_out)
    model = _resolve_model(model, base_url, api_key_file, max_tokens)
    applied = _set_temperature(model, temperature)

    async def go() -> CodeEvalResult:
        try:
            return await evaluate_code(
                model, tasks, check=lambda t, code: sandbox_check(t, code, timeout=timeout), extract=extract_code,
                n=n, ks=ks, split=split, temperature=applied, on_sample=on_sample)
        finally:
            await model.aclose()

    return _write_result(asyncio.run(go()), json_out)


def _write_result(result: CodeEvalResult, json_out: Path | None) -> CodeEvalResult:
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    return result


#: The runner's task function for one task of the bank.
CODE_TASK = "mgpt.llm.eval.code_sandbox:code_task"


def run_code_tasks(model: Model | str, tasks: Sequence[CodeTask], settings: dict[str, Any], runner: RunnerOptions,
                   on_sample: Callable | None = None) -> CodeEvalResult:
    """:func:`run_code_eval` on the task runner: each task of the bank (its ``n`` samples)
    is a runner task; the results come back in the bank's order."""
    from mgpt.agents.runner import Task, run_tasks

    if not isinstance(model, str):
        raise EvalInputError("with --workers or --ray the model is named by its spec (each worker builds its "
                             "own), e.g. 'openai:gpt-4o-mini' or 'hf:DIR', not passed as a backend")
    n, ks = settings["n"], settings["ks"]
    bad = [k for k in ks if k < 1 or k > n]
    if n < 1 or bad or not tasks:
        raise EvalInputError("no tasks to evaluate (check --split and --family)" if not tasks else
                             f"pass@k needs 1 <= k <= n, and n is {n}: raise -n or lower --k")
    jobs = [Task(id=t.id, fn=CODE_TASK, args={"task": t.id, "model": model, **settings}, journal="transcript.jsonl")
            for t in tasks]
    by_id = {t.id: t for t in tasks}

    def on_update(update) -> None:
        if runner.on_update is not None:
            runner.on_update(update)
        if on_sample is not None and update.outcome is not None and update.outcome.status == "done":
            result = task_from_dict(update.outcome.result["task"])
            on_sample(by_id[update.id], n, result.samples[-1])

    done = run_tasks(jobs, replace(runner, on_update=on_update))
    missing = [o for o in done.outcomes if o.status != "done"]
    if missing:
        raise EvalInputError(f"{len(missing)} of {len(jobs)} task(s) did not finish (first: {missing[0].id}: "
                             f"{missing[0].error[:300]}); their records are in {done.out}")
    results = [o.result for o in done.outcomes]
    return CodeEvalResult(
        model=results[0]["model"], split=settings["split"], n=n, ks=list(ks), temperature=results[0]["temperature"],
        tasks=[task_from_dict(r["task"]) for r in results], seconds=done.seconds,
        prompt_tokens=sum(r["prompt_tokens"] for r in results),
        completion_tokens=sum(r["completion_tokens"] for r in results))


def task_from_dict(data: dict[str, Any]) -> TaskResult:
    """A :class:`TaskResult` back from its JSON form (as a runner task returns it)."""
    return TaskResult(**{**data, "samples": [SampleResult(**s) for s in data["samples"]]})


def code_task(ctx) -> dict[str, Any]:
    """The runner's task function: one task of the bank, its ``n`` samples asked and checked.

    Every answer is recorded in the task's journal (a transcript), so an attempt after a
    worker died asks the model only for the samples not answered yet."""
    from mgpt.llm.backends.replay import RecordingModel, ResumeModel, Transcript, TranscriptHeader

    args = ctx.args
    task = next(t for t in load_tasks("all") if t.id == args["task"])
    key_file = Path(args["api_key_file"]) if args.get("api_key_file") else None
    model = _resolve_model(args["model"], args.get("base_url"), key_file, args.get("max_tokens"))
    applied = _set_temperature(model, args.get("temperature"))
    recorded = Transcript.load(ctx.journal, resuming=True).calls if ctx.resume else []
    recorder = RecordingModel(model, ctx.journal, header=TranscriptHeader(model=model.name, meta={"task": task.id}),
                              append=ctx.resume)
    answering = ResumeModel(recorder, recorded, source=ctx.journal) if recorded else recorder
    timeout = args["timeout"]

    async def go() -> CodeEvalResult:
        try:
            return await evaluate_code(answering, [task], check=lambda t, code: sandbox_check(t, code, timeout=timeout),
                                       extract=extract_code, n=args["n"], ks=args["ks"], split=args["split"],
                                       temperature=applied)
        finally:
            await recorder.aclose()

    result = asyncio.run(go())
    (scored,) = result.tasks
    return {"ok": scored.correct > 0, "task": asdict(scored), "model": model.name, "temperature": applied,
            "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens}

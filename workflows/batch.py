"""``mgpt batch``: one run of an SOP per idea, on the task runner, a workspace each.

The input is a text file, one idea per line (blank lines and ``#`` comments skipped), or
JSON Lines, one record per run::

    {"idea": "a todo CLI", "model": "openai:gpt-4o-mini", "options": {"fix_rounds": 1}}
    {"model": "replay:runs/todo.jsonl"}          # a replay's idea is the recorded one

``options`` are :data:`RUN_OPTIONS` and the SOP's own (the software company's
``fix_rounds``, ``context_budget``). Each run is a task of :mod:`mgpt.agents.runner`
(:func:`run_item`), written into ``OUT/NNN-slug``; the batch's budget is shared by all of
them, a run whose worker died continues its own transcript, and ``--resume`` skips the
runs that finished.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgpt.agents.errors import BudgetExceeded
from mgpt.agents.runner import BatchError, BatchResult, RunnerOptions, Task, TaskContext, run_tasks

#: Options a record may set for its run besides the SOP's own.
RUN_OPTIONS = ("max_rounds", "sandbox", "test_timeout", "history")
#: The task function every run of a batch is.
RUN_ITEM = "mgpt.workflows.batch:run_item"


@dataclass
class BatchItem:
    """One line of the input: an idea, and optionally its own model and options."""

    idea: str | None
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchSettings:
    """What every run of the batch shares unless its record says otherwise."""

    sop: str = "software"
    model: str | None = None
    base_url: str | None = None
    #: read on each worker (a key never travels in a task)
    api_key_file: str | None = None
    timeout: float | None = None
    max_tokens_per_call: int | None = None
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


def load_ideas(path: Path) -> list[BatchItem]:
    """The runs ``path`` asks for (text: one idea a line; JSON Lines: one record a line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BatchError(f"cannot read the ideas file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BatchError(f"{path} is not UTF-8 text: give one idea per line, or JSON Lines") from None
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)]
    lines = [(n, line) for n, line in lines if line and not line.startswith("#")]
    if not lines:
        raise BatchError(f"{path} holds no ideas: write one idea per line (or JSON Lines records)")
    if Path(path).suffix == ".jsonl" or lines[0][1].startswith("{"):
        return [_record(path, n, line) for n, line in lines]
    return [BatchItem(idea=line) for _, line in lines]


def _record(path: Path, lineno: int, line: str) -> BatchItem:
    where = f"{path}:{lineno}"
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise BatchError(f"{where}: not a JSON record ({exc})") from None
    if not isinstance(data, dict):
        raise BatchError(f"{where}: a record is a JSON object with idea, model and options")
    unknown = set(data) - {"idea", "model", "options"}
    if unknown:
        raise BatchError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; a record has idea, model, options")
    idea, model, options = data.get("idea"), data.get("model"), data.get("options") or {}
    if idea is not None and (not isinstance(idea, str) or not idea.strip()):
        raise BatchError(f"{where}: idea must be a non-empty string")
    if model is not None and not isinstance(model, str):
        raise BatchError(f"{where}: model must be a model spec string such as openai:gpt-4o-mini")
    if not isinstance(options, dict):
        raise BatchError(f"{where}: options must be an object, e.g. {{\"fix_rounds\": 1}}")
    if idea is None and not (model or "").startswith("replay:"):
        raise BatchError(f"{where}: no idea (only a replay: model may leave it out, to run the recorded one)")
    return BatchItem(idea=idea, model=model, options=options)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "idea"


def make_tasks(items: list[BatchItem], settings: BatchSettings) -> list[Task]:
    """One runner task per item; relative paths (replays, key files) made absolute here,
    since workers run elsewhere."""
    from mgpt.workflows.sops import get_sop

    sop = get_sop(settings.sop)
    allowed = set(RUN_OPTIONS) | set(sop.options)
    tasks = []
    for n, item in enumerate(items, 1):
        spec = _absolute_spec(item.model or settings.model)
        if spec is None:
            raise BatchError(f"run {n} has no model: pass --model (-m), set MGPT_MODEL, or give the record a model")
        idea = item.idea if item.idea is not None else _recorded_idea(spec)
        options = {**settings.options, **item.options}
        bad = set(options) - allowed
        if bad:
            raise BatchError(f"run {n} ({idea[:40]!r}): {', '.join(sorted(bad))} is not an option of a run of the "
                             f"{sop.name!r} SOP; the options: {', '.join(sorted(allowed))}")
        args = {"idea": idea, "model": spec, "sop": sop.name, "options": options, "base_url": settings.base_url,
                "api_key_file": str(Path(settings.api_key_file).resolve()) if settings.api_key_file else None,
                "timeout": settings.timeout, "max_tokens": settings.max_tokens_per_call,
                "prices": {k: list(v) for k, v in settings.prices.items()}}
        tasks.append(Task(id=f"{n:03d}-{_slug(idea)}", fn=RUN_ITEM, args=args))
    return tasks


def _absolute_spec(spec: str | None) -> str | None:
    if spec is None:
        return None
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("replay", "hf") and rest:
        return f"{kind}:{Path(rest).expanduser().resolve()}"
    return spec


def _recorded_idea(spec: str) -> str:
    from mgpt.llm.backends.replay import Transcript

    idea = Transcript.load(spec.partition(":")[2]).header.idea
    if not idea.strip():
        raise BatchError(f"{spec} records no idea: give the record an idea")
    return idea


def run_batch(items: list[BatchItem], settings: BatchSettings, runner: RunnerOptions) -> BatchResult:
    """Run every item on the task runner (see :func:`mgpt.agents.runner.run_tasks`)."""
    return run_tasks(make_tasks(items, settings), runner)


def run_item(ctx: TaskContext) -> dict[str, Any]:
    """The task function of one run: build the model, run the SOP into the task's folder
    (continuing its transcript when ``ctx.resume``), and sum the run up as JSON."""
    import asyncio
    import warnings

    from mgpt.llm.backends.replay import TranscriptDriftWarning
    from mgpt.workflows.sops import get_sop

    args = ctx.args
    sop = get_sop(args["sop"])
    options, sop_options = _run_options(ctx)
    with warnings.catch_warnings(record=True) as drift:
        warnings.simplefilter("always", TranscriptDriftWarning)
        result = asyncio.run(sop.run(args["idea"], model=_model(args), options=options, **sop_options))
    if result.run.stop_reason == "budget":
        raise BudgetExceeded(result.run.detail)  # left for --resume with a larger budget
    return summarize(result, drifted=sum(issubclass(w.category, TranscriptDriftWarning) for w in drift))


def _model(args: dict[str, Any]):
    from mgpt.llm.models import infer_model

    key = None
    if args.get("api_key_file"):
        try:
            key = Path(args["api_key_file"]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise BatchError(f"cannot read the API key file {args['api_key_file']} on this worker: "
                             f"{exc.strerror or exc}") from None
    return infer_model(args["model"], base_url=args.get("base_url"), api_key=key, timeout=args.get("timeout"),
                       max_tokens=args.get("max_tokens"))


def _run_options(ctx: TaskContext):
    """The run's :class:`RunOptions` (in the task's folder, on the batch's budget) and the
    SOP's own options."""
    from mgpt.llm.backends.cost import PriceTable
    from mgpt.sandbox.isolation import Limits
    from mgpt.workflows.harness import RunOptions

    options = dict(ctx.args["options"])
    limits = Limits(timeout=float(options.pop("test_timeout", 60.0)))
    run = {k: options.pop(k) for k in ("max_rounds", "sandbox", "history") if k in options}
    prices = {k: tuple(v) for k, v in ctx.args.get("prices", {}).items()}
    return RunOptions(workspace=ctx.workdir, budget=ctx.budget, resume=ctx.resume, limits=limits,
                      prices=PriceTable(prices), **run), options


def summarize(result, *, drifted: int = 0) -> dict[str, Any]:
    """A run's result as the JSON a batch records."""
    spend = result.run.spend
    report = getattr(result, "report", None)
    return {
        "ok": bool(result.ok), "stop_reason": result.run.stop_reason, "detail": result.run.detail,
        "files": len(result.files),
        "tests": {"passed": report.passed, "failed": report.failed, "errors": report.errors} if report else None,
        "calls": spend.calls, "prompt_tokens": spend.prompt_tokens, "completion_tokens": spend.completion_tokens,
        "cost": spend.cost, "cost_known": spend.cost_known, "replayed_calls": getattr(result, "replayed_calls", 0),
        "new_calls": getattr(result, "new_calls", 0), "drifted_prompts": drifted,
    }

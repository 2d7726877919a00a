"""``mgpt batch``: the flags gathered into a :class:`BatchRequest`, the batch run on the
task runner (:mod:`mgpt.workflows.batch`), its summary printed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from mgpt.cli.run import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_STOPPED, EXIT_TESTS_FAILED


@dataclass
class BatchRequest:
    """Every flag of ``mgpt batch``, as given (see ``mgpt batch --help``)."""

    ideas: Path
    out: Optional[Path] = None
    sop: str = "software"
    model: Optional[str] = None
    base_url: Optional[str] = None
    api_key_file: Optional[Path] = None
    timeout: Optional[float] = None
    config: Optional[Path] = None
    workers: Optional[int] = None
    ray: Optional[str] = None
    resume: bool = False
    retries: int = 2
    budget: Optional[float] = None
    max_tokens: Optional[int] = None
    max_rounds: Optional[int] = None
    fix_rounds: Optional[int] = None
    sandbox: Optional[str] = None
    test_timeout: Optional[float] = None
    json_out: Optional[Path] = None


def execute(req: BatchRequest) -> int:
    """Run the batch ``req`` asks for and print its summary; returns the exit code."""
    import typer
    from rich.console import Console

    from mgpt.agents.errors import MgptError

    console = Console(stderr=True)
    try:
        result = _run(req, console)
    except MgptError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        return EXIT_ERROR
    except KeyboardInterrupt:
        typer.secho(f"error: interrupted; finished runs are recorded: continue with mgpt batch {req.ideas} "
                    f"--out {req.out} --resume", err=True, fg=typer.colors.RED)
        return EXIT_INTERRUPTED
    summary(console, result)
    if req.json_out is not None:
        write_json(result, req.json_out)
    if not result.complete:
        return EXIT_STOPPED
    return EXIT_OK if result.failed == 0 else EXIT_TESTS_FAILED


def _run(req: BatchRequest, console):
    from mgpt.agents.runner import RunnerOptions
    from mgpt.cli.config import load_settings
    from mgpt.cli.live import BatchView
    from mgpt.workflows.batch import BatchSettings, load_ideas, run_batch

    settings = load_settings(config=req.config, model=req.model, base_url=req.base_url,
                             api_key_file=req.api_key_file, timeout=req.timeout)
    for note in settings.notes:
        console.print(f"[yellow]note: {note}[/]", highlight=False, soft_wrap=True)
    if settings.api_key and req.api_key_file is None:
        import os

        os.environ.setdefault("MGPT_API_KEY", settings.api_key)  # local workers inherit it; never a task's data
    given = {"max_rounds": req.max_rounds, "fix_rounds": req.fix_rounds, "sandbox": req.sandbox,
             "test_timeout": req.test_timeout}
    batch = BatchSettings(
        sop=req.sop, model=settings.model, base_url=settings.base_url,
        api_key_file=str(req.api_key_file) if req.api_key_file else None, timeout=settings.timeout,
        max_tokens_per_call=settings.max_tokens_per_call, prices=dict(settings.prices),
        options={k: v for k, v in given.items() if v is not None},
    )
    items = load_ideas(req.ideas)
    req.out = req.out or Path(f"{req.ideas.stem}-batch")
    view = BatchView(console, title=f"mgpt batch {req.ideas.name}", describe=describe_run)
    runner = RunnerOptions(out=req.out, workers=req.workers, ray=req.ray, resume=req.resume,
                           max_cost=req.budget, max_tokens=req.max_tokens, retries=req.retries, on_update=view)
    with view:
        return run_batch(items, batch, runner)


def describe_run(outcome) -> str:
    """One run's result in a few words: its tests, its cost, its time."""
    if outcome.status != "done":
        return outcome.error
    result = outcome.result if isinstance(outcome.result, dict) else {}
    tests = result.get("tests")
    said = f"tests {tests['passed']} passed, {tests['failed'] + tests['errors']} failed" if tests else "tests not run"
    if result.get("stop_reason") not in (None, "idle"):
        said += f"; stopped: {result['stop_reason']}"
    return f"{said}; ${outcome.spend.cost:.4f}; {outcome.seconds:.1f} s"


def summary(console, result) -> None:
    from rich.table import Table

    table = Table(title="mgpt batch", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    skipped = sum(o.skipped for o in result.outcomes)
    rows = [
        ("runs", f"{len(result.outcomes)}" + (f" ({skipped} finished earlier, skipped)" if skipped else "")),
        ("passed", str(result.passed)),
        ("failed", str(result.failed)),
    ]
    if result.stopped:
        rows.append(("stopped", f"{result.stopped} by the budget: raise --budget and rerun with --resume"))
    if result.lost:
        rows.append(("lost", f"{result.lost} whose worker kept dying: rerun with --resume"))
    cost = f"${result.spend.cost:.4f}" + ("" if result.spend.cost_known else " (some calls had no price)")
    rows += [
        ("cost", f"{cost}; {result.spend.prompt_tokens} prompt + {result.spend.completion_tokens} completion tokens"),
        ("time", f"{result.seconds:.1f} s on {result.workers}"),
        ("workspaces", str(result.out)),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def write_json(result, path: Path) -> None:
    import json

    data = {
        "out": str(result.out), "workers": result.workers, "seconds": round(result.seconds, 2),
        "passed": result.passed, "failed": result.failed, "stopped": result.stopped, "lost": result.lost,
        "spend": result.spend.model_dump(),
        "runs": [{k: v for k, v in o.record().items() if k != "type"} for o in result.outcomes],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")

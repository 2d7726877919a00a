"""``mgpt run``: the flags gathered into a :class:`RunRequest`, the run executed, its summary
printed. The command in :mod:`mgpt.cli.app` only declares the flags; everything it does is
here, in small steps, and imports its heavy parts when it runs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

#: Exit codes: what a script calling ``mgpt run`` can rely on.
EXIT_OK = 0
EXIT_TESTS_FAILED = 1
EXIT_ERROR = 2
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report it

#: Words an idea starts with that do not name the project ("build a todo app" -> todo_app).
_FILLER = {
    "a", "an", "the", "build", "make", "create", "write", "implement", "develop", "code", "program",
    "me", "please", "i", "we", "want", "need", "to", "let", "lets", "us", "simple", "small", "basic",
    "tiny", "new", "quick", "for", "of", "that", "which", "with", "and", "in", "python",
}


#: What an empty idea is told, per SOP (others: a line naming the SOP).
EMPTY_IDEA = {
    "software": 'say what to build: mgpt run "a todo app for the command line"',
    "write": 'say what to write: mgpt write "a HOWTO on sorting in Python"',
}


@dataclass
class RunRequest:
    """Every flag of ``mgpt run``, as given (see ``mgpt run --help``)."""

    idea: Optional[str] = None
    workspace: Optional[Path] = None
    sop: str = "software"
    model: Optional[str] = None
    base_url: Optional[str] = None
    api_key: Optional[str] = None
    api_key_file: Optional[Path] = None
    timeout: Optional[float] = None
    config: Optional[Path] = None
    max_rounds: int = 12
    budget: Optional[float] = None
    max_tokens: Optional[int] = None
    fix_rounds: int = 2
    record: Optional[Path] = None
    replay: Optional[Path] = None
    force: bool = False
    test_timeout: float = 60.0
    resume: bool = False
    review: Optional[str] = None
    review_rounds: int = 2
    threads: Optional[int] = None
    inc: bool = False
    sandbox: Optional[str] = None
    context_budget: Optional[int] = None
    recall: Optional[Path] = None
    embedder: Optional[Path] = None
    #: an SOP's own options that ``mgpt run`` has no flag for (``mgpt write`` passes the room's)
    sop_options: dict[str, Any] = field(default_factory=dict)
    parallel: Optional[int] = None


class RunFailed(Exception):
    """Stop ``mgpt run`` with this message and exit code (printed as ``error: ...``)."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def project_folder(idea: str, parent: Path | None = None) -> Path:
    """A new folder for ``idea``'s project, named after it: ``build a todo app`` ->
    ``todo_app``. A name already taken by a non-empty folder gets ``_2``, ``_3``..., so the
    next idea never writes into the last one's project."""
    parent = Path.cwd() if parent is None else parent
    words = re.findall(r"[a-z0-9]+", idea.lower())
    while words and words[0] in _FILLER:
        words.pop(0)
    name = "_".join(w for w in words[:3] if w not in _FILLER) or "project"
    if name[0].isdigit():
        name = f"project_{name}"
    candidate, n = parent / name, 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        n += 1
        candidate = parent / f"{name}_{n}"
    return candidate


def execute(req: RunRequest) -> int:
    """Run what ``req`` asks and print its summary; returns the exit code."""
    import typer
    from rich.console import Console

    console = Console(stderr=True)
    try:
        return _execute(req, console)
    except RunFailed as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        return exc.code


def _execute(req: RunRequest, console) -> int:
    import time

    from mgpt.agents.errors import MgptError

    if req.api_key is not None:
        raise RunFailed(
            "--api-key is refused: a key on the command line can be read by every user of this "
            "machine (ps, /proc/PID/cmdline) and stays in your shell history (consider rotating it); "
            "set MGPT_API_KEY or OPENAI_API_KEY, or pass --api-key-file PATH (or api_key_file in the config file)"
        )
    if req.replay is not None and req.model:
        raise RunFailed("give either --model or --replay, not both")
    spec, running, started = "", False, time.perf_counter()
    try:
        plan = _plan(req, console)
        spec = plan["spec"]
        running = True
        result = _run(req, plan, console)
    except MgptError as exc:
        raise RunFailed(_error_line(exc, spec, running)) from None
    except OSError as exc:  # e.g. the workspace path is a file, or not writable
        raise RunFailed(f"{exc.strerror or exc}: {exc.filename or req.workspace}") from None
    except KeyboardInterrupt:
        raise RunFailed(_interrupted(req), EXIT_INTERRUPTED) from None
    _report_notes(req, result, plan, console)
    _summary(console, result, time.perf_counter() - started, _write_report(console, result.workspace),
             replayed=req.replay is not None or spec.startswith("replay:"), spec=spec)
    if result.ok:
        return EXIT_OK
    return EXIT_STOPPED if result.run.stop_reason != "idle" else EXIT_TESTS_FAILED


def _error_line(exc: Exception, spec: str, running: bool) -> str:
    """The error, with what to read next: the small model's note, or ``mgpt doctor`` when
    the machine's set-up is the cause."""
    from mgpt.cli.models import SMALL_MODEL_NOTE, is_embedded

    from mgpt.cli.doctor import setup_problem

    line = str(exc)
    hint = setup_problem(exc)
    if hint:
        line += f" ({hint})"
    elif running and is_embedded(spec):
        line += f" ({SMALL_MODEL_NOTE})"
    return line


def _interrupted(req: RunRequest) -> str:
    workspace = req.workspace
    log = workspace / ".mgpt" / "run.jsonl" if workspace is not None else None
    if log is None or not log.is_file():
        return "interrupted"
    if req.inc:  # the change is half made: --inc again would refuse it
        return f"interrupted; the run log is {log}; continue the change with: mgpt run --resume -w {workspace}"
    return f"interrupted; the run log is {log}, and the same command starts over"


def _plan(req: RunRequest, console) -> dict[str, Any]:
    """Settings, the SOP, the review steps, the run to resume, the model spec and the
    workspace: everything decided before the model is built."""
    from mgpt.cli.config import load_settings
    from mgpt.llm.backends.replay import Transcript
    from mgpt.workflows.sops import get_sop

    settings = load_settings(config=req.config, model=req.model, base_url=req.base_url,
                             api_key_file=req.api_key_file, timeout=req.timeout)
    for note in settings.notes:
        console.print(f"[yellow]note: {note}[/]", highlight=False, soft_wrap=True)
    sop = get_sop(req.sop)
    if req.workspace is None and (req.resume or req.inc):
        raise RunFailed(f"say which project to {'resume' if req.resume else 'extend'}: "
                        f"mgpt run {'--resume' if req.resume else '--inc'} -w FOLDER")
    steps, reviewer, previous = _review_and_resume(req, console)
    idea = req.idea
    if req.replay is not None and idea is None and previous is None:
        idea = Transcript.load(req.replay).header.idea
    if previous is None and (not idea or not idea.strip()):
        raise RunFailed(EMPTY_IDEA.get(req.sop, f'say what the {req.sop} team should work on: mgpt run --sop {req.sop} "..."'))
    workspace = req.workspace
    if workspace is None:
        workspace = req.workspace = project_folder(idea)
        console.print(f"workspace: {workspace.name}/ (choose another with -w)", highlight=False)
    return {"settings": settings, "sop": sop, "steps": steps, "reviewer": reviewer, "idea": idea,
            "workspace": workspace, "spec": _spec(req, settings, previous)}


def _spec(req: RunRequest, settings, previous) -> str:
    """The model to run: --replay, then the settings, then a resumed run's own, else the
    embedded model."""
    if req.replay is not None:
        return f"replay:{req.replay}"
    if settings.model:
        return settings.model
    if previous is not None and str(previous.meta.get("model_name") or previous.model).startswith("openai:"):
        return str(previous.meta.get("model_name") or previous.model)  # the model the run began with
    return "local"


def _model(req: RunRequest, plan: dict[str, Any], console):
    """The backend, with the embedded model pulled first if it is not here yet."""
    from mgpt.llm.backends.cost import PriceTable, priced_as, require_price
    from mgpt.llm.models import infer_model

    spec, settings = plan["spec"], plan["settings"]
    if spec.partition(":")[0] == "local":
        from mgpt.cli.models import NO_MODEL_NOTICE, prepare_local

        if not settings.model:
            console.print(NO_MODEL_NOTICE, markup=False, highlight=False, soft_wrap=True)
        prepare_local(spec, announce=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))
    llm = infer_model(spec, base_url=settings.base_url, api_key=settings.api_key, timeout=settings.timeout,
                      max_tokens=settings.max_tokens_per_call, threads=req.threads)
    prices = PriceTable(settings.prices)
    if req.budget is not None:
        require_price(priced_as(llm), prices, config_path=str(settings.path or ""))
    return llm, prices


def _options(req: RunRequest, plan: dict[str, Any], prices, on_event):
    """The run's :class:`~mgpt.workflows.harness.RunOptions`."""
    from mgpt.agents.budget import Budget
    from mgpt.sandbox.isolation import Limits
    from mgpt.workflows.harness import RunOptions

    return RunOptions(
        workspace=plan["workspace"], max_rounds=req.max_rounds,
        budget=Budget(max_cost=req.budget, max_tokens=req.max_tokens), record=req.record,
        force=req.force, resume=req.resume,
        limits=Limits(timeout=req.test_timeout, hide=(str(req.config),) if req.config else ()),
        sandbox=req.sandbox, prices=prices, on_event=on_event, review=plan["steps"],
        reviewer=plan["reviewer"], review_rounds=req.review_rounds,
    )


def _sop_options(req: RunRequest, sop) -> dict[str, Any]:
    """The SOP's own options among the flags; a flag given that the SOP does not take is
    refused rather than ignored."""
    given = {
        "fix_rounds": req.fix_rounds, "context_budget": req.context_budget, "recall": req.recall,
        "embed": _load_embedder(req.embedder), "incremental": req.inc, "parallel": req.parallel,
    }
    defaults = {"fix_rounds": 2, "context_budget": None, "recall": None, "embed": None, "incremental": False,
                "parallel": None}
    flags = {"fix_rounds": "--fix-rounds", "context_budget": "--context-budget", "recall": "--recall",
             "embed": "--embedder", "incremental": "--inc", "parallel": "--parallel"}
    for name, value in given.items():
        if name not in sop.options and value != defaults[name]:
            raise RunFailed(f"{flags[name]} is not an option of the {sop.name!r} SOP")
    unknown = sorted(set(req.sop_options) - set(sop.options))
    if unknown:
        raise RunFailed(f"{', '.join(unknown)}: not an option of the {sop.name!r} SOP")
    return {**{name: value for name, value in given.items() if name in sop.options}, **req.sop_options}


def _run(req: RunRequest, plan: dict[str, Any], console):
    """Build the model and run the SOP under the live view."""
    import asyncio
    import warnings

    from mgpt.cli.live import RunView
    from mgpt.llm.backends.replay import TranscriptDriftWarning

    llm, prices = _model(req, plan, console)
    sop = plan["sop"]
    view = RunView(console, list(sop.roles))

    def on_event(event) -> None:
        if event.kind == "workspace":
            console.print(f"[yellow]note: {event.detail}[/]", highlight=False, soft_wrap=True)
        view(event)

    if plan["reviewer"] is not None:
        plan["reviewer"].pause = lambda: _paused(view)
    options = _options(req, plan, prices, on_event)
    with warnings.catch_warnings(record=True) as drift, view:
        warnings.simplefilter("always", TranscriptDriftWarning)
        result = asyncio.run(sop.run(plan["idea"], model=llm, options=options, **_sop_options(req, sop)))
    plan["drifted"] = [w for w in drift if issubclass(w.category, TranscriptDriftWarning)]
    return result


def _report_notes(req: RunRequest, result, plan: dict[str, Any], console) -> None:
    if plan.get("drifted"):
        console.print(f"[yellow]note: {len(plan['drifted'])} replayed prompt(s) differ from the recording; "
                      "answers were replayed anyway (re-record with --replay OLD --record NEW)[/]")
    for note in result.notes:
        console.print(f"note: {note}")
    if req.resume and not getattr(result, "already_finished", False):
        console.print(f"resume: {result.replayed_calls} model call(s) answered from the workspace "
                      f"transcript, {result.new_calls} made")


def _load_embedder(path: Optional[Path]):
    """The --embedder folder as an embed(texts) callable (torch only when one is given)."""
    if path is None:
        return None
    from mgpt.llm.local.embedder import load_embedder

    return load_embedder(path)


def _write_report(console, workspace: Path) -> Optional[Path]:
    """The run's HTML report; a report that cannot be written costs a note, not the run."""
    from mgpt.agents.errors import MgptError
    from mgpt.workflows.report import write_report

    try:
        return write_report(workspace)
    except (MgptError, OSError) as exc:
        console.print(f"[yellow]note: no report written: {exc}[/]", highlight=False)
        return None


def _review_and_resume(req: RunRequest, console):
    """Parse ``--review`` (refused without a terminal) and, for ``--resume``, read the
    header of the run to continue (its review steps apply unless --review is given)."""
    import sys
    from contextlib import nullcontext

    from rich.console import Console

    from mgpt.workflows.resume import load_for_resume
    from mgpt.workflows.review import TerminalReviewer, parse_steps

    previous = load_for_resume(req.workspace.resolve()) if req.resume else None
    header = previous.header if previous is not None else None
    finished = previous is not None and previous.end is not None and previous.end.stop_reason == "idle"
    review = req.review
    steps = parse_steps(review) if review is not None else list((header.meta.get("review") if header else None) or [])
    if not steps or finished:
        return steps, None, header
    if not sys.stdin.isatty():
        if review is None:
            raise RunFailed(f"this run was started with --review {','.join(steps)}: resume it on a terminal, "
                            "or pass --review '' to resume without review")
        raise RunFailed("--review needs a terminal to ask you on (stdin is not a tty); from Python pass "
                        "run_company(..., reviewer=...)")
    return steps, TerminalReviewer(Console(), pause=nullcontext), header


def _paused(view):
    """Stop the live table while the user reviews (it would redraw over the prompt)."""
    from contextlib import contextmanager

    @contextmanager
    def pause():
        live = getattr(view, "live", None)
        if live is not None:
            live.stop()
        try:
            yield
        finally:
            if live is not None:
                live.start()

    return pause()


def _summary(console, result, seconds: float, report_path: Optional[Path] = None, *, replayed: bool = False,
             spec: str = "") -> None:
    from rich.table import Table

    from mgpt.cli.models import SMALL_MODEL_NOTE, is_embedded

    table = Table(title="mgpt run", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in _summary_rows(result, seconds, replayed):
        table.add_row(key, value)
    if report_path is not None:
        table.add_row("report", str(report_path))
    if is_embedded(spec):
        table.add_row("note", SMALL_MODEL_NOTE)
    console.print(table)


def _summary_rows(result, seconds: float, replayed: bool) -> list[tuple[str, str]]:
    spend = result.run.spend
    report = getattr(result, "report", None)
    tests = (
        f"{report.passed} passed, {report.failed} failed, {report.errors} errors"
        + (f" after {report.fix_round} fix round(s)" if report.fix_round else "")
        if report
        else "not run"
    )
    cost = f"${spend.cost:.4f}" if spend.cost_known else f"unknown (≥ ${spend.cost:.4f}; no price for this model)"
    project_files = [f for f in result.files if not f.startswith("docs/")]
    rows = [
        ("workspace", str(result.workspace)),
        ("files written", f"{len(result.files)} ({', '.join(project_files[:8])}{'…' if len(project_files) > 8 else ''})"),
    ]
    # An SOP whose result says what it checked (the writers' room: examples, citations)
    # shows that instead of the software company's tests.
    rows += result.summary_rows() if hasattr(result, "summary_rows") else [("tests", tests)]
    if report and getattr(result, "sandbox", "bwrap") == "none":
        rows.append(("sandbox", "none: tests ran UNISOLATED (--sandbox none), as you, with your files and network"))
    rows += [
        ("stopped", f"{result.run.stop_reason}: {result.run.detail}"),
        ("model calls", f"{spend.calls} ({spend.prompt_chars} prompt characters)"),
        ("tokens", f"{spend.prompt_tokens} prompt + {spend.completion_tokens} completion"),
        ("cost", cost + (" as recorded (the replay itself spent nothing)" if replayed else "")),
        ("time", f"{seconds:.2f} s"),
        ("log", f"{result.log} (transcript: {result.transcript})"),
    ]
    return rows

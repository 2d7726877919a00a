"""The ``mgpt`` command line. Commands parse arguments and call library functions; anything
heavy (the workflow, model SDKs, torch) is imported inside the command that needs it, so
``mgpt --help`` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mgpt import __version__

#: Exit codes: what a script calling ``mgpt run`` can rely on.
EXIT_OK = 0
EXIT_TESTS_FAILED = 1
EXIT_ERROR = 2
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report it

app = typer.Typer(
    name="mgpt",
    help="Role agents that turn a one-line idea into working software, and a workshop to "
    "train the models they run on.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help text: rich-formatted help costs ~0.4 s of imports on every --help.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mgpt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    pass


def _fail(message: str, code: int = EXIT_ERROR) -> "typer.Exit":
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def _load_embedder(path: Optional[Path]):
    """The --embedder folder as an embed(texts) callable (torch only when one is given)."""
    if path is None:
        return None
    from mgpt.llm.local.embedder import load_embedder

    return load_embedder(path)


@app.command()
def run(
    idea: Optional[str] = typer.Argument(None, help="What to build, in one line. With --replay it defaults to the recorded idea."),
    workspace: Path = typer.Option(Path("workspace"), "--workspace", "-w", help="Folder the project is written into."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model spec: openai:<name>, hf:<dir>, local[:<name>], replay:<file>. Default: $MGPT_MODEL, the config file, else the embedded local model."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL (vLLM, Ollama, llama.cpp, Azure, mgpt serve)."),
    api_key: Optional[str] = typer.Option(None, "--api-key", hidden=True, help="Refused: a key in argv is visible to every user (ps, /proc) and in shell history."),
    api_key_file: Optional[Path] = typer.Option(None, "--api-key-file", help="Read the API key from this file (or set MGPT_API_KEY / OPENAI_API_KEY)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds one request to the model server may take before it is retried (default 120; more for slow local servers)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Config file (TOML). Default: ~/.config/mgpt/config.toml."),
    max_rounds: int = typer.Option(12, "--max-rounds", min=1, help="Stop after this many rounds."),
    budget: Optional[float] = typer.Option(None, "--budget", min=0, help="Spend at most this many USD: a call runs only if its worst case fits what is left."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=0, help="Use at most this many tokens: a call runs only if its worst case fits what is left."),
    fix_rounds: int = typer.Option(2, "--fix-rounds", min=0, help="How many times QA may send failing tests back to the engineer."),
    record: Optional[Path] = typer.Option(None, "--record", help="Also write the transcript of model calls to this file."),
    replay: Optional[Path] = typer.Option(None, "--replay", help="Answer model calls from this recorded transcript (offline, nothing spent; costs shown as recorded)."),
    force: bool = typer.Option(False, "--force", help="Write into a workspace that is not empty."),
    test_timeout: float = typer.Option(60.0, "--test-timeout", min=1, help="Seconds the generated tests may run."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in --workspace: recorded model calls are not made again."),
    review: Optional[str] = typer.Option(None, "--review", help="Pause after these steps for you to approve, edit or give feedback: any of prd,design,tasks,code."),
    review_rounds: int = typer.Option(2, "--review-rounds", min=0, help="How many times one document may be revised with your feedback."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch threads for a local model. Default: $MGPT_THREADS, else the free cores."),
    inc: bool = typer.Option(False, "--inc", help="Extend the project already in --workspace with IDEA (a change): only changed and new files are written, old tests must still pass."),
    sandbox: Optional[str] = typer.Option(None, "--sandbox", help="How generated code runs: bwrap (isolated, default; needs bubblewrap) or none (unisolated). Default: $MGPT_SANDBOX or bwrap."),
    context_budget: Optional[int] = typer.Option(None, "--context-budget", min=0, help="Cap the characters of earlier files' interfaces in WriteCode/WriteTests prompts, keeping the most relevant (BM25, or --embedder)."),
    recall: Optional[Path] = typer.Option(None, "--recall", help="Folder of past fixes kept across runs: FixBug prompts recall similar ones, and new fixes are added."),
    embedder: Optional[Path] = typer.Option(None, "--embedder", help="Embedder folder (mgpt train embed) to rank context and recall by; default BM25."),
) -> None:
    """Turn IDEA into a working project: PRD, design, tasks, code and passing tests."""
    import asyncio
    import time
    import warnings

    from rich.console import Console

    from mgpt.sandbox.isolation import Limits
    from mgpt.agents.budget import Budget
    from mgpt.agents.errors import MgptError
    from mgpt.cli.config import load_settings
    from mgpt.cli.live import RunView
    from mgpt.llm.backends.cost import PriceTable, priced_as, require_price
    from mgpt.llm.models import infer_model
    from mgpt.llm.backends.replay import Transcript, TranscriptDriftWarning
    from mgpt.workflows.software_company import run_company

    console = Console(stderr=True)
    if api_key is not None:
        raise _fail(
            "--api-key is refused: a key on the command line can be read by every user of this "
            "machine (ps, /proc/PID/cmdline) and stays in your shell history (consider rotating it); "
            "set MGPT_API_KEY or OPENAI_API_KEY, or pass --api-key-file PATH (or api_key_file in the config file)"
        )
    spec, running = "", False
    try:
        if replay is not None and model:
            raise _fail("give either --model or --replay, not both")
        settings = load_settings(
            config=config, model=model, base_url=base_url, api_key_file=api_key_file, timeout=timeout
        )
        for note in settings.notes:
            console.print(f"[yellow]note: {note}[/]", highlight=False, soft_wrap=True)
        steps, reviewer, previous = _review_and_resume(review, resume, workspace, console)
        if replay is not None:
            spec = f"replay:{replay}"
            if idea is None and previous is None:
                idea = Transcript.load(replay).header.idea
        elif settings.model:
            spec = settings.model
        elif previous is not None and str(previous.meta.get("model_name") or previous.model).startswith("openai:"):
            spec = str(previous.meta.get("model_name") or previous.model)  # the model the run began with
        else:
            spec = "local"
        if previous is None and (not idea or not idea.strip()):
            raise _fail('say what to build: mgpt run "a todo app for the command line"')
        if spec.partition(":")[0] == "local":
            from mgpt.cli.models import NO_MODEL_NOTICE, prepare_local

            if not settings.model:
                console.print(NO_MODEL_NOTICE, markup=False, highlight=False, soft_wrap=True)
            prepare_local(spec, announce=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))
        llm = infer_model(
            spec, base_url=settings.base_url, api_key=settings.api_key,
            timeout=settings.timeout, max_tokens=settings.max_tokens_per_call, threads=threads,
        )
        prices = PriceTable(settings.prices)
        if budget is not None:
            require_price(priced_as(llm), prices, config_path=str(settings.path or ""))
        started = time.perf_counter()
        view = RunView(console, ["ProductManager", "Architect", "ProjectManager", "Engineer", "QaEngineer"])

        def on_event(event) -> None:
            if event.kind == "workspace":
                console.print(f"[yellow]note: {event.detail}[/]", highlight=False, soft_wrap=True)
            view(event)
        if reviewer is not None:
            reviewer.pause = lambda: _paused(view)
        with warnings.catch_warnings(record=True) as drift, view:
            warnings.simplefilter("always", TranscriptDriftWarning)
            running = True
            result = asyncio.run(
                run_company(
                    idea,
                    model=llm,
                    workspace=workspace,
                    max_rounds=max_rounds,
                    budget=Budget(max_cost=budget, max_tokens=max_tokens),
                    fix_rounds=fix_rounds,
                    record=record,
                    force=force,
                    limits=Limits(timeout=test_timeout, hide=(str(config),) if config else ()),
                    prices=prices,
                    on_event=on_event,
                    resume=resume,
                    review=steps,
                    reviewer=reviewer,
                    review_rounds=review_rounds,
                    sandbox=sandbox,
                    context_budget=context_budget,
                    recall=recall,
                    embed=_load_embedder(embedder),
                    incremental=inc,
                )
            )
    except MgptError as exc:
        from mgpt.cli.models import SMALL_MODEL_NOTE, is_embedded

        raise _fail(str(exc) + (f" ({SMALL_MODEL_NOTE})" if running and is_embedded(spec) else "")) from None
    except OSError as exc:  # e.g. the workspace path is a file, or not writable
        raise _fail(f"{exc.strerror or exc}: {exc.filename or workspace}") from None
    except KeyboardInterrupt:
        log = workspace / ".mgpt" / "run.jsonl"
        where = f"; the run log is {log}, and the same command starts over" if log.is_file() else ""
        if inc and log.is_file():  # the change is half made: --inc again would refuse it
            where = f"; the run log is {log}; continue the change with: mgpt run --resume -w {workspace}"
        raise _fail(f"interrupted{where}", EXIT_INTERRUPTED) from None
    drifted = [w for w in drift if issubclass(w.category, TranscriptDriftWarning)]
    if drifted:
        console.print(f"[yellow]note: {len(drifted)} replayed prompt(s) differ from the recording; "
                      "answers were replayed anyway (re-record with --replay OLD --record NEW)[/]")
    for note in result.notes:
        console.print(f"note: {note}")
    if resume and not result.already_finished:
        console.print(f"resume: {result.replayed_calls} model call(s) answered from the workspace "
                      f"transcript, {result.new_calls} made")
    _summary(
        console,
        result,
        time.perf_counter() - started,
        _write_report(console, result.workspace),
        replayed=replay is not None or spec.startswith("replay:"),
        spec=spec,
    )
    if result.tests_passed:
        raise typer.Exit(EXIT_OK)
    if result.run.stop_reason != "idle":
        raise typer.Exit(EXIT_STOPPED)
    raise typer.Exit(EXIT_TESTS_FAILED)


def _write_report(console, workspace: Path) -> Optional[Path]:
    """The run's HTML report; a report that cannot be written costs a note, not the run."""
    from mgpt.agents.errors import MgptError
    from mgpt.workflows.report import write_report

    try:
        return write_report(workspace)
    except (MgptError, OSError) as exc:
        console.print(f"[yellow]note: no report written: {exc}[/]", highlight=False)
        return None


@app.command()
def report(
    workspace: Path = typer.Argument(..., help="The workspace of an mgpt run (the folder given to mgpt run -w)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write the HTML. Default: WORKSPACE/.mgpt/report.html."),
) -> None:
    """Write a self-contained HTML report of a run: timeline, messages, documents, diagrams, tests, fixes."""
    from mgpt.agents.errors import MgptError
    from mgpt.workflows.report import write_report

    try:
        path = write_report(workspace, output)
    except MgptError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"{exc.strerror or exc}: {exc.filename or output or workspace}") from None
    typer.echo(str(path))



def _review_and_resume(review, resume, workspace, console):
    """Parse ``--review`` (refused without a terminal) and, for ``--resume``, read the
    header of the run to continue (its review steps apply unless --review is given)."""
    import sys
    from contextlib import nullcontext

    from rich.console import Console

    from mgpt.workflows.resume import load_for_resume
    from mgpt.workflows.review import TerminalReviewer, parse_steps

    previous = load_for_resume(workspace.resolve()) if resume else None
    header = previous.header if previous is not None else None
    finished = previous is not None and previous.end is not None and previous.end.stop_reason == "idle"
    steps = parse_steps(review) if review is not None else list((header.meta.get("review") if header else None) or [])
    if not steps or finished:
        return steps, None, header
    if not sys.stdin.isatty():
        if review is None:
            raise _fail(f"this run was started with --review {','.join(steps)}: resume it on a terminal, "
                        "or pass --review '' to resume without review")
        raise _fail("--review needs a terminal to ask you on (stdin is not a tty); from Python pass "
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


def _summary(
    console, result, seconds: float, report_path: Optional[Path] = None, *, replayed: bool = False,
    spec: str = "",
) -> None:
    from rich.table import Table

    from mgpt.cli.models import SMALL_MODEL_NOTE, is_embedded

    spend = result.run.spend
    report = result.report
    tests = (
        f"{report.passed} passed, {report.failed} failed, {report.errors} errors"
        + (f" after {report.fix_round} fix round(s)" if report.fix_round else "")
        if report
        else "not run"
    )
    cost = f"${spend.cost:.4f}" if spend.cost_known else f"unknown (≥ ${spend.cost:.4f}; no price for this model)"
    table = Table(title="mgpt run", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    project_files = [f for f in result.files if not f.startswith("docs/")]
    table.add_row("workspace", str(result.workspace))
    table.add_row("files written", f"{len(result.files)} ({', '.join(project_files[:8])}{'…' if len(project_files) > 8 else ''})")
    table.add_row("tests", tests)
    if report and result.sandbox == "none":
        table.add_row("sandbox", "none: tests ran UNISOLATED (--sandbox none), as you, with your files and network")
    table.add_row("stopped", f"{result.run.stop_reason}: {result.run.detail}")
    table.add_row("model calls", f"{spend.calls} ({spend.prompt_chars} prompt characters)")
    table.add_row("tokens", f"{spend.prompt_tokens} prompt + {spend.completion_tokens} completion")
    table.add_row("cost", cost + (" as recorded (the replay itself spent nothing)" if replayed else ""))
    table.add_row("time", f"{seconds:.2f} s")
    table.add_row("log", f"{result.log} (transcript: {result.transcript})")
    if report_path is not None:
        table.add_row("report", str(report_path))
    if is_embedded(spec):
        table.add_row("note", SMALL_MODEL_NOTE)
    console.print(table)


def _register_workshop() -> None:
    """The model workshop's commands. Their modules import only typer here; torch,
    transformers and the metric libraries load inside each command."""
    from mgpt.cli.eval import register
    from mgpt.cli.models import register as register_models
    from mgpt.cli.serve import register as register_chat_and_serve
    from mgpt.cli.train import app as train_app
    from mgpt.cli.train import register_reinforce

    def code_eval(**options):
        # The workflow layer wires the task bank to the sandbox (mgpt.actions), which the
        # llm layer may not import; imported here lazily to keep `mgpt --help` fast.
        from mgpt.llm.eval.code_sandbox import run_code_eval

        return run_code_eval(**options)

    def company_eval(**options):
        from mgpt.workflows.company_eval import run_company_eval

        return run_company_eval(**options)

    def reinforce(method, cfg, **options):
        # rft/dpo/grpo check answers in the sandbox (mgpt.actions): wired in the workflow layer.
        from mgpt.llm.train.reinforce import run_reinforce

        return run_reinforce(method, cfg, **options)

    register_reinforce(reinforce)
    app.add_typer(train_app, name="train")
    register(app, code_eval=code_eval, company_eval=company_eval)
    register_models(app)
    register_chat_and_serve(app)


_register_workshop()


def _register_doctor() -> None:
    """``mgpt doctor``: the set-up checks (its module imports only typer here)."""
    from mgpt.cli.doctor import register

    register(app)


_register_doctor()


def main() -> None:
    app()


if __name__ == "__main__":
    main()

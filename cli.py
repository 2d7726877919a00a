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


@app.command()
def run(
    idea: Optional[str] = typer.Argument(None, help="What to build, in one line. With --replay it defaults to the recorded idea."),
    workspace: Path = typer.Option(Path("workspace"), "--workspace", "-w", help="Folder the project is written into."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model spec: openai:<name>, hf:<dir>, replay:<file>. Default: $MGPT_MODEL or the config file."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL (vLLM, Ollama, llama.cpp, Azure, mgpt serve)."),
    api_key: Optional[str] = typer.Option(None, "--api-key", help="API key (better: MGPT_API_KEY or OPENAI_API_KEY)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Config file (TOML). Default: ~/.config/mgpt/config.toml."),
    max_rounds: int = typer.Option(12, "--max-rounds", min=1, help="Stop after this many rounds."),
    budget: Optional[float] = typer.Option(None, "--budget", min=0, help="Stop before spending more than this many USD."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=0, help="Stop before using more than this many tokens."),
    fix_rounds: int = typer.Option(2, "--fix-rounds", min=0, help="How many times QA may send failing tests back to the engineer."),
    record: Optional[Path] = typer.Option(None, "--record", help="Also write the transcript of model calls to this file."),
    replay: Optional[Path] = typer.Option(None, "--replay", help="Answer model calls from this recorded transcript (offline, free)."),
    force: bool = typer.Option(False, "--force", help="Write into a workspace that is not empty."),
    test_timeout: float = typer.Option(60.0, "--test-timeout", min=1, help="Seconds the generated tests may run."),
) -> None:
    """Turn IDEA into a working project: PRD, design, tasks, code and passing tests."""
    import asyncio
    import time
    import warnings

    from rich.console import Console

    from mgpt.actions.sandbox import Limits
    from mgpt.agents.budget import Budget
    from mgpt.agents.errors import MgptError
    from mgpt.config import load_settings
    from mgpt.live import RunView
    from mgpt.llm.cost import PriceTable
    from mgpt.llm.models import SPEC_HELP, infer_model
    from mgpt.llm.replay import Transcript, TranscriptDriftWarning
    from mgpt.workflows.software_company import run_company

    console = Console(stderr=True)
    try:
        if replay is not None and model:
            raise _fail("give either --model or --replay, not both")
        settings = load_settings(config=config, model=model, base_url=base_url, api_key=api_key)
        if replay is not None:
            spec = f"replay:{replay}"
            if idea is None:
                idea = Transcript.load(replay).header.idea
        else:
            if not settings.model:
                raise _fail(f"no model configured: {SPEC_HELP}")
            spec = settings.model
        if not idea or not idea.strip():
            raise _fail('say what to build: mgpt run "a todo app for the command line"')
        llm = infer_model(spec, base_url=settings.base_url, api_key=settings.api_key)
        started = time.perf_counter()
        view = RunView(console, ["ProductManager", "Architect", "ProjectManager", "Engineer", "QaEngineer"])
        with warnings.catch_warnings(record=True) as drift, view:
            warnings.simplefilter("always", TranscriptDriftWarning)
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
                    limits=Limits(timeout=test_timeout),
                    prices=PriceTable(settings.prices),
                    on_event=view,
                )
            )
    except MgptError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:  # e.g. the workspace path is a file, or not writable
        raise _fail(f"{exc.strerror or exc}: {exc.filename or workspace}") from None
    drifted = [w for w in drift if issubclass(w.category, TranscriptDriftWarning)]
    if drifted:
        console.print(f"[yellow]note: {len(drifted)} replayed prompt(s) differ from the recording; "
                      "answers were replayed anyway (re-record with --replay OLD --record NEW)[/]")
    _summary(console, result, time.perf_counter() - started)
    if result.tests_passed:
        raise typer.Exit(EXIT_OK)
    if result.run.stop_reason != "idle":
        raise typer.Exit(EXIT_STOPPED)
    raise typer.Exit(EXIT_TESTS_FAILED)


def _summary(console, result, seconds: float) -> None:
    from rich.table import Table

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
    table.add_row("stopped", f"{result.run.stop_reason}: {result.run.detail}")
    table.add_row("model calls", f"{spend.calls} ({spend.prompt_chars} prompt characters)")
    table.add_row("tokens", f"{spend.prompt_tokens} prompt + {spend.completion_tokens} completion")
    table.add_row("cost", cost)
    table.add_row("time", f"{seconds:.2f} s")
    table.add_row("log", f"{result.log} (transcript: {result.transcript})")
    console.print(table)


def _register_workshop() -> None:
    """The model workshop's commands. Their modules import only typer here; torch,
    transformers and the metric libraries load inside each command."""
    from mgpt.llm.eval.cli import register
    from mgpt.serve_cli import register as register_chat_and_serve
    from mgpt.llm.train.cli import app as train_app

    app.add_typer(train_app, name="train")
    register(app)
    register_chat_and_serve(app)


_register_workshop()


def main() -> None:
    app()


if __name__ == "__main__":
    main()

"""The ``mgpt`` command line. Commands parse arguments and call library functions; anything
heavy (the workflow, model SDKs, torch) is imported inside the command that needs it, so
``mgpt --help`` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mgpt import __version__

from mgpt.cli.run import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_STOPPED, EXIT_TESTS_FAILED  # noqa: F401

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
    workspace: Optional[Path] = typer.Option(None, "--workspace", "-w", help="Folder the project is written into. Default: a new folder named after the idea (todo_app/ for 'build a todo app')."),
    sop: str = typer.Option("software", "--sop", help="The SOP (team and order of work) to run; the software company by default. Others: installed ones (entry point group mgpt.sops)."),
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
    review: Optional[str] = typer.Option(None, "--review", help="Pause after these steps for you to approve, edit or give feedback: any of prd,design,tasks,code; tools asks before each call to a tool that needs approval."),
    review_rounds: int = typer.Option(2, "--review-rounds", min=0, help="How many times one document may be revised with your feedback."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch threads for a local model. Default: $MGPT_THREADS, else the free cores."),
    inc: bool = typer.Option(False, "--inc", help="Extend the project already in --workspace with IDEA (a change): only changed and new files are written, old tests must still pass."),
    sandbox: Optional[str] = typer.Option(None, "--sandbox", help="How generated code runs: bwrap (isolated, default; needs bubblewrap) or none (unisolated). Default: $MGPT_SANDBOX or bwrap."),
    context_budget: Optional[int] = typer.Option(None, "--context-budget", min=0, help="Cap the characters of earlier files' interfaces in WriteCode/WriteTests prompts, keeping the most relevant (BM25, or --embedder)."),
    recall: Optional[Path] = typer.Option(None, "--recall", help="Folder of past fixes kept across runs: FixBug prompts recall similar ones, and new fixes are added."),
    embedder: Optional[Path] = typer.Option(None, "--embedder", help="Embedder folder (mgpt train embed) to rank context and recall by; default BM25."),
    parallel: Optional[int] = typer.Option(None, "--parallel", min=1, help="Model calls one step may make at once (files whose dependencies are written, tests per module, independent fixes). Default: what the backend serves well (8 for a server, 4 for a local model). 1: one at a time."),
) -> None:
    """Turn IDEA into a working project: PRD, design, tasks, code and passing tests."""
    flags = dict(locals())
    from mgpt.cli.run import RunRequest, execute

    raise typer.Exit(execute(RunRequest(**flags)))


@app.command()
def batch(
    ideas: Path = typer.Argument(..., help="The ideas: one per line, or JSON Lines records {\"idea\": ..., \"model\": ..., \"options\": {...}}."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for the runs' workspaces (OUT/NNN-slug) and the batch's records. Default: IDEAS-batch/ (the file's name)."),
    sop: str = typer.Option("software", "--sop", help="The SOP every run follows (mgpt run --sop)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model spec for runs whose record names none: openai:<name>, hf:<dir>, local[:<name>], replay:<file>."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL (vLLM replicas, Ollama, mgpt serve)."),
    api_key_file: Optional[Path] = typer.Option(None, "--api-key-file", help="Read the API key from this file, on each worker (or set MGPT_API_KEY / OPENAI_API_KEY there)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds one request to the model server may take."),
    config: Optional[Path] = typer.Option(None, "--config", help="Config file (TOML). Default: ~/.config/mgpt/config.toml."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Runs at once. Default: 1 here; the cluster's CPUs with --ray."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run on a Ray cluster: auto (the one this machine belongs to) or HOST:PORT. Needs pip install 'mgpt[cluster]'."),
    resume: bool = typer.Option(False, "--resume", help="Continue the batch in --out: finished runs are skipped, the others continue their transcripts."),
    retries: int = typer.Option(2, "--retries", min=0, help="How many times a run whose worker died is tried again (continuing its transcript)."),
    budget: Optional[float] = typer.Option(None, "--budget", min=0, help="USD the whole batch may spend: every call's worst case must fit what is left, across all workers."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=0, help="Tokens the whole batch may use (as --budget)."),
    max_rounds: Optional[int] = typer.Option(None, "--max-rounds", min=1, help="Stop each run after this many rounds (default 12)."),
    fix_rounds: Optional[int] = typer.Option(None, "--fix-rounds", min=0, help="How many times QA may send failing tests back (software SOP; default 2)."),
    sandbox: Optional[str] = typer.Option(None, "--sandbox", help="How generated code runs: bwrap (default) or none."),
    test_timeout: Optional[float] = typer.Option(None, "--test-timeout", min=1, help="Seconds the generated tests may run (default 60)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the summary and every run's outcome here."),
) -> None:
    """Run one company (or --sop) per idea in IDEAS, in parallel, a workspace each; sum up passed, failed, cost and time."""
    flags = dict(locals())
    from mgpt.cli.batch import BatchRequest, execute

    raise typer.Exit(execute(BatchRequest(**flags)))


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



def _register_workshop() -> None:
    """The model workshop's commands. Their modules import only typer here; torch,
    transformers, the metric libraries and the sandbox load inside each command."""
    from mgpt.cli.eval import register as register_eval
    from mgpt.cli.models import register as register_models
    from mgpt.cli.serve import register as register_chat_and_serve
    from mgpt.cli.train import app as train_app

    app.add_typer(train_app, name="train")
    register_eval(app)
    register_models(app)
    register_chat_and_serve(app)


_register_workshop()


def _register_writing() -> None:
    """``mgpt write`` and ``mgpt eval write`` (the eval group must exist: after the workshop)."""
    from mgpt.cli.write import register as register_write

    register_write(app)


_register_writing()


def _register_doctor() -> None:
    """``mgpt doctor``: the set-up checks (its module imports only typer here)."""
    from mgpt.cli.doctor import register

    register(app)


_register_doctor()


def _register_recommend() -> None:
    """``mgpt recommend``: recommendations with explanations (its module imports only typer here)."""
    from mgpt.cli.recommend import register

    register(app)


_register_recommend()


def _register_service() -> None:
    """``mgpt service``: the support team in the terminal (its module imports only typer here)."""
    from mgpt.cli.service import register as register_service

    register_service(app)


_register_service()


def main() -> None:
    app()


if __name__ == "__main__":
    main()

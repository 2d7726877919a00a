"""``mgpt service`` (the support team answering you in the terminal, on a store you name) and
``mgpt eval service`` (the team on τ²-bench retail's tasks, graded).

Thin commands over :class:`mgpt.workflows.service_desk.ServiceDesk` with ``mgpt chat``'s loop
(:mod:`mgpt.llm.serve.chat`), and :func:`mgpt.workflows.service_eval.run_service_eval`. Only
typer is imported here; the rest loads when a command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

__all__ = ["eval_service_command", "register", "service_command"]


def _fail(message: str) -> "typer.Exit":
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(2)


def service_command(
    message: Optional[str] = typer.Argument(
        None, help="Send this one message, print the answer and exit ('-' reads it from stdin). Without it: interactive."
    ),
    store: Path = typer.Option(..., "--store", help="The store: a SQLite file, made from τ²-bench's retail db.json on first use; the team's changes stay in it."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model spec: openai:<name>, local, hf:<dir>... Default: $MGPT_MODEL or the config file."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
    config: Optional[Path] = typer.Option(None, "--config", help="Config file (TOML). Default: ~/.config/mgpt/config.toml."),
    checker: bool = typer.Option(True, "--checker/--no-checker", help="A policy checker reviews each state-changing call before it runs (off: the agent alone)."),
    log: Optional[Path] = typer.Option(None, "--log", help="Append every event of the session (messages, model and tool calls) to this run log (JSONL)."),
    plain: bool = typer.Option(False, "--plain", help="Show answers as plain text (no markdown rendering)."),
) -> None:
    """Be the customer: the support team (an agent holding the store's policy and tools, and a
    policy checker) answers you; /help lists the commands. The API key comes from
    MGPT_API_KEY / OPENAI_API_KEY or the config file."""
    from rich.console import Console

    from mgpt.actions.service import GREETING
    from mgpt.agents.errors import MgptError
    from mgpt.cli.config import load_settings
    from mgpt.cli.serve import show_tool
    from mgpt.domains.retail import RetailData
    from mgpt.llm.models import SPEC_HELP
    from mgpt.llm.serve import chat
    from mgpt.workflows.service import ServiceOptions, open_store
    from mgpt.workflows.service_desk import ServiceDesk

    try:
        settings = load_settings(config=config, model=model, base_url=base_url)
        if not settings.model:
            raise _fail(f"no model configured: {SPEC_HELP}")
        if message == "-":
            message = sys.stdin.read()
            if not message.strip():
                raise _fail("stdin held no message")
        data = RetailData.load(progress=lambda line: typer.echo(line, err=True))
        shop = open_store(store, data)
        llm = chat.make_model(settings.model, base_url=settings.base_url, api_key=settings.api_key)
        desk = ServiceDesk(llm, shop, data.policy(), service=ServiceOptions(checker=checker), log=log, on_tool=show_tool)
        if message is not None:
            chat.ask_once(desk, message, lambda piece: (sys.stdout.write(piece), sys.stdout.flush()))
            return
        console = Console(highlight=False)
        console.print(f"store: {store}", highlight=False)
        console.print(f"SupportAgent: {GREETING}", highlight=False)
        chat.chat_loop(desk, console=console, read_line=input, markdown=not plain)
    except MgptError as exc:
        raise _fail(str(exc)) from None


def eval_service_command(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="The support team's model: openai:<name>, local, hf:<dir>... (not with --replay)."),
    out: Path = typer.Option(..., "--out", "-o", help="New folder for the conversations (workspaces, transcripts, reports), results.json and index.html."),
    domain: str = typer.Option("retail", "--domain", help="The τ²-bench domain (retail)."),
    split: str = typer.Option("test", "--split", help="Task split: test (40), train (74) or base (all 114)."),
    task: List[str] = typer.Option([], "--task", help="Only this task id (repeatable)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N tasks."),
    trials: int = typer.Option(1, "--trials", "-k", min=1, help="Conversations per task: pass^k for k up to this."),
    max_turns: int = typer.Option(10, "--max-turns", min=1, help="Messages the customer may send before a conversation is stopped."),
    max_tool_steps: Optional[int] = typer.Option(None, "--max-tool-steps", min=1, help="Tool calls the agent may make in one turn before it must answer (default 12)."),
    checker: bool = typer.Option(True, "--checker/--no-checker", help="A policy checker reviews each state-changing call (off: the support agent alone)."),
    customer_model: Optional[str] = typer.Option(None, "--customer-model", help="The simulated customer's model (default: the team's)."),
    replay: Optional[Path] = typer.Option(None, "--replay", help="The --out folder of an earlier eval: replay every conversation from its transcripts, offline, and grade it again."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Run the conversations on the task runner, this many at once, each in its own process (default: one after another in this process)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run the conversations on a Ray cluster: auto or HOST:PORT (see docs/scale.md)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL."),
    api_key_file: Optional[Path] = typer.Option(None, "--api-key-file", help="Read the API key from this file (or set MGPT_API_KEY / OPENAI_API_KEY)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=1, help="Most tokens per model call."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch threads per local model."),
) -> None:
    """Customer service on τ²-bench: the support team against a simulated customer on each
    task, graded by the store's end state and what the agent said; pass^1 and pass^k."""
    from rich.console import Console
    from rich.markup import escape

    from mgpt.agents.errors import MgptError
    from mgpt.llm.eval.errors import EvalInputError
    from mgpt.workflows.service_eval import ServiceEvalOptions, run_service_eval

    err = Console(stderr=True, highlight=False)

    def progress(item: Any, done: int, total: int) -> None:
        why = "" if item.passed else (" (store not as expected)" if not item.state_matches else " (info not said)")
        err.print(f"[dim][{done}/{total}] task {escape(item.task_id)} trial {item.trial}: "
                  f"{'pass' if item.passed else 'fail'}{why}, ended by {escape(item.ended)} after "
                  f"{item.turns} customer turn(s), {item.tool_calls} tool call(s), {item.seconds:.1f} s[/]")

    try:
        if (model is None) == (replay is None):
            raise EvalInputError("give --model (the team's model) or --replay (an earlier eval's --out folder)")
        options = ServiceEvalOptions(
            model=model or f"replay:{replay}", out=out, domain=domain, split=split, task_ids=task or None, limit=limit,
            trials=trials, max_turns=max_turns, max_tool_steps=max_tool_steps, checker=checker,
            customer_model=customer_model, replay=replay, base_url=base_url, api_key_file=api_key_file,
            max_tokens=max_tokens, threads=threads)
        runner = None
        if workers is not None or ray is not None:
            from mgpt.agents.runner import RunnerOptions

            runner = RunnerOptions(out=out, workers=workers, ray=ray)
        result = run_service_eval(options, on_done=progress, runner=runner)
    except MgptError as exc:
        raise _fail(str(exc)) from None
    Console(highlight=False).print(_summary(result))
    err.print(f"[dim]Wrote {escape(str(out))}/results.json and index.html (each conversation's report beside it)[/]")


def _summary(result: Any) -> Any:
    """The eval's outcome as a table: the team, pass^k, what the conversations did."""
    from rich.table import Table

    totals, options = result.totals(), result.options
    rows = [("team", f"{options['team']} on {options['model']}"), ("customer", str(options["customer_model"])),
            ("tasks", f"{totals['tasks']} ({options['split']}) x {options['trials']} trial(s), on {options['ran_on']}")]
    rows += [(f"pass^{k}", f"{v:.3f}") for k, v in result.pass_hat().items()]
    rows += [("store as expected", f"{totals['state_matches']}/{totals['count']}"),
             ("state-changing calls", f"{totals['writes_done']} made of {totals['writes_asked']} asked, "
                                      f"{totals['writes_declined']} declined by the checker"),
             ("ended by", ", ".join(f"{k} {v}" for k, v in totals["ended"].items())),
             ("tokens", f"{totals['prompt_tokens']} prompt + {totals['completion_tokens']} completion"),
             ("time", f"{result.seconds:.1f} s ({totals['seconds_per_conversation']} s a conversation)")]
    table = Table(title="Customer service")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table


def register(app: typer.Typer) -> None:
    """Add ``service`` to the ``mgpt`` command line."""
    app.command("service")(service_command)

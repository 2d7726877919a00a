"""``mgpt service``: the support team answering you in the terminal, on a store you name.

A thin command over :class:`mgpt.workflows.service_desk.ServiceDesk` and ``mgpt chat``'s
loop (:mod:`mgpt.llm.serve.chat`). Only typer is imported here; the rest loads when it runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register", "service_command"]


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


def register(app: typer.Typer) -> None:
    """Add ``service`` to the ``mgpt`` command line."""
    app.command("service")(service_command)

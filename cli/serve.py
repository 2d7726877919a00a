"""``mgpt chat`` and ``mgpt serve``: thin commands over :mod:`mgpt.llm.serve.chat` and
:mod:`mgpt.llm.serve.app`. Only typer is imported here; the commands import the rest when
they run, so ``mgpt --help`` stays fast."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

__all__ = ["chat_command", "register", "serve_command"]


def _fail(message: str) -> "typer.Exit":
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(2)


def chat_command(
    question: Optional[str] = typer.Argument(
        None, help="Ask this one question, print the answer and exit ('-' reads it from stdin). Without it: interactive."
    ),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="Model spec: openai:<name>, hf:<dir>, replay:<file>... Default: $MGPT_MODEL or the config file."
    ),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL (e.g. mgpt serve's http://127.0.0.1:8000/v1)."),
    system: Optional[str] = typer.Option(None, "--system", "-s", help="System prompt."),
    plain: bool = typer.Option(False, "--plain", help="Show answers as plain text (no markdown rendering)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Config file (TOML). Default: ~/.config/mgpt/config.toml."),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help="Give the model this Python function as a tool: module:function (repeatable)."),
    mcp: Optional[list[str]] = typer.Option(None, "--mcp", help='Give the model every tool of this MCP server: "command args..." (stdio) or an http(s) URL (repeatable).'),
) -> None:
    """Chat with a model in the terminal; /help lists the commands. The API key comes
    from MGPT_API_KEY / OPENAI_API_KEY or the config file."""
    from rich.console import Console

    from mgpt.agents.errors import MgptError
    from mgpt.cli.config import load_settings
    from mgpt.llm.serve import chat
    from mgpt.llm.models import SPEC_HELP

    try:
        settings = load_settings(config=config, model=model, base_url=base_url)
        if not settings.model:
            raise _fail(f"no model configured: {SPEC_HELP}")
        if question == "-":
            question = sys.stdin.read()
            if not question.strip():
                raise _fail("stdin held no question")
        llm = chat.make_model(settings.model, base_url=settings.base_url, api_key=settings.api_key)
        session = chat.ChatSession(llm, system=system, tools=_toolbox(tool or [], mcp or []), on_tool=_show_tool)
        if question is not None:
            chat.ask_once(session, question, lambda piece: (sys.stdout.write(piece), sys.stdout.flush()))
            return
        read_line = input
        if sys.stdin.isatty():
            try:  # line editing and up-arrow history for input(), where the platform has it
                import readline  # noqa: F401
            except ImportError:
                pass
        chat.chat_loop(session, console=Console(highlight=False), read_line=read_line, markdown=not plain)
    except MgptError as exc:
        raise _fail(str(exc)) from None


def _toolbox(tools: list[str], servers: list[str]):
    """The --tool functions and --mcp servers as a toolbox (None without any)."""
    if not tools and not servers:
        return None
    import importlib
    import shlex

    from mgpt.agents.errors import MgptError
    from mgpt.agents.mcp import MCPServer
    from mgpt.agents.tools import Toolbox

    found = []
    for spec in tools:
        module, _, name = spec.partition(":")
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError, ValueError) as exc:
            raise MgptError(f"--tool {spec}: cannot load it ({exc}); give module:function, importable from here") from None
    for spec in servers:
        if spec.startswith(("http://", "https://")):
            found.append(MCPServer.http(spec))
        else:
            command, *args = shlex.split(spec) or [""]
            found.append(MCPServer.stdio(command, *args))
    return Toolbox(found)


def _show_tool(call, result) -> None:
    """One line per tool call in the chat, on stderr (the answer stays alone on stdout)."""
    mark = "error" if result.is_error else "ok"
    shown = " ".join(result.content.split())
    typer.secho(f"[tool] {call.brief()} -> {mark}: {shown[:160]}", err=True, fg=typer.colors.CYAN)


def _read_key(api_key_env: str | None, api_key_file: Path | None) -> str | None:
    if api_key_env and api_key_file:
        raise _fail("give --api-key-env or --api-key-file, not both")
    if api_key_env:
        key = os.environ.get(api_key_env, "").strip()
        if not key:
            raise _fail(f"--api-key-env {api_key_env}: that variable is not set or empty")
        return key
    if api_key_file:
        try:
            key = api_key_file.expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise _fail(f"cannot read the key file {api_key_file}: {exc.strerror or exc}") from None
        if not key:
            raise _fail(f"the key file {api_key_file} is empty")
        return key
    return None


def _checkpoint(spec: str) -> Path:
    """The checkpoint folder a spec names: ``hf:DIR``, a bare folder, or any spec whose
    backend is a local checkpoint (such as ``local``)."""
    from mgpt.llm.models import infer_model

    if ":" not in spec and Path(spec).expanduser().is_dir():
        spec = f"hf:{spec}"
    model = infer_model(spec)
    path = getattr(model, "path", None)
    if path is None:
        raise _fail(f"mgpt serve serves a local checkpoint (hf:<dir> or local), not {spec}")
    return Path(path)


def serve_command(
    model: str = typer.Option(..., "--model", "-m", help="The local model: hf:<dir>, local, or a checkpoint folder."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (0.0.0.0 exposes it to the network: set a key)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    served_name: Optional[str] = typer.Option(None, "--served-name", help="Model name clients ask for. Default: the folder's name."),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env", help="Require this environment variable's value as the Bearer key."),
    api_key_file: Optional[Path] = typer.Option(None, "--api-key-file", help="Require the key stored in this file as the Bearer key."),
    max_batch: int = typer.Option(16, "--max-batch", min=1, help="Most requests decoded together."),
    max_tokens: int = typer.Option(4096, "--max-tokens", min=1, help="Largest max_tokens a request may ask for."),
    default_max_tokens: int = typer.Option(512, "--default-max-tokens", min=1, help="Answer length when a request gives no max_tokens."),
    max_body: int = typer.Option(1_000_000, "--max-body-bytes", min=1, help="Largest request body accepted."),
    max_messages: int = typer.Option(512, "--max-messages", min=1, help="Most messages in one request."),
    prefix_cache: int = typer.Option(8192, "--prefix-cache-tokens", min=0, help="Prompt tokens of keys/values kept for reuse (0: off)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch CPU threads. Default: $MGPT_THREADS, else the cores not already busy."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda... Default: cuda when available."),
    decoder: Optional[str] = typer.Option(
        None, "--decoder",
        help="Forward path: hf, fast, fast-int8, fast-int4 or fast-w8a8 (mgpt's lean decoder; Llama-family models on the CPU, "
        "else hf). Default: $MGPT_DECODER, else fast-int4 (fast-int8 for a model mgpt's trainer wrote: "
        "int4 would undo most of a fine-tune).",
    ),
    graceful_timeout: int = typer.Option(10, "--graceful-timeout", min=0, help="Seconds in-flight requests get to finish on SIGINT/SIGTERM."),
) -> None:
    """Serve a local model over an OpenAI-compatible HTTP API (/v1/chat/completions,
    /v1/models, /health), batching concurrent requests. Point clients at
    http://HOST:PORT/v1, e.g. mgpt run -m openai:NAME --base-url http://127.0.0.1:8000/v1."""
    import logging

    from mgpt.agents import secrets
    from mgpt.agents.errors import MgptError

    key = _read_key(api_key_env, api_key_file)
    secrets.register(key)
    try:
        from mgpt.llm.serve import app as serve
        from mgpt.llm.local.generate import pick_threads

        serve.require_serve_extra()
        path = _checkpoint(model)
        import torch

        # Decided once, here, and handed to the loader (which would otherwise pick again).
        threads = pick_threads(threads)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
        except ImportError:
            pass
        served = serve.load_served_model(
            path, name=served_name, device=device, max_batch=max_batch, prefix_cache_tokens=prefix_cache,
            decoder=decoder, threads=threads,
        )
        limits = serve.ServeLimits(
            max_body_bytes=max_body, max_messages=max_messages, max_tokens=max_tokens,
            default_max_tokens=min(default_max_tokens, max_tokens),
        )
        app = serve.create_app(served, api_key=key, limits=limits)
    except MgptError as exc:
        raise _fail(str(exc)) from None
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    if not loopback and key is None:
        typer.secho(f"warning: serving on {host} without an API key: anyone who can reach it can use it", err=True, fg=typer.colors.YELLOW)
    typer.echo(
        f"mgpt serve: {served.name} at http://{host}:{port}/v1 "
        f"(decoder {served.decoder}, torch threads {torch.get_num_threads()}, batch up to {max_batch}"
        f"{', key required' if key else ''})",
        err=True,
    )
    serve.run_server(app, host=host, port=port, graceful_timeout=graceful_timeout, engine=served.engine)


def register(app: typer.Typer) -> None:
    """Add ``chat`` and ``serve`` to the ``mgpt`` command line."""
    app.command("chat")(chat_command)
    app.command("serve")(serve_command)

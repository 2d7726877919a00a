"""``mgpt chat``: talk to any model backend from the terminal.

A :class:`ChatSession` keeps the conversation (an optional system prompt and the turns)
and asks the model with all of it each time. :func:`chat_loop` reads messages, runs the
slash commands and shows answers as they stream; :func:`ask_once` is the one-shot mode
for scripts.

With tools (``--tool module:function``, ``--mcp "command args"``), each question runs the
tool loop: the model's calls are shown as they run, and their results go back to it until
it answers (at most :data:`MAX_TOOL_STEPS` rounds).

Input: a line is one message. End a line with a backslash to continue on the next one;
a line holding only ``\"\"\"`` starts a block (pasted text, blank lines included) that
ends at the next ``\"\"\"`` line. A message that starts with ``/`` is a command (``//``
sends a literal slash).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Callable

from mgpt.agents.tools import Toolbox, ToolCall, ToolResult
from mgpt.llm.backends.base import CallContext, ChatMessage, Completion, Model, ToolOptions

#: Rounds of tool calls one question may take before the model is asked to answer.
MAX_TOOL_STEPS = 8

__all__ = ["ChatSession", "HELP", "ask_once", "chat_loop", "make_model", "read_message"]

HELP = """\
Commands:
  /system TEXT   set the system prompt (/system alone shows it; /system - clears it)
  /reset         forget the conversation (the system prompt stays)
  /history       list the turns so far
  /save FILE     write the conversation to FILE as JSON
  /help          this help
  /exit          leave (also /quit or Ctrl-D)
Input: end a line with \\ to continue it; a line with only \"\"\" starts a block
(for pasting) that ends at the next \"\"\" line. Start with // to send a literal /."""

PASTE = '"""'


def make_model(spec: str, *, base_url: str | None = None, api_key: str | None = None) -> Model:
    """Build the backend for ``spec`` (tests replace this to inject a scripted model)."""
    from mgpt.llm.models import infer_model

    return infer_model(spec, base_url=base_url, api_key=api_key)


class ChatSession:
    """A conversation with one model: the system prompt plus user/assistant turns.

    With ``tools`` each question runs the tool loop; ``on_tool(call, result)`` is told of
    each call once it ran.
    """

    def __init__(
        self,
        model: Model,
        *,
        system: str | None = None,
        tools: Toolbox | None = None,
        on_tool: Callable[[ToolCall, ToolResult], Any] | None = None,
    ):
        self.model = model
        self.system = system or None
        self.turns: list[ChatMessage] = []
        self.tools = tools
        self.on_tool = on_tool

    def request(self, text: str) -> list[ChatMessage]:
        head = [ChatMessage(role="system", content=self.system)] if self.system else []
        return head + self.turns + [ChatMessage(role="user", content=text)]

    async def ask(self, text: str, on_delta: Callable[[str], Any] | None = None) -> Completion:
        """Ask ``text`` with the conversation so far; the turn is kept only if the model
        answered (an error or an interrupt leaves the conversation as it was)."""
        if self.tools:
            return await self._ask_with_tools(text, on_delta)
        messages = self.request(text)
        completion = None
        pieces: list[str] = []
        stream = self.model.stream(messages)
        try:
            async for chunk in stream:
                if chunk.delta:
                    pieces.append(chunk.delta)
                    if on_delta is not None:
                        on_delta(chunk.delta)
                if chunk.completion is not None:
                    completion = chunk.completion
        finally:
            await stream.aclose()
        if completion is None:
            completion = Completion(text="".join(pieces), model=self.model.name)
        self.turns += [ChatMessage(role="user", content=text), ChatMessage(role="assistant", content=completion.text)]
        return completion

    async def _ask_with_tools(self, text: str, on_delta: Callable[[str], Any] | None) -> Completion:
        """The tool loop: calls run and go back until the model answers (not streamed)."""
        from mgpt.llm.backends.tool_protocol import call_model

        assert self.tools is not None
        specs = [t.spec() for t in await self.tools.tools()]
        messages = self.request(text)
        new = [messages[-1]]
        for step in range(MAX_TOOL_STEPS + 1):
            options = ToolOptions(tools=specs, choice="auto" if step < MAX_TOOL_STEPS else "none")
            completion = await call_model(self.model, messages, context=CallContext(turn=step + 1), tools=options)
            if not completion.tool_calls:
                break
            results = await self.tools.run(completion.tool_calls)
            turn = [ChatMessage(role="assistant", content=completion.text, tool_calls=completion.tool_calls)]
            turn += [ChatMessage.tool_result(r) for r in results]
            for call, result in zip(completion.tool_calls, results):
                if self.on_tool is not None:
                    self.on_tool(call, result)
            messages += turn
            new += turn
        if on_delta is not None and completion.text:
            on_delta(completion.text)
        self.turns += [*new, ChatMessage(role="assistant", content=completion.text)]
        return completion

    def reset(self) -> None:
        self.turns = []

    async def aclose(self) -> None:
        """Close the model's connections and stop the tools' MCP servers."""
        try:
            if self.tools is not None:
                await self.tools.aclose()
        finally:
            await self.model.aclose()

    def as_json(self) -> dict[str, Any]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return {"model": self.model.name, "messages": head + [m.model_dump() for m in self.turns]}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_message(read_line: Callable[[str], str], prompt: str = "> ", more: str = ". ") -> str | None:
    """Read one message: continued lines (trailing backslash) and paste blocks joined by
    newlines. None at end of input. Bounded by the input itself: every loop consumes a line."""
    try:
        line = read_line(prompt)
    except EOFError:
        return None
    if line.strip() == PASTE:
        lines = []
        while True:
            try:
                line = read_line(more)
            except EOFError:
                break  # an unterminated block at the end of input is still sent
            if line.strip() == PASTE:
                break
            lines.append(line)
        return "\n".join(lines)
    lines = []
    while line.endswith("\\"):
        lines.append(line[:-1])
        try:
            line = read_line(more)
        except EOFError:
            line = ""
            break
    lines.append(line)
    return "\n".join(lines)


class _Display:
    """Shows a streamed answer: live plain text on a terminal, then the finished answer
    rendered as markdown; plain text as it comes anywhere else."""

    def __init__(self, console: Any, markdown: bool):
        self.console = console
        self.rich = markdown and console.is_terminal
        self.text = ""
        self.live = None

    def __enter__(self) -> "_Display":
        if self.rich:
            from rich.live import Live
            from rich.text import Text

            self.live = Live(
                Text(""), console=self.console, transient=True, refresh_per_second=12, vertical_overflow="crop"
            )
            self.live.__enter__()
        return self

    def delta(self, piece: str) -> None:
        self.text += piece
        if self.live is not None:
            from rich.text import Text

            # Show the tail: a live view taller than the terminal cannot be redrawn.
            tail = "\n".join(self.text.split("\n")[-max(1, self.console.height - 2) :])
            self.live.update(Text(tail))
        else:
            self.console.file.write(piece)
            self.console.file.flush()

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)
            if exc[0] is None:
                from rich.markdown import Markdown

                self.console.print(Markdown(self.text))
        else:
            self.console.file.write("\n")
            self.console.file.flush()


def _command(session: ChatSession, line: str, console: Any) -> bool:
    """Run a slash command; False means leave."""
    from rich.markup import escape

    name, _, arg = line[1:].partition(" ")
    arg = arg.strip()
    if name in ("exit", "quit"):
        return False
    if name == "help":
        console.print(escape(HELP), highlight=False)
    elif name == "reset":
        session.reset()
        console.print("(conversation cleared)")
    elif name == "system":
        if not arg:
            console.print(f"system prompt: {escape(session.system or '(none)')}", highlight=False)
        else:
            session.system = None if arg == "-" else arg
            console.print("(system prompt cleared)" if arg == "-" else "(system prompt set)")
    elif name == "history":
        if not session.turns:
            console.print("(no turns yet)")
        for i, m in enumerate(session.turns):
            console.print(f"[bold]{i // 2 + 1} {m.role}:[/] {escape(m.content)}", highlight=False)
    elif name == "save":
        if not arg:
            console.print("[red]usage: /save FILE[/]")
        else:
            try:
                session.save(Path(arg).expanduser())
                console.print(f"(saved {len(session.turns)} messages to {escape(arg)})")
            except OSError as exc:
                console.print(f"[red]cannot save to {escape(arg)}: {escape(exc.strerror or str(exc))}[/]")
    else:
        console.print(f"[red]unknown command /{escape(name)}[/]; /help lists them")
    return True


def chat_loop(
    session: ChatSession,
    *,
    console: Any,
    read_line: Callable[[str], str] = input,
    markdown: bool = True,
) -> int:
    """The interactive loop: read, run commands or ask, show. Returns the number of
    answered turns. Ctrl-C stops the answer being shown (the turn is dropped); Ctrl-D or
    /exit leaves."""
    from rich.markup import escape

    from mgpt.llm.errors import MgptError

    loop = asyncio.new_event_loop()
    answered = 0
    console.print(f"mgpt chat with {escape(session.model.name)}: /help for commands, /exit to leave", highlight=False)
    try:
        while True:
            try:
                text = read_message(read_line)
            except KeyboardInterrupt:
                console.print()
                continue
            if text is None:
                break
            if not text.strip():
                continue
            if text.startswith("/") and not text.startswith("//"):
                if not _command(session, text.strip(), console):
                    break
                continue
            if text.startswith("//"):
                text = text[1:]
            try:
                with _Display(console, markdown) as display:
                    loop.run_until_complete(session.ask(text, display.delta))
                answered += 1
            except KeyboardInterrupt:
                _cancel_pending(loop)
                console.print("[yellow](interrupted; that turn was dropped)[/]")
            except MgptError as exc:
                console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
    finally:
        try:
            loop.run_until_complete(session.aclose())
        finally:
            loop.close()
    return answered


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the interrupted answer's task and let it clean up (close its stream)."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def ask_once(session: ChatSession, question: str, write: Callable[[str], Any]) -> Completion:
    """One question, the answer streamed to ``write`` (then a newline): for scripts."""

    async def go() -> Completion:
        try:
            return await session.ask(question, write)
        finally:
            await session.aclose()

    completion = asyncio.run(go())
    write("\n")
    return completion


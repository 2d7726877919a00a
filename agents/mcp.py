"""MCP servers as tool sources: a role takes every tool of a server in one line.

    tools = [MCPServer.stdio("mcp-server-time", "--local-timezone", "UTC")]
    tools = [MCPServer.http("http://127.0.0.1:8000/mcp")]

The client is the official ``mcp`` SDK (``pip install 'mgpt[mcp]'``), imported only when a
server is opened. Each server runs as a subprocess (stdio) or is reached over streamable
HTTP; its connection lives in a task of its own, so it is opened and closed in one task as
the SDK needs, whichever role's turn uses it.

Nothing a server does can stop or hang a run: starting has a deadline
(``startup_timeout``), every call has one (``timeout``), a server that dies fails the calls
in flight at once (the next call starts it again, up to ``max_restarts`` times), and one
that writes malformed JSON-RPC fails the calls it owed an answer. Each of those is a tool
result with an error the model reads. A stdio server gets
no mgpt secrets: its environment is the SDK's short safe list (``PATH``, ``HOME``...) plus
what ``env`` gives it, which is the one way to hand it a key.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from mgpt.agents.secrets import SECRET_NAME, redact, register
from mgpt.agents.errors import MgptError
from mgpt.agents.tools import DEFAULT_TIMEOUT, Tool, ToolError

__all__ = ["MCPError", "MCPServer", "MCPTool"]

log = logging.getLogger(__name__)

#: Seconds a server may take to start and list its tools.
STARTUP_TIMEOUT = 30.0


class MCPError(MgptError):
    """An MCP server could not be started or reached (the SDK missing, a bad command...)."""


def _require_mcp() -> Any:
    try:
        import mcp
    except ImportError:
        raise MCPError("MCP servers need the mcp package: pip install 'mgpt[mcp]'") from None
    # The SDK logs a traceback for each line a server garbles; the call's error result says
    # it already, and a traceback would draw over the live view.
    logging.getLogger("mcp.client.stdio").setLevel(logging.CRITICAL)
    return mcp


@dataclass
class MCPServer:
    """One MCP server whose tools join a role's toolbox (a :class:`~mgpt.agents.tools.ToolSource`).

    Build one with :meth:`stdio` or :meth:`http`. ``prefix`` is put before each tool's name
    (two servers may name a tool alike); ``needs_approval`` marks every tool of the server
    as needing a reviewer's approval (``--review tools``).
    """

    name: str
    command: str | None = None
    args: list[str] = field(default_factory=list)
    #: Extra environment for a stdio server (its only way to get a key: nothing of mgpt's
    #: environment is passed on but the SDK's short safe list).
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    startup_timeout: float = STARTUP_TIMEOUT
    prefix: str = ""
    needs_approval: bool = False
    #: How many times a server that died is started again for a later call.
    max_restarts: int = 2

    def __post_init__(self) -> None:
        if (self.command is None) == (self.url is None):
            raise MCPError(f"MCP server {self.name!r}: give a command (stdio) or a url (HTTP), not both or neither")
        for key, value in self.env.items():
            if SECRET_NAME.search(key):
                register(value)  # a key given to a server is redacted like mgpt's own
        self._task: asyncio.Task | None = None
        self._stop: asyncio.Event | None = None
        self._session: Any = None
        self._dead: str | None = None
        self._faults: set[asyncio.Future] = set()
        self._listed: list[Any] = []
        self._restarts = 0

    @classmethod
    def stdio(cls, command: str, *args: str, name: str | None = None, **options: Any) -> "MCPServer":
        """A server started as ``command args...`` and spoken to over its stdin/stdout."""
        return cls(name=name or command.rsplit("/", 1)[-1], command=command, args=list(args), **options)

    @classmethod
    def http(cls, url: str, *, name: str | None = None, **options: Any) -> "MCPServer":
        """A server reached over streamable HTTP at ``url`` (e.g. ``http://127.0.0.1:8000/mcp``)."""
        return cls(name=name or url, url=url, **options)

    @property
    def running(self) -> bool:
        """Whether the connection is open (the server started and has not stopped)."""
        return self._task is not None and self._session is not None and self._dead is None

    # -- the tool source protocol ------------------------------------------------------------

    async def list_tools(self) -> list[Tool]:
        """Start the server (once) and return its tools."""
        listed = await self._start()
        return [
            MCPTool(self, t.name, f"{self.prefix}{t.name}", t.description or "", dict(t.input_schema or {}))
            for t in listed
        ]

    async def aclose(self) -> None:
        """Stop the server (its subprocess ends) and forget the connection."""
        task, self._task = self._task, None
        if task is None:
            return
        if self._stop is not None:
            self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), self.startup_timeout)
        except (asyncio.TimeoutError, Exception):
            task.cancel()
        self._session = None

    # -- calls -----------------------------------------------------------------------------------

    async def call(self, tool: str, arguments: dict[str, Any], timeout: float) -> str:
        """Call ``tool`` and return its text; raises :class:`ToolError` for anything that went
        wrong (the toolbox turns it into an error result)."""
        if (self._dead is not None or self._session is None) and self._restarts < self.max_restarts:
            self._restarts += 1
            await self.aclose()
            try:
                await self._start()
            except MCPError as exc:
                raise ToolError(f"{exc} (restart {self._restarts} of {self.max_restarts})") from None
        if self._dead is not None or self._session is None:
            raise ToolError(f"MCP server {self.name} is not running ({self._dead or 'it was closed'})")
        fault: asyncio.Future = asyncio.get_running_loop().create_future()
        self._faults.add(fault)
        request = asyncio.ensure_future(self._session.call_tool(tool, arguments))
        try:
            done, _ = await asyncio.wait({request, fault, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._faults.discard(fault)
        if request not in done:
            request.cancel()
            if fault in done:
                raise ToolError(f"MCP server {self.name} sent malformed JSON-RPC: {fault.result()}")
            if self._task in done or self._dead is not None:
                raise ToolError(f"MCP server {self.name} stopped during the call ({self._dead or 'it exited'})")
            raise ToolError(f"MCP server {self.name} did not answer {tool} within {timeout:g}s")
        try:
            result = request.result()
        except Exception as exc:
            if _closed(exc):
                self._dead = _describe(exc)  # the next call starts the server again
            raise ToolError(f"MCP server {self.name} failed on {tool}: {_describe(exc)}") from None
        text = _result_text(result)
        if getattr(result, "is_error", False):
            raise ToolError(text or f"{tool} failed")
        return text

    # -- the connection task -------------------------------------------------------------------

    async def _start(self) -> list[Any]:
        _require_mcp()
        if self._task is not None and self._dead is None and self._session is not None:
            return self._listed
        self._dead, self._stop = None, asyncio.Event()
        ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._serve(ready), name=f"mcp:{self.name}")
        try:
            self._listed = await asyncio.wait_for(asyncio.shield(ready), self.startup_timeout)
        except asyncio.TimeoutError:
            await self.aclose()
            raise MCPError(f"MCP server {self.name} did not start within {self.startup_timeout:g}s") from None
        except MCPError:
            await self.aclose()
            raise
        return self._listed

    def _transport(self) -> Any:
        if self.url is not None:
            from mcp.client.streamable_http import streamable_http_client

            if self.headers:
                import httpx2

                client = httpx2.AsyncClient(headers=self.headers, timeout=self.timeout)
                return streamable_http_client(self.url, http_client=client)
            return streamable_http_client(self.url)
        from mcp.client.stdio import StdioServerParameters, stdio_client

        params = StdioServerParameters(command=self.command, args=self.args, env=dict(self.env) or None, cwd=self.cwd)
        return stdio_client(params, errlog=_errlog())

    async def _serve(self, ready: asyncio.Future) -> None:
        """Open the connection, list the tools, then hold it open until :meth:`aclose`."""
        from mcp import ClientSession

        try:
            async with self._transport() as streams:
                read, write = streams[0], streams[1]
                async with ClientSession(read, write, message_handler=self._on_message) as session:
                    await session.initialize()
                    listed = await session.list_tools()
                    self._session = session
                    if not ready.done():
                        ready.set_result(list(listed.tools))
                    assert self._stop is not None
                    await self._stop.wait()
        except BaseException as exc:  # the server died, refused, or we were cancelled
            self._dead = _describe(exc) if not isinstance(exc, asyncio.CancelledError) else "stopped"
            if not ready.done():
                ready.set_exception(MCPError(f"MCP server {self.name} could not start: {self._dead}"))
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                raise
        finally:
            self._session = None
            if self._dead is None:
                self._dead = "it was closed"

    async def _on_message(self, message: Any) -> None:
        """The SDK hands transport faults (a line that is not JSON-RPC) here: fail the calls
        waiting on this server now instead of at their deadline."""
        if isinstance(message, Exception):
            detail = _describe(message)
            for fault in list(self._faults):
                if not fault.done():
                    fault.set_result(detail)


class MCPTool(Tool):
    """One tool of an MCP server; arguments are checked against its input schema."""

    def __init__(self, server: MCPServer, remote_name: str, name: str, description: str, parameters: dict[str, Any]):
        self.server = server
        self.remote_name = remote_name
        self.name = name
        self.description = description
        self.parameters = {"type": "object", **parameters}
        self.timeout = server.timeout
        self.needs_approval = server.needs_approval

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            import jsonschema
        except ImportError:  # the server validates then
            return arguments
        try:
            jsonschema.validate(arguments, self.parameters)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(p) for p in exc.absolute_path) or "(arguments)"
            raise ValueError(f"{where}: {exc.message}") from None
        except jsonschema.SchemaError:
            return arguments  # the server's schema is broken: let the server judge
        return arguments

    async def invoke(self, arguments: dict[str, Any]) -> Any:
        # The toolbox holds the deadline too; the server's own is a little shorter, so its
        # message (which says what happened) is the one the model reads.
        return await self.server.call(self.remote_name, arguments, max(0.1, self.timeout * 0.95))

    def __repr__(self) -> str:
        return f"MCPTool(server={self.server.name!r}, name={self.name!r})"


#: The JSON-RPC error code the SDK gives calls in flight when the connection ends.
CONNECTION_CLOSED = -32000


def _closed(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection to the server is gone (it died or hung up)."""
    import anyio

    code = getattr(getattr(exc, "error", None), "code", getattr(exc, "code", None))
    return code == CONNECTION_CLOSED or isinstance(exc, (anyio.ClosedResourceError, anyio.BrokenResourceError))


def _result_text(result: Any) -> str:
    parts = []
    for item in getattr(result, "content", None) or []:
        text = getattr(item, "text", None)
        parts.append(text if isinstance(text, str) else f"[{getattr(item, 'type', 'content')} content]")
    if not parts and getattr(result, "structured_content", None) is not None:
        import json

        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def _describe(exc: BaseException) -> str:
    """One line for an error, looking inside exception groups (anyio raises those)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact(text if len(text) <= 300 else text[:300] + "…")


_DEVNULL: Any = None


def _errlog() -> Any:
    """Where a stdio server's stderr goes: nowhere (it would draw over the live view)."""
    global _DEVNULL
    if _DEVNULL is None:
        import os

        _DEVNULL = open(os.devnull, "w")
    return _DEVNULL

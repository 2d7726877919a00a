"""Tools: plain Python functions (and MCP servers' tools) a role's model may call.

A function becomes a tool with :func:`tool`: its name, its docstring and its type-hinted
parameters give the JSON schema the model sees (through pydantic), and the arguments the
model writes are validated against the same model before the function runs::

    @tool
    def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        '''The weather in a city now.'''
        return ...

A :class:`Toolbox` holds a role's tools and runs the calls a model asked for in one turn,
concurrently (:meth:`Toolbox.run`). Whatever goes wrong with one call (an unknown tool
name, arguments that are not JSON or do not validate, the function raising, running past
its deadline, a reviewer declining it) becomes that call's :class:`ToolResult` with
``is_error`` set and a message the model can act on; the run never stops for it. Every
result is redacted (:mod:`.secrets`) before it goes anywhere.

Tools run with mgpt's own permissions, not in the sandbox: they are opt-in per role, and a
tool that changes state can be marked ``needs_approval`` so that a reviewer
(``mgpt run --review tools``) is asked before it runs.

A *tool source* (an MCP server, :mod:`mgpt.agents.mcp`) is anything with
``async list_tools() -> list[Tool]`` and ``async aclose()``; a toolbox opens its sources on
first use and closes them in :meth:`Toolbox.aclose`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from typing import Any, Awaitable, Callable, Iterable, Protocol, Union, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from mgpt.agents.errors import MgptError
from mgpt.agents.secrets import redact

__all__ = [
    "DEFAULT_TIMEOUT", "FunctionTool", "Tool", "ToolCall", "ToolError", "ToolExchange",
    "ToolResult", "ToolSource", "ToolUse", "Toolbox", "tool",
]

#: Seconds one tool call may run unless the tool or the toolbox says otherwise.
DEFAULT_TIMEOUT = 30.0
#: Longest tool result (characters) sent back to the model; longer ones are cut with a note.
MAX_RESULT_CHARS = 20_000


class ToolError(MgptError):
    """Raise it from a tool to give the model a plain error message (no exception name)."""


class ToolCall(BaseModel):
    """One call a model asked for, in OpenAI's shape: ``arguments`` is the JSON text the
    model wrote (it may not parse; :meth:`Toolbox.run` says so to the model)."""

    id: str = Field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")
    name: str
    arguments: str = "{}"

    @classmethod
    def of(cls, name: str, arguments: dict[str, Any] | None = None, *, id: str | None = None) -> "ToolCall":
        """A call to ``name`` with ``arguments`` given as a dict (tests, scripted models)."""
        extra = {"id": id} if id else {}
        return cls(name=name, arguments=json.dumps(arguments or {}), **extra)

    def brief(self, limit: int = 120) -> str:
        """``name({...})`` on one line, for logs."""
        text = f"{self.name}({' '.join(self.arguments.split())})"
        return text if len(text) <= limit else text[: limit - 1] + "…"


class ToolResult(BaseModel):
    """What a call gave back: text for the model, and whether it is an error message."""

    call_id: str
    name: str
    content: str
    is_error: bool = False


class ToolUse:
    """The ``cause_by`` of the messages that put tool calls and their results on the bus."""


class ToolExchange(BaseModel):
    """A message payload: the calls a role's model asked for in one turn, and the results."""

    action: str = ""
    calls: list[ToolCall]
    results: list[ToolResult]

    def to_markdown(self) -> str:
        by_id = {r.call_id: r for r in self.results}
        lines = []
        for call in self.calls:
            result = by_id.get(call.id)
            shown = " ".join((result.content if result else "(no result)").split())
            shown = shown if len(shown) <= 200 else shown[:199] + "…"
            lines.append(f"- `{call.brief()}` -> {shown}")
        return "\n".join(lines)


class Tool:
    """A tool the model can call. Subclasses set :attr:`name`, :attr:`description` and
    :attr:`parameters` (a JSON schema of an object) and implement :meth:`invoke`;
    :meth:`validate` checks arguments before the call (by default: nothing)."""

    name: str = ""
    description: str = ""
    parameters: dict[str, Any]
    #: Seconds one call may run (None: the toolbox's timeout).
    timeout: float | None = None
    #: A reviewer must approve each call before it runs (``--review tools``).
    needs_approval: bool = False

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The arguments to call with; raise ``ValueError`` (a pydantic ValidationError is
        one) saying what is wrong, which the model then reads."""
        return arguments

    async def invoke(self, arguments: dict[str, Any]) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.invoke is not implemented")

    def spec(self) -> dict[str, Any]:
        """``{"name", "description", "parameters"}``: what a model is shown."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class FunctionTool(Tool):
    """A Python function (sync or async) as a tool; build one with :func:`tool`.

    A sync function runs in a worker thread, so a slow one does not stall the other
    roles; past its deadline its result is abandoned (a thread cannot be killed).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        needs_approval: bool = False,
    ):
        self.fn = fn
        self.name = name or fn.__name__
        self.description = description if description is not None else inspect.cleandoc(fn.__doc__ or "")
        self.timeout = timeout
        self.needs_approval = needs_approval
        self.arguments_model = _arguments_model(fn, self.name)
        self.parameters = _inline_refs(self.arguments_model.model_json_schema())
        self.parameters.pop("title", None)

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        model = self.arguments_model.model_validate(arguments)
        # Fields as validated (nested models built), by the parameter's own name.
        return {name: getattr(model, name) for name in type(model).model_fields}

    async def invoke(self, arguments: dict[str, Any]) -> Any:
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(**arguments)
        result = await asyncio.to_thread(self.fn, **arguments)
        if inspect.isawaitable(result):
            result = await result
        return result


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    needs_approval: bool = False,
) -> Any:
    """Make ``fn`` a :class:`FunctionTool`; usable as ``@tool`` or ``@tool(timeout=5)``.

    The name defaults to the function's, the description to its docstring; each parameter
    needs a type hint (``str``, ``int``, ``Literal[...]``, a pydantic model, ``list[...]``,
    ``X | None = None``...). A parameter's description can be given with
    ``Annotated[str, Field(description=...)]``.
    """
    def wrap(f: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(f, name=name, description=description, timeout=timeout, needs_approval=needs_approval)

    return wrap(fn) if fn is not None else wrap


def _arguments_model(fn: Callable[..., Any], name: str) -> type[BaseModel]:
    """A pydantic model of ``fn``'s parameters (extra keys forbidden)."""
    import typing

    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # a forward reference that does not resolve
        raise MgptError(f"tool {name}: cannot read its type hints ({exc})") from None
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise MgptError(f"tool {name}: *args/**kwargs cannot be described to a model; name each parameter")
        if param.name not in hints:
            raise MgptError(f"tool {name}: parameter {param.name!r} has no type hint; the model needs its type")
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints[param.name], default)
    return create_model(  # type: ignore[call-overload]
        f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
    )


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with ``$ref``s to its ``$defs`` written out in place, so each tool's schema
    stands alone (tool schemas are put side by side in one grammar). A recursive model
    keeps its ``$defs``."""
    defs = schema.get("$defs") or {}
    if not defs:
        return schema

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                key = ref.rsplit("/", 1)[1]
                if key in seen:
                    raise RecursionError(key)
                merged = {**defs[key], **{k: v for k, v in node.items() if k != "$ref"}}
                return resolve(merged, (*seen, key))
            return {k: resolve(v, seen) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(v, seen) for v in node]
        return node

    try:
        return resolve(schema, ())
    except RecursionError:
        return schema


@runtime_checkable
class ToolSource(Protocol):
    """Something that provides tools once opened: an MCP server."""

    name: str

    async def list_tools(self) -> list[Tool]: ...

    async def aclose(self) -> None: ...


#: Asked before a call to a tool that ``needs_approval`` runs: True runs it; False or a
#: string declines it (the string is the reason the model reads); a dict runs it with
#: those arguments instead.
Approver = Callable[[ToolCall, Tool], Union[bool, str, dict, Awaitable[Union[bool, str, dict]]]]

ToolLike = Union[Tool, Callable[..., Any], ToolSource]


class Toolbox:
    """A role's tools, and the runner of the calls its model asks for.

    ``tools``: :class:`Tool` objects, plain functions (wrapped with :func:`tool`) and tool
    sources (MCP servers). ``timeout``: seconds a call may run unless its tool says.
    ``approve``: asked before a ``needs_approval`` tool runs (without one they run).
    """

    def __init__(self, tools: Iterable[ToolLike] = (), *, timeout: float = DEFAULT_TIMEOUT, approve: Approver | None = None):
        self.timeout = timeout
        self.approve = approve
        self._own: list[Tool] = []
        self._sources: list[ToolSource] = []
        for item in tools:
            if isinstance(item, Tool):
                self._own.append(item)
            elif isinstance(item, ToolSource):
                self._sources.append(item)
            elif callable(item):
                self._own.append(FunctionTool(item))
            else:
                raise TypeError(f"not a tool, a function or a tool source: {item!r}")
        self._tools: dict[str, Tool] | None = None
        self._open_lock = asyncio.Lock()
        self.source_errors: list[str] = []
        self._check_names(self._own)

    def __bool__(self) -> bool:
        return bool(self._own or self._sources)

    @staticmethod
    def _check_names(tools: list[Tool]) -> None:
        seen: set[str] = set()
        for t in tools:
            if t.name in seen:
                raise MgptError(f"two tools are named {t.name!r}: rename one (tool(fn, name=...))")
            seen.add(t.name)

    async def tools(self) -> list[Tool]:
        """Every tool, opening the sources first (once). A source that cannot be opened is
        left out and its error kept in :attr:`source_errors` (the run goes on without it)."""
        async with self._open_lock:
            if self._tools is None:
                found = list(self._own)
                for source in self._sources:
                    try:
                        found += await source.list_tools()
                    except Exception as exc:
                        self.source_errors.append(redact(f"tool source {source.name}: {exc}"))
                self._check_names(found)
                self._tools = {t.name: t for t in found}
        return list(self._tools.values())

    async def run(self, calls: list[ToolCall]) -> list[ToolResult]:
        """Run ``calls`` (concurrently, after any approvals) and return one result per call,
        in order. Never raises for a call's failure: it becomes an error result."""
        tools = {t.name: t for t in await self.tools()}
        prepared = [await self._prepare(call, tools) for call in calls]  # approvals one at a time
        return list(await asyncio.gather(*(self._run_one(call, tools, args) for call, args in prepared)))

    async def _prepare(self, call: ToolCall, tools: dict[str, Tool]) -> tuple[ToolCall, dict[str, Any] | ToolResult]:
        """The validated arguments of ``call``, or the error result that replaces it."""
        found = tools.get(call.name)
        if found is None:
            names = ", ".join(sorted(tools)) or "none"
            return call, _error(call, f"there is no tool named {call.name!r}; the tools are: {names}")
        try:
            raw = json.loads(call.arguments or "{}")
        except ValueError as exc:
            return call, _error(call, f"the arguments are not valid JSON ({exc}); send one JSON object")
        if not isinstance(raw, dict):
            return call, _error(call, "the arguments must be a JSON object")
        try:
            args = found.validate(raw)
        except (ValidationError, ValueError) as exc:
            return call, _error(call, f"invalid arguments for {call.name}: {_short_error(exc)}")
        if found.needs_approval and self.approve is not None:
            answer = self.approve(call, found)
            if inspect.isawaitable(answer):
                answer = await answer
            if answer is False or isinstance(answer, str):
                reason = f": {answer}" if isinstance(answer, str) and answer.strip() else ""
                return call, _error(call, f"the reviewer declined this call{reason}")
            if isinstance(answer, dict):
                try:
                    args = found.validate(answer)
                except (ValidationError, ValueError) as exc:
                    return call, _error(call, f"the reviewer's arguments are invalid: {_short_error(exc)}")
        return call, args

    async def _run_one(self, call: ToolCall, tools: dict[str, Tool], args: dict[str, Any] | ToolResult) -> ToolResult:
        if isinstance(args, ToolResult):
            return args
        found = tools[call.name]
        timeout = found.timeout if found.timeout is not None else self.timeout
        try:
            value = await asyncio.wait_for(found.invoke(args), timeout)
        except asyncio.TimeoutError:
            return _error(call, f"tool {call.name} did not finish within its {timeout:g}s deadline")
        except ToolError as exc:
            return _error(call, str(exc))
        except Exception as exc:
            return _error(call, f"tool {call.name} raised {type(exc).__name__}: {exc}")
        return ToolResult(call_id=call.id, name=call.name, content=_clip(redact(_as_text(value))))

    async def aclose(self) -> None:
        """Close the tool sources (MCP servers stop); the toolbox reopens them if used again."""
        sources, self._tools = self._sources, None
        for source in sources:
            try:
                await source.aclose()
            except Exception:
                pass  # closing is best effort: a dead server is already gone


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _clip(text: str) -> str:
    if len(text) <= MAX_RESULT_CHARS:
        return text
    return text[:MAX_RESULT_CHARS] + f"\n[cut: the result was {len(text)} characters]"


def _error(call: ToolCall, message: str) -> ToolResult:
    return ToolResult(call_id=call.id, name=call.name, content=_clip(redact(f"Error: {message}")), is_error=True)


def _short_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err["loc"]) or "(arguments)"
            parts.append(f"{where}: {err['msg']}")
        return "; ".join(parts)
    return str(exc)

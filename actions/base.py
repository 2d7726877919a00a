"""Actions: the unit of work a role does, usually one or a few model calls.

Subclass :class:`Action` and implement :meth:`Action.run`. Inside it, ``self.ask`` sends a
prompt to the role's model, ``self.ask_structured`` gets back a validated pydantic
instance, and ``self.ask_code`` the body of a code block. What ``run`` returns (text, a
pydantic model, or a whole :class:`~mgpt.agents.Message`) is what the role publishes.

Structured asks also pass the answer's shape (:class:`~mgpt.llm.backends.base.OutputFormat`) down
to the model: a local model decodes under its grammar, an OpenAI-compatible server gets
``response_format``. Parsing and re-asking stay in place for backends that cannot
enforce it, and each parse is logged (a ``parse`` event: attempts, first try or not).

``self.ask_with_tools`` runs the tool loop with the role's tools (``ctx.tools``): the model
asks for calls, they run (concurrently), their results go back, until the model answers
or ``max_tool_steps`` rounds of calls are spent. :class:`UseTools` is an action that does
just that with the latest message, for roles whose work is answering with tools.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal, TypeVar, Union

from pydantic import BaseModel, ValidationError

from mgpt.agents.errors import MgptError
from mgpt.agents.message import Message
from mgpt.agents.runlog import Event
from mgpt.agents.scheduler import Launch, run_all
from mgpt.agents.tools import Toolbox
from mgpt.llm.backends.base import ChatMessage, OutputFormat, ToolOptions
from mgpt.llm.backends.client import LLM
from mgpt.memory import InMemory, Memory

from mgpt.llm.parsing import ParseError, extract_code, extract_json

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")


class ActionError(MgptError):
    """An action could not get a usable answer from the model."""


@dataclass
class ActionContext:
    """What an action gets to work from."""

    #: The role's name and profile/goal, for prompts.
    role_name: str = ""
    role_profile: str = ""
    role_goal: str = ""
    #: The messages that triggered this turn.
    news: list[Message] = field(default_factory=list)
    #: Everything the role remembers (observed and produced).
    memory: Memory = field(default_factory=InMemory)
    #: The run's workspace, when the workflow has one.
    workspace: Path | None = None
    #: Workflow options (fix rounds, sandbox limits...).
    settings: dict[str, Any] = field(default_factory=dict)
    #: The role's tools (None: the role has none).
    tools: Toolbox | None = None

    def latest(self, cause_by: type) -> Message | None:
        """The newest triggering message produced by ``cause_by``."""
        for message in reversed(self.news):
            if message.cause_by is cause_by:
                return message
        return None


def _type_label(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple, set, frozenset):
        return f"list of {_type_label(args[0])}" if args else "list"
    if origin is dict:
        return "object"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_label(a) for a in args if a is not type(None))
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def describe_schema(model: type[BaseModel], indent: str = "") -> str:
    """A compact field list for a prompt: names, types and descriptions, no example values
    (small models copy examples back instead of answering)."""
    lines = []
    for name, info in model.model_fields.items():
        label = _type_label(info.annotation)
        text = f"{indent}- {name} ({label})"
        if info.description:
            text += f": {info.description}"
        lines.append(text)
        inner = info.annotation
        args = typing.get_args(inner)
        nested = next(
            (a for a in (inner, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
        if nested is not None:
            lines.append(describe_schema(nested, indent + "  "))
    return "\n".join(lines)


class Action:
    """Base class for actions. Set ``name`` (defaults to the class name) and, for roles in
    ``react`` mode, a one-line ``description`` the model reads when choosing what to do.

    A *variant* of a step (the incremental run's WritePRD, say) is its own subclass of
    the step's action that sets ``step`` to it::

        class WriteChangeRequest(WritePRD):
            step = WritePRD

    The role that holds the variant publishes its result as the step's (``cause_by``),
    and its model calls are named as the step's (``name``, which replay keys on), so the
    roles downstream and recorded transcripts see no difference.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: The step this action does: what its messages are caused by. An action is its own
    #: step unless it is a variant of one (see above).
    step: ClassVar[type["Action"]]
    #: How many times a structured answer is re-asked after it fails to parse or validate.
    max_retries: ClassVar[int] = 2
    #: Rounds of tool calls :meth:`ask_with_tools` allows before it asks for a final answer.
    max_tool_steps: ClassVar[int] = 8

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "step" not in cls.__dict__:
            cls.step = cls
        elif not (isinstance(cls.step, type) and issubclass(cls, cls.step)):
            raise TypeError(f"{cls.__name__}.step must be a class it subclasses (the step it is a variant of)")
        if not cls.__dict__.get("name"):
            cls.name = cls.__name__ if cls.step is cls else cls.step.name

    def __init__(self) -> None:
        self._llm: LLM | None = None

    @property
    def llm(self) -> LLM:
        if self._llm is None:
            raise ActionError(
                f"action {self.name} has no model: run it from a role that has joined a team "
                "with a model, or call action.bind(llm)"
            )
        return self._llm

    def bind(self, llm: LLM) -> "Action":
        """Give this action a model to call (roles do this when they join a team)."""
        self._llm = llm
        return self

    async def run(self, ctx: ActionContext) -> str | BaseModel | Message:
        raise NotImplementedError(f"{type(self).__name__}.run is not implemented")

    # -- talking to the model -------------------------------------------------------------

    def parallel(self, ctx: ActionContext) -> int:
        """How many of this action's calls may run at once: the run's ``parallel``
        setting (``--parallel``), else what the model serves well (``Model.parallel``)."""
        limit = ctx.settings.get("parallel") or getattr(self.llm.model, "parallel", 1) or 1
        return max(1, int(limit))

    async def ask(
        self,
        prompt: str | list[ChatMessage],
        *,
        system: str | None = None,
        output: OutputFormat | None = None,
        turn: int | None = None,
    ) -> str:
        """The model's text answer to ``prompt`` (held to ``output`` where the backend can).
        ``turn``: one reserved with ``self.llm.reserve_turns`` for calls made together."""
        completion = await self.llm.ask(prompt, system=system, action=self.name, output=output, turn=turn)
        return completion.text

    async def ask_with_tools(
        self,
        prompt: str | list[ChatMessage],
        tools: Toolbox | None,
        *,
        system: str | None = None,
        choice: str = "auto",
        parallel: bool = True,
    ) -> str:
        """The model's final answer to ``prompt`` after the tool calls it asks for.

        Each round the model sees the tools (``choice`` and ``parallel`` as in
        :class:`~mgpt.llm.backends.base.ToolOptions`; after the first round ``required`` and a
        named tool relax to ``auto``, or the model could never answer); the calls it asks
        for run and their results go back. After ``max_tool_steps`` rounds a ``bound``
        event says so and the model is asked once more, without tools, for its answer.
        Tool failures are results the model reads, never exceptions.
        """
        messages = [ChatMessage(role="user", content=prompt)] if isinstance(prompt, str) else list(prompt)
        if system:
            messages.insert(0, ChatMessage(role="system", content=system))
        specs = [t.spec() for t in await tools.tools()] if tools else []
        if not specs:
            return await self.ask(messages)
        for step in range(self.max_tool_steps):
            options = ToolOptions(tools=specs, choice=choice if step == 0 else "auto", parallel=parallel)
            completion = await self.llm.ask(messages, action=self.name, tools=options)
            if not completion.tool_calls:
                return completion.text
            assert tools is not None
            results = await self.llm.run_tools(tools, completion.tool_calls, action=self.name)
            messages.append(ChatMessage(role="assistant", content=completion.text, tool_calls=completion.tool_calls))
            messages += [ChatMessage.tool_result(r) for r in results]
        if self.llm.on_event is not None:
            self.llm.on_event(Event(kind="bound", role=self.llm.role, detail=(
                f"{self.name}: max_tool_steps={self.max_tool_steps} rounds of tool calls used; asking for a final answer"
            )))
        options = ToolOptions(tools=specs, choice="none", parallel=parallel)
        return (await self.llm.ask(messages, action=self.name, tools=options)).text

    async def ask_parsed(
        self,
        prompt: str | list[ChatMessage],
        parse: Callable[[str], R],
        *,
        system: str | None = None,
        wanted: str = "answer",
        again: str = "Reply again with only the corrected answer.",
        output: OutputFormat | None = None,
    ) -> R:
        """Ask, and turn the reply into a value with ``parse``.

        ``output`` is the shape ``parse`` expects (e.g. ``OutputFormat.files()`` for
        :func:`~mgpt.llm.parsing.extract_files`); backends that can enforce it do.
        A reply ``parse`` rejects (with a ``ValueError``: a parse or validation error) is
        sent back with the error and ``again``, up to ``max_retries`` times; then
        :class:`ActionError` names the action and shows the last reply. Each call logs a
        ``parse`` event saying how many attempts it took.
        """
        [value] = await self.ask_parsed_all([prompt], parse, system=system, wanted=wanted, again=again,
                                            outputs=[output], limit=1)
        if isinstance(value, ActionError):
            raise value
        return value

    async def ask_parsed_all(
        self,
        prompts: list[str | list[ChatMessage]],
        parse: Callable[[str], R],
        *,
        system: str | None = None,
        wanted: str = "answer",
        again: str = "Reply again with only the corrected answer.",
        outputs: list[OutputFormat | None] | None = None,
        limit: int = 1,
    ) -> list[R | ActionError]:
        """:meth:`ask_parsed` for several prompts at once, at most ``limit`` calls at a time.

        Each prompt's value comes back in its place, or the :class:`ActionError` of a prompt
        that got no valid answer (its siblings' values are kept). The calls go in attempt
        rounds: the first asks of all prompts together, then the re-asks of those whose reply
        did not parse, and so on; each round's turns are reserved in prompt order, so every
        call's replay key is the same whatever order the calls finish in.
        """
        outputs = outputs or [None] * len(prompts)
        chats = [[ChatMessage(role="user", content=p)] if isinstance(p, str) else list(p) for p in prompts]
        if system:
            for chat in chats:
                chat.insert(0, ChatMessage(role="system", content=system))
        values: dict[int, Any] = {}
        errors: dict[int, tuple[str, str]] = {}
        waiting = list(range(len(chats)))
        for attempt in range(self.max_retries + 1):
            turns = dict(zip(waiting, self.llm.reserve_turns(self.name, len(waiting))))

            async def one(job: Launch[int]) -> str:
                i = job.key
                return (await self.llm.ask(chats[i], action=self.name, output=outputs[i], turn=turns[i])).text

            replies = await run_all(waiting, one, limit=limit)
            for i, reply in replies.items():
                try:
                    values[i] = parse(reply)
                except ValueError as exc:  # ParseError and pydantic's ValidationError included
                    errors[i] = (_short_error(exc), reply)
                else:
                    errors.pop(i, None)
                    self._log_parse(wanted, attempt + 1, ok=True, output=outputs[i])
            waiting = [i for i in waiting if i not in values]
            if not waiting:
                break
            if attempt < self.max_retries:
                for i in waiting:
                    chats[i] += [
                        ChatMessage(role="assistant", content=errors[i][1]),
                        ChatMessage(role="user", content=f"That reply could not be used: {errors[i][0]}\n{again}"),
                    ]
        for i in waiting:
            error, reply = errors[i]
            self._log_parse(wanted, self.max_retries + 1, ok=False, output=outputs[i], error=error)
            shown = reply if len(reply) <= 600 else reply[:600] + "…"
            values[i] = ActionError(
                f"action {self.name} got no valid {wanted} after {self.max_retries + 1} attempts; "
                f"last error: {error}\nlast reply:\n{shown}"
            )
        return [values[i] for i in range(len(chats))]

    async def ask_structured(
        self, prompt: str, schema: type[T], *, system: str | None = None, json_schema: dict[str, Any] | None = None
    ) -> T:
        """Ask for a JSON object matching ``schema``; return it validated (re-asking with
        the validation error as :meth:`ask_parsed` does).

        ``json_schema`` narrows the shape asked for in this call (default: ``schema``'s
        own), e.g. file paths held to this project's package. It must admit only answers
        ``schema`` accepts: the reply is still validated by ``schema``, nothing is skipped.
        """
        instructions = (
            f"{prompt}\n\nReply with one JSON object with these fields:\n"
            f"{describe_schema(schema)}"
        )
        return await self.ask_parsed(
            instructions,
            lambda reply: schema.model_validate(extract_json(reply)),
            system=system,
            wanted=schema.__name__,
            again="Reply again with only the corrected JSON object.",
            output=OutputFormat(kind="json_schema", name=schema.__name__, json_schema=json_schema)
            if json_schema is not None
            else OutputFormat.from_model(schema),
        )

    async def ask_code(
        self,
        prompt: str,
        *,
        language: str = "python",
        system: str | None = None,
        output: OutputFormat | None | Literal["code_block"] = "code_block",
        turn: int | None = None,
    ) -> str:
        """The body of the code block in the model's answer.

        By default the answer is asked for as exactly one fenced block in ``language``
        (``OutputFormat.code_block``); pass another ``output``, or None for no shape.
        """
        if output == "code_block":
            output = OutputFormat.code_block(language)
        reply = await self.ask(prompt, system=system, output=output, turn=turn)
        try:
            return extract_code(reply, language)
        except ParseError as exc:
            raise ActionError(f"action {self.name}: {exc}") from None

    def _log_parse(
        self, wanted: str, attempts: int, *, ok: bool, output: OutputFormat | None, error: str = ""
    ) -> None:
        """A ``parse`` run-log event: the first-try parse rate is read from these."""
        llm = self._llm
        if llm is None or llm.on_event is None:
            return
        data: dict[str, Any] = {
            "wanted": wanted,
            "ok": ok,
            "attempts": attempts,
            "first_try": ok and attempts == 1,
            "output": output.label() if output is not None else None,
            "model": llm.model.name,
        }
        if error:
            data["error"] = error
        llm.on_event(Event(kind="parse", role=llm.role, detail=self.name, data=data))


Action.step = Action


class UseTools(Action):
    """Answer the latest message, using the role's tools as the model sees fit.

    The prompt is the newest message this turn brought (the role's profile and goal are the
    system message); the answer is what the role publishes.
    """

    description = "Answer the latest request, calling tools where they help."

    async def run(self, ctx: ActionContext) -> str:
        request = ctx.news[-1].content if ctx.news else ""
        system = f"You are {ctx.role_name}" + (f", {ctx.role_profile}" if ctx.role_profile else "") + "."
        if ctx.role_goal:
            system += f" Your goal: {ctx.role_goal}"
        return await self.ask_with_tools(request, ctx.tools, system=system)


def _short_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err["loc"]) or "(root)"
            parts.append(f"{where}: {err['msg']}")
        return "; ".join(parts)
    return str(exc)

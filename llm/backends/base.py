"""The one model interface every backend implements.

A backend turns a list of chat messages into a :class:`Completion` (text, token usage,
finish reason), and can stream the same answer as :class:`StreamChunk` pieces. That is the
whole contract; accounting, budgets, recording and retries wrap it from outside.

A request may also say what shape the answer must have (:class:`OutputFormat`: a JSON
schema, one fenced code block, or path-and-block files). A backend that can hold the model
to it does (local models decode under the format's grammar; OpenAI-compatible servers get
``response_format``); one that cannot ignores it, and the caller's parse-and-re-ask still
applies, so passing a format is always safe.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, AsyncIterator, Literal

from pydantic import BaseModel, Field

from mgpt.agents.tools import ToolCall, ToolResult


def _unset(value: Any) -> bool:
    return value is None or value == []


class ChatMessage(BaseModel):
    """One turn of a chat request.

    An ``assistant`` turn may carry the :attr:`tool_calls` its model asked for; a ``tool``
    turn is one call's result (:attr:`tool_call_id`, :attr:`name`). Unset fields are left
    out when written, so transcripts without tools read as before.
    """

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: list[ToolCall] | None = Field(default=None, exclude_if=_unset)
    tool_call_id: str | None = Field(default=None, exclude_if=_unset)
    name: str | None = Field(default=None, exclude_if=_unset)

    @classmethod
    def tool_result(cls, result: ToolResult) -> "ChatMessage":
        """The ``tool`` turn that gives a model one call's result."""
        return cls(role="tool", content=result.content, tool_call_id=result.call_id, name=result.name)


class Usage(BaseModel):
    """Token counts as the backend reported them (or as it counted them)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Of the prompt tokens, those the server read from its prompt cache (OpenAI's
    #: ``usage.prompt_tokens_details.cached_tokens``; a local model's prefix cache), priced
    #: at the cached rate. Left out when written if 0, so older transcripts read the same.
    cached_tokens: int = Field(default=0, exclude_if=lambda v: not v)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


class Completion(BaseModel):
    """A model's whole answer to one request."""

    text: str
    usage: Usage = Field(default_factory=Usage)
    finish_reason: str | None = "stop"
    model: str = ""
    #: The tools the model asked to call (finish reason ``tool_calls``); empty for an answer.
    tool_calls: list[ToolCall] = Field(default_factory=list, exclude_if=_unset)


class CallTiming(BaseModel):
    """How one call's answer arrived: written to the run log and the transcript."""

    #: Seconds from sending the request to the first piece of text (None: no text came).
    ttft: float | None = None
    #: Seconds from sending the request to the whole answer.
    seconds: float = 0.0
    #: Completion tokens per second after the first piece arrived (None when the answer
    #: came in one piece: a backend that does not stream, a replayed call).
    tokens_per_s: float | None = None


class CallClock:
    """Times one streamed call: :meth:`tick` on each piece of text, :meth:`timing` at the end."""

    def __init__(self) -> None:
        import time

        self._now = time.perf_counter
        self.started = self._now()
        self.first: float | None = None
        self.pieces = 0

    def tick(self) -> float:
        """A piece of text arrived; returns the seconds since the request was sent."""
        elapsed = self._now() - self.started
        if self.first is None:
            self.first = elapsed
        self.pieces += 1
        return elapsed

    def timing(self, completion_tokens: int) -> CallTiming:
        seconds = self._now() - self.started
        rate = None
        if self.first is not None and self.pieces > 1 and seconds > self.first:
            rate = round(completion_tokens / (seconds - self.first), 1)
        ttft = round(self.first, 3) if self.first is not None else None
        return CallTiming(ttft=ttft, seconds=round(seconds, 3), tokens_per_s=rate)


class StreamChunk(BaseModel):
    """A piece of a streamed answer; the last chunk carries the whole :class:`Completion`."""

    delta: str = ""
    completion: Completion | None = None


class OutputFormat(BaseModel):
    """The shape an answer must have.

    * ``json_schema``: one JSON value matching :attr:`json_schema` (build it with
      :meth:`from_model`); :attr:`name` names it for servers that want a name.
    * ``code_block``: exactly one fenced block in :attr:`language`, nothing around it.
    * ``files``: one or more files, each a ``## <path>`` line and then a fenced block.

    Small on purpose: these are the shapes mgpt's actions parse. Local models turn a format
    into a grammar (:mod:`mgpt.llm.local.constrained`); servers get ``response_format`` for a
    schema and nothing for the code shapes.
    """

    kind: Literal["json_schema", "code_block", "files"]
    name: str = "answer"
    json_schema: dict[str, Any] | None = None
    language: str = "python"
    #: For ``files``: the paths an answer may name (None: any relative path with an
    #: extension), e.g. a fix held to the project's own files.
    paths: list[str] | None = None

    @classmethod
    def from_model(cls, model: type[BaseModel]) -> "OutputFormat":
        """The JSON schema of a pydantic model, named after it."""
        return cls(kind="json_schema", name=model.__name__, json_schema=model.model_json_schema())

    @classmethod
    def code_block(cls, language: str = "python") -> "OutputFormat":
        return cls(kind="code_block", language=language)

    @classmethod
    def files(cls, language: str = "python", paths: list[str] | None = None) -> "OutputFormat":
        return cls(kind="files", language=language, paths=paths)

    def label(self) -> str:
        """A short name for logs and transcripts, e.g. ``json_schema:PRD``."""
        return f"{self.kind}:{self.name}" if self.kind == "json_schema" else f"{self.kind}:{self.language}"


class ToolOptions(BaseModel):
    """The tools offered to a model for one call, in OpenAI's terms.

    ``tools``: each ``{"name", "description", "parameters"}`` (:meth:`Tool.spec
    <mgpt.agents.tools.Tool.spec>`). ``choice``: ``auto`` (call tools or answer),
    ``required`` (call at least one), ``none`` (answer only), or a tool's name (call that
    one). ``parallel``: whether one turn may ask for several calls.
    """

    tools: list[dict[str, Any]]
    choice: str = "auto"
    parallel: bool = True

    def names(self) -> list[str]:
        return [t["name"] for t in self.tools]

    def offered(self) -> list[dict[str, Any]]:
        """The tools the model may call under :attr:`choice`."""
        if self.choice == "none":
            return []
        if self.choice in ("auto", "required"):
            return list(self.tools)
        return [t for t in self.tools if t["name"] == self.choice]


class CallContext(BaseModel):
    """Who is asking: the stable key that recording and replay use.

    ``turn`` counts this role's calls for this action, from 1, so a transcript lines up
    with a run even when prompt wording changes.
    """

    role: str = ""
    action: str = ""
    turn: int = 1


class Model(ABC):
    """A chat model backend. Subclasses implement :meth:`complete`; streaming defaults to
    one chunk holding the whole answer."""

    #: A human-readable name such as ``openai:gpt-4o-mini``; used for prices and logs.
    name: str = "model"
    #: How many calls this backend serves well at once: the default of a run's
    #: ``--parallel`` (a hosted API many; a local model the rows its batched decoder takes).
    parallel: int = 4

    @abstractmethod
    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
    ) -> Completion:
        """Answer ``messages``. ``context`` says which role, action and turn is asking;
        ``output``, when given, the shape the answer must have (enforce it if you can,
        else ignore it).

        A backend that calls tools natively also takes ``tools: ToolOptions | None`` and
        answers with :attr:`Completion.tool_calls`; for one that does not, :func:`~mgpt.llm.backends.tool_protocol.call_model`
        offers the tools through a prompt-and-parse protocol
        (:mod:`~mgpt.llm.backends.tool_protocol`)."""

    async def stream(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
    ) -> AsyncIterator[StreamChunk]:
        """Stream the answer. The final chunk has ``completion`` set."""
        if output is not None and accepts_output(self):
            completion = await self.complete(messages, context=context, output=output)
        else:
            completion = await self.complete(messages, context=context)
        yield StreamChunk(delta=completion.text)
        yield StreamChunk(completion=completion)

    async def aclose(self) -> None:
        """Release connections; a no-op for most backends."""

    # Tool results are recorded beside the model calls in a transcript, so a replayed or
    # resumed run gets the same results without running a tool again. Wrappers (recording,
    # replay, resume) override these two; every other backend keeps the defaults.

    def replayed_tool_results(self, context: CallContext) -> list[ToolResult] | None:
        """The recorded results of the tool calls asked for by the call ``context``, if any."""
        return None

    def record_tool_results(self, context: CallContext, results: list[ToolResult]) -> None:
        """Keep ``results`` (of the tool calls asked for by the call ``context``)."""


def accepts_output(model: Model) -> bool:
    """Whether ``model.complete`` takes ``output=`` (a Model subclass written before
    :class:`OutputFormat` existed may not; it then gets the plain request)."""
    import inspect

    try:
        params = inspect.signature(model.complete).parameters
    except (TypeError, ValueError):
        return False
    return "output" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def accepts_tools(model: Model) -> bool:
    """Whether ``model.complete`` takes ``tools=`` (calls tools natively)."""
    import inspect

    try:
        params = inspect.signature(model.complete).parameters
    except (TypeError, ValueError):
        return False
    return "tools" in params


"""Recorded transcripts: record any backend's calls to JSONL, replay them later.

Format (one JSON object per line; documented in the README):

    {"type": "header", "version": 1, "idea": "...", "model": "openai:gpt-4o-mini", ...}
    {"type": "call", "role": "Engineer", "action": "WriteCode", "turn": 2,
     "request": [{"role": "system", "content": "..."}, ...],
     "response": {"text": "...", "usage": {...}, "finish_reason": "stop", "model": "..."}}

Replay matches a call on what is stable — role, action and turn — never on the exact
prompt text, so editing a prompt template does not break every transcript. A request that
differs from the recorded one only gives a :class:`TranscriptDriftWarning`; re-record the
prompts with ``mgpt run --replay OLD --record NEW``.

A workspace's own transcript is also what ``mgpt run --resume`` continues from, so every
record is appended durably (one fsync'd line, :mod:`mgpt.agents.durable`) and a last line
torn by a kill is ignored. Two more record types serve resume and review::

    {"type": "review", "step": "prd", "round": 1, "decision": "feedback", "feedback": "..."}
    {"type": "end", "stop_reason": "idle", "tests_passed": true, "report": {...}}

A model call that asked for tools has the offered tools' names in ``"tools"`` and the calls
in its response's ``"tool_calls"``; the results of those calls follow as their own record,
keyed like the call that asked for them, and are what a replay or resume answers with
instead of running the tools again::

    {"type": "tools", "role": "Clerk", "action": "UseTools", "turn": 1,
     "results": [{"call_id": "call_1", "name": "get_weather", "content": "sunny"}]}

:class:`ResumeModel` answers the calls a transcript holds and passes the rest to the real
model.
"""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path
from typing import Any, AsyncIterator

from pydantic import BaseModel, Field, ValidationError

from mgpt.agents.durable import append_line, complete_lines, repair_tail
from mgpt.agents.tools import ToolResult

from mgpt.llm.backends.base import (
    CallClock, CallContext, CallTiming, ChatMessage, Completion, Model, OutputFormat, StreamChunk, ToolOptions,
    accepts_output,
)
from mgpt.llm.backends.tool_protocol import call_model
from mgpt.llm.errors import TranscriptError

TRANSCRIPT_VERSION = 1


class TranscriptDriftWarning(UserWarning):
    """A replayed call's prompt differs from the one recorded (the answer is still used)."""


class TranscriptHeader(BaseModel):
    type: str = "header"
    version: int = TRANSCRIPT_VERSION
    idea: str = ""
    model: str = ""
    meta: dict[str, Any] = Field(default_factory=dict)


class CallRecord(BaseModel):
    type: str = "call"
    role: str
    action: str
    turn: int
    request: list[ChatMessage]
    response: Completion
    #: The shape the call asked for (``OutputFormat.label()``), written only when it asked
    #: for one, so version-1 readers and older transcripts are unaffected.
    output: str | None = None
    #: The names of the tools offered to the call, written only when some were.
    tools: list[str] | None = None
    #: How the answer arrived when it was recorded (time to first token, tokens/s):
    #: metadata, never used to answer; written only for an answer that was streamed.
    timing: CallTiming | None = None


class ToolsRecord(BaseModel):
    """The results of the tool calls that the call (role, action, turn) asked for."""

    type: str = "tools"
    role: str
    action: str
    turn: int
    results: list[ToolResult]


class ReviewRecord(BaseModel):
    """A human review decision: repeated, without asking, when the run is resumed or replayed.

    ``document`` holds the edited document (JSON data, or text for code) for ``edit``.
    """

    type: str = "review"
    step: str
    round: int
    decision: str
    feedback: str = ""
    document: Any = None


class EndRecord(BaseModel):
    """Written last, when a run finishes: a resumed finished run reports this outcome."""

    type: str = "end"
    stop_reason: str
    detail: str = ""
    rounds: int = 0
    tests_passed: bool = False
    report: dict[str, Any] | None = None


class Transcript(BaseModel):
    """A parsed transcript file."""

    header: TranscriptHeader = Field(default_factory=TranscriptHeader)
    calls: list[CallRecord] = Field(default_factory=list)
    reviews: list[ReviewRecord] = Field(default_factory=list)
    tool_results: list[ToolsRecord] = Field(default_factory=list)
    end: EndRecord | None = None
    #: Bytes after the last newline: a record torn by a kill, ignored.
    torn_bytes: int = 0

    @classmethod
    def load(cls, path: str | Path, *, resuming: bool = False) -> "Transcript":
        """Parse ``path``. A last line without its newline is a record torn by a kill and
        is ignored when ``resuming``; otherwise (a file written by hand) it is read if it
        parses."""
        path = Path(path)
        if not path.is_file():
            what = "is not a file" if path.exists() else "does not exist"
            raise TranscriptError(f"transcript {path} {what}")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise TranscriptError(f"cannot read transcript {path}: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            lineno = raw.count(b"\n", 0, exc.start) + 1
            raise TranscriptError(
                f"{path}:{lineno}: not a transcript: byte {exc.start} ({raw[exc.start]:#04x}) is not "
                "UTF-8 text; a transcript is JSON Lines written by mgpt run --record"
            ) from None
        transcript = cls()
        lines, torn = complete_lines(text)
        if torn.strip() and not resuming:  # a file written by hand: read it (or say why not)
            lines, torn = [*lines, torn], ""
        transcript.torn_bytes = len(torn.encode("utf-8"))
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                kind = data.get("type")
                if kind == "header":
                    transcript.header = TranscriptHeader.model_validate(data)
                elif kind == "review":
                    transcript.reviews.append(ReviewRecord.model_validate(data))
                elif kind == "end":
                    transcript.end = EndRecord.model_validate(data)
                elif kind == "tools":
                    transcript.tool_results.append(ToolsRecord.model_validate(data))
                else:
                    transcript.calls.append(CallRecord.model_validate(data))
            except (ValueError, ValidationError, AttributeError, TypeError) as exc:
                detail = " ".join(str(exc).split())
                detail = detail if len(detail) <= 200 else detail[:200] + "..."
                raise TranscriptError(f"{path}:{lineno}: not a transcript record ({detail})") from None
        if transcript.header.version > TRANSCRIPT_VERSION:
            raise TranscriptError(
                f"{path} is transcript version {transcript.header.version}; this mgpt reads "
                f"up to {TRANSCRIPT_VERSION}: upgrade mgpt"
            )
        return transcript


class ReplayModel(Model):
    """Answers each call with the recorded response for the same (role, action, turn)."""

    def __init__(self, path: str | Path, *, strict_prompts: bool = False):
        self.path = Path(path)
        self.transcript = Transcript.load(self.path)
        self.name = f"replay:{self.path.name}"
        #: Priced as the recorded model, so a replay costs what the recorded run did.
        self.priced_as = self.transcript.header.model
        #: The longest recorded answer: no replayed call returns more (the budget's worst case).
        self.max_tokens = max((c.response.usage.completion_tokens for c in self.transcript.calls), default=0) or None
        self.strict_prompts = strict_prompts
        self._records = {(c.role, c.action, c.turn): c for c in self.transcript.calls}
        self._tool_results = _tool_results(self.transcript.tool_results)
        self.used: set[tuple[str, str, int]] = set()
        self.drifted: list[tuple[str, str, int]] = []

    def replayed_tool_results(self, context: CallContext) -> list[ToolResult] | None:
        return _copy(self._tool_results.get((context.role, context.action, context.turn)))

    @property
    def unused(self) -> list[tuple[str, str, int]]:
        """Recorded calls the run never asked for (a sign the run went another way)."""
        return [k for k in self._records if k not in self.used]

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
        tools: ToolOptions | None = None,
    ) -> Completion:
        context = context or CallContext()
        key = (context.role, context.action, context.turn)
        record = self._records.get(key)
        if record is None:
            turns = sorted(t for (r, a, t) in self._records if (r, a) == key[:2])
            held = f"it holds turns {turns} for that" if turns else "it has no calls for that role and action"
            raise TranscriptError(
                f"transcript {self.path} has no answer for role {context.role!r}, action "
                f"{context.action!r}, turn {context.turn}: {held}. The run asked for more than "
                "was recorded; record a new transcript with --record"
            )
        self.used.add(key)
        if [m.model_dump() for m in messages] != [m.model_dump() for m in record.request]:
            self.drifted.append(key)
            note = (
                f"prompt for role {context.role!r}, action {context.action!r}, turn {context.turn} "
                f"differs from the one recorded in {self.path.name}; using the recorded answer "
                "(re-record with: mgpt run --replay OLD --record NEW)"
            )
            if self.strict_prompts:
                raise TranscriptError(note)
            warnings.warn(note, TranscriptDriftWarning, stacklevel=2)
        return record.response.model_copy()


class RecordingModel(Model):
    """Wraps any backend and appends each call, with its answer, to a transcript file.

    A new recording starts a new file (mixing two runs' turns would make it unreplayable);
    ``append=True`` continues a resumed run's file after its last whole record.
    """

    def __init__(
        self,
        inner: Model,
        path: str | Path,
        *,
        header: TranscriptHeader | None = None,
        append: bool = False,
    ):
        self.inner = inner
        self.path = Path(path)
        self.name = inner.name
        self.priced_as = getattr(inner, "priced_as", "") or inner.name
        self.parallel = inner.parallel
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if append and self.path.is_file():
            repair_tail(self.path)
            self._file = self.path.open("ab")
        else:
            self._file = self.path.open("wb")
            self.append_record(header or TranscriptHeader(model=inner.name))

    def append_record(self, record: BaseModel) -> None:
        """Append one record (a call, a review decision, the end) durably."""
        with self._lock:
            append_line(self._file, record.model_dump_json())

    @property
    def max_tokens(self) -> int | None:
        """The wrapped model's cap on completion tokens per call."""
        from mgpt.llm.backends.cost import call_cap

        return call_cap(self.inner)

    def _append(
        self,
        messages: list[ChatMessage],
        context: CallContext,
        completion: Completion,
        output: OutputFormat | None = None,
        tools: ToolOptions | None = None,
        timing: CallTiming | None = None,
    ) -> None:
        record = CallRecord(
            role=context.role, action=context.action, turn=context.turn,
            request=list(messages), response=completion,
            output=output.label() if output is not None else None,
            tools=tools.names() if tools is not None else None, timing=timing,
        )
        unset = {k for k in ("output", "tools", "timing") if getattr(record, k) is None}
        with self._lock:
            append_line(self._file, record.model_dump_json(exclude=unset or None))

    def record_tool_results(self, context: CallContext, results: list[ToolResult]) -> None:
        self.append_record(ToolsRecord(role=context.role, action=context.action, turn=context.turn, results=results))
        self.inner.record_tool_results(context, results)

    def replayed_tool_results(self, context: CallContext) -> list[ToolResult] | None:
        return self.inner.replayed_tool_results(context)

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
        tools: ToolOptions | None = None,
    ) -> Completion:
        context = context or CallContext()
        completion = await call_model(self.inner, messages, context=context, output=output, tools=tools)
        self._append(messages, context, completion, output, tools)
        return completion

    async def stream(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
    ) -> AsyncIterator[StreamChunk]:
        context = context or CallContext()
        kwargs = {"output": output} if output is not None and accepts_output(self.inner) else {}
        clock = CallClock()
        async for chunk in self.inner.stream(messages, context=context, **kwargs):
            if chunk.delta:
                clock.tick()
            if chunk.completion is not None:
                # Only a streamed answer says when its first token came: an answer in one
                # piece (a scripted model, a replay) records no timing, so its transcript
                # is the same bytes each time.
                timing = clock.timing(chunk.completion.usage.completion_tokens) if clock.pieces > 1 else None
                self._append(messages, context, chunk.completion, output, timing=timing)
            yield chunk

    def close(self) -> None:
        """Close the transcript file (the inner model stays open)."""
        with self._lock:
            if not self._file.closed:
                self._file.close()

    async def aclose(self) -> None:
        self.close()
        await self.inner.aclose()


class ResumeModel(Model):
    """Answers the calls an interrupted run already made from its transcript; passes every
    other call to ``inner`` (the real model, usually wrapped in a :class:`RecordingModel`).

    Calls are matched by (role, action, turn), as in :class:`ReplayModel`, so the order in
    which concurrent roles reach the model does not matter. ``replayed`` and ``made`` count
    the two kinds of answers.
    """

    def __init__(
        self,
        inner: Model,
        calls: list[CallRecord],
        *,
        source: str | Path = "transcript",
        tool_results: list[ToolsRecord] | None = None,
    ):
        self.inner = inner
        self.name = inner.name
        self.priced_as = getattr(inner, "priced_as", "") or inner.name
        self.source = Path(source)
        self.parallel = inner.parallel
        self._records = {(c.role, c.action, c.turn): c for c in calls}
        self._tool_results = _tool_results(tool_results or [])
        self.replayed: list[tuple[str, str, int]] = []
        self.made: list[tuple[str, str, int]] = []
        self.drifted: list[tuple[str, str, int]] = []

    @property
    def max_tokens(self) -> int | None:
        """The real model's cap on completion tokens per call (budgets plan with it)."""
        return getattr(self.inner, "max_tokens", None)

    def _recorded(self, messages: list[ChatMessage], context: CallContext) -> Completion | None:
        key = (context.role, context.action, context.turn)
        record = self._records.get(key)
        if record is None:
            return None
        self.replayed.append(key)
        if [m.model_dump() for m in messages] != [m.model_dump() for m in record.request]:
            self.drifted.append(key)
            warnings.warn(
                f"resumed call for role {context.role!r}, action {context.action!r}, turn "
                f"{context.turn}: the prompt differs from the one in {self.source.name}; using "
                "the answer recorded there",
                TranscriptDriftWarning,
                stacklevel=3,
            )
        return record.response.model_copy()

    def replayed_tool_results(self, context: CallContext) -> list[ToolResult] | None:
        found = self._tool_results.get((context.role, context.action, context.turn))
        return _copy(found) if found is not None else self.inner.replayed_tool_results(context)

    def record_tool_results(self, context: CallContext, results: list[ToolResult]) -> None:
        self.inner.record_tool_results(context, results)

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
        tools: ToolOptions | None = None,
    ) -> Completion:
        context = context or CallContext()
        recorded = self._recorded(messages, context)
        if recorded is not None:
            return recorded
        self.made.append((context.role, context.action, context.turn))
        return await call_model(self.inner, messages, context=context, output=output, tools=tools)

    async def stream(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
    ) -> AsyncIterator[StreamChunk]:
        context = context or CallContext()
        recorded = self._recorded(messages, context)
        if recorded is not None:
            yield StreamChunk(delta=recorded.text)
            yield StreamChunk(completion=recorded)
            return
        self.made.append((context.role, context.action, context.turn))
        kwargs = {"output": output} if output is not None and accepts_output(self.inner) else {}
        async for chunk in self.inner.stream(messages, context=context, **kwargs):
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()



def _tool_results(records: list[ToolsRecord]) -> dict[tuple[str, str, int], list[ToolResult]]:
    return {(r.role, r.action, r.turn): r.results for r in records}


def _copy(results: list[ToolResult] | None) -> list[ToolResult] | None:
    return None if results is None else [r.model_copy() for r in results]

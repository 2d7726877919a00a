"""Models for tests: users test their own roles with these, the way mgpt tests its own.

* :class:`TestModel` answers from a script: a list of replies in order, or replies per
  ``(role, action)``. A reply is text, a whole :class:`Completion`, or a list of
  :class:`~mgpt.agents.tools.ToolCall` (the model asks for those calls)::

      TestModel([[ToolCall.of("get_weather", {"city": "Paris"})], "It is sunny in Paris."])

* :class:`FunctionModel` calls your function with the request and its context.

Neither touches the network. Token usage is counted as whitespace-separated words, which
is enough to exercise budgets and accounting.
"""

from __future__ import annotations

import inspect
from collections import defaultdict, deque
from typing import Awaitable, Callable, Iterable, Union

from mgpt.agents.tools import ToolCall
from mgpt.llm.backends.base import CallContext, ChatMessage, Completion, Model, OutputFormat, ToolOptions, Usage
from mgpt.llm.errors import TranscriptError

#: One scripted answer: text, a whole completion, or the tool calls to ask for.
Reply = Union[str, Completion, list[ToolCall]]


def count_tokens(text: str) -> int:
    """A crude, deterministic token count for models that report none."""
    return len(text.split())


def _usage(messages: list[ChatMessage], text: str) -> Usage:
    return Usage(
        prompt_tokens=sum(count_tokens(m.content) for m in messages),
        completion_tokens=count_tokens(text),
    )


def _completion(reply: Reply, messages: list[ChatMessage], name: str) -> Completion:
    if isinstance(reply, Completion):
        return reply
    if isinstance(reply, list):
        calls = [c.model_copy() for c in reply]
        words = " ".join(f"{c.name} {c.arguments}" for c in calls)
        return Completion(text="", usage=_usage(messages, words), finish_reason="tool_calls", model=name, tool_calls=calls)
    return Completion(text=str(reply), usage=_usage(messages, str(reply)), model=name)


class TestModel(Model):
    """A scripted model.

    ``TestModel(["first answer", "second answer"])`` answers calls in order;
    ``TestModel({("Writer", "WriteDraft"): ["draft 1", "draft 2"]})`` answers by who asks
    (role name, action name) and by turn: the n-th reply answers that role's n-th call of
    the action, so calls an action makes together get their own replies whatever order
    they arrive in. Running out of answers is an error that says who asked.
    Every request is kept in ``requests`` for assertions, and the shape it asked for
    (an :class:`OutputFormat`, or None) in ``outputs``, and the tools offered (a
    :class:`ToolOptions`, or None) in ``tools``, in the same order. The scripted answers
    are returned as written: a TestModel does not enforce a shape, nor check that a
    scripted call names a tool it was offered (so tests can script a bad call).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        replies: Iterable[Reply] | dict[tuple[str, str], Iterable[Reply]] | None = None,
        *,
        name: str = "test",
    ):
        self.name = name
        self.requests: list[tuple[CallContext, list[ChatMessage]]] = []
        self.outputs: list[OutputFormat | None] = []
        self.tools: list[ToolOptions | None] = []
        self._ordered: deque[Reply] = deque()
        self._keyed: dict[tuple[str, str], list[Reply]] = defaultdict(list)
        if isinstance(replies, dict):
            for key, answers in replies.items():
                self._keyed[key].extend(answers)
        elif replies is not None:
            self._ordered.extend(replies)

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
        tools: ToolOptions | None = None,
    ) -> Completion:
        context = context or CallContext()
        self.requests.append((context, list(messages)))
        self.outputs.append(output)
        self.tools.append(tools)
        key = (context.role, context.action)
        if self._keyed.get(key) and context.turn <= len(self._keyed[key]):
            text = self._keyed[key][context.turn - 1]
        elif self._ordered:
            text = self._ordered.popleft()
        else:
            raise TranscriptError(
                f"TestModel has no scripted answer left for role {context.role!r}, "
                f"action {context.action!r} (turn {context.turn})"
            )
        return _completion(text, messages, self.name)


Handler = Callable[[list[ChatMessage], CallContext], Union[Reply, Awaitable[Reply]]]


class FunctionModel(Model):
    """A model whose answers come from ``fn(messages, context)`` (sync or async), which
    returns a reply as :class:`TestModel` takes them (text, a :class:`Completion`, or a
    list of tool calls). A function that also takes an ``output`` keyword gets the
    requested :class:`OutputFormat` (or None) there, and one that takes ``tools`` the
    :class:`ToolOptions` offered (or None)."""

    def __init__(self, fn: Handler, *, name: str = "function"):
        self.fn = fn
        self.name = name
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        self._wants = {k for k in ("output", "tools") if k in params}

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
        tools: ToolOptions | None = None,
    ) -> Completion:
        extra = {k: v for k, v in (("output", output), ("tools", tools)) if k in self._wants}
        result = self.fn(list(messages), context or CallContext(), **extra)
        if inspect.isawaitable(result):
            result = await result
        return _completion(result, messages, self.name)

"""Models for tests: users test their own roles with these, the way mgpt tests its own.

* :class:`TestModel` answers from a script: a list of replies in order, or replies per
  ``(role, action)``.
* :class:`FunctionModel` calls your function with the request and its context.

Neither touches the network. Token usage is counted as whitespace-separated words, which
is enough to exercise budgets and accounting.
"""

from __future__ import annotations

import inspect
from collections import defaultdict, deque
from typing import Awaitable, Callable, Iterable, Union

from mgpt.llm.backends.base import CallContext, ChatMessage, Completion, Model, OutputFormat, Usage
from mgpt.llm.errors import TranscriptError


def count_tokens(text: str) -> int:
    """A crude, deterministic token count for models that report none."""
    return len(text.split())


def _usage(messages: list[ChatMessage], text: str) -> Usage:
    return Usage(
        prompt_tokens=sum(count_tokens(m.content) for m in messages),
        completion_tokens=count_tokens(text),
    )


class TestModel(Model):
    """A scripted model.

    ``TestModel(["first answer", "second answer"])`` answers calls in order;
    ``TestModel({("Writer", "WriteDraft"): ["draft 1", "draft 2"]})`` answers by who asks
    (role name, action name) and by turn: the n-th reply answers that role's n-th call of
    the action, so calls an action makes together get their own replies whatever order
    they arrive in. Running out of answers is an error that says who asked.
    Every request is kept in ``requests`` for assertions, and the shape it asked for
    (an :class:`OutputFormat`, or None) in ``outputs``, in the same order. The scripted
    answers are returned as written: a TestModel does not enforce a shape.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        replies: Iterable[str] | dict[tuple[str, str], Iterable[str]] | None = None,
        *,
        name: str = "test",
    ):
        self.name = name
        self.requests: list[tuple[CallContext, list[ChatMessage]]] = []
        self.outputs: list[OutputFormat | None] = []
        self._ordered: deque[str] = deque()
        self._keyed: dict[tuple[str, str], list[str]] = defaultdict(list)
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
    ) -> Completion:
        context = context or CallContext()
        self.requests.append((context, list(messages)))
        self.outputs.append(output)
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
        return Completion(text=text, usage=_usage(messages, text), model=self.name)


Handler = Callable[[list[ChatMessage], CallContext], Union[str, Completion, Awaitable[Union[str, Completion]]]]


class FunctionModel(Model):
    """A model whose answers come from ``fn(messages, context)`` (sync or async), which
    returns text or a whole :class:`Completion`. A function that also takes an ``output``
    keyword gets the requested :class:`OutputFormat` (or None) there."""

    def __init__(self, fn: Handler, *, name: str = "function"):
        self.fn = fn
        self.name = name
        try:
            self._wants_output = "output" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            self._wants_output = False

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
    ) -> Completion:
        if self._wants_output:
            result = self.fn(list(messages), context or CallContext(), output=output)
        else:
            result = self.fn(list(messages), context or CallContext())
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Completion):
            return result
        return Completion(text=str(result), usage=_usage(messages, str(result)), model=self.name)

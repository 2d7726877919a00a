"""The one model interface every backend implements.

A backend turns a list of chat messages into a :class:`Completion` (text, token usage,
finish reason), and can stream the same answer as :class:`StreamChunk` pieces. That is the
whole contract; accounting, budgets, recording and retries wrap it from outside.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import AsyncIterator, Literal

from pydantic import BaseModel, Field


class ChatMessage(BaseModel):
    """One turn of a chat request."""

    role: Literal["system", "user", "assistant"]
    content: str


class Usage(BaseModel):
    """Token counts as the backend reported them (or as it counted them)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class Completion(BaseModel):
    """A model's whole answer to one request."""

    text: str
    usage: Usage = Field(default_factory=Usage)
    finish_reason: str | None = "stop"
    model: str = ""


class StreamChunk(BaseModel):
    """A piece of a streamed answer; the last chunk carries the whole :class:`Completion`."""

    delta: str = ""
    completion: Completion | None = None


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

    @abstractmethod
    async def complete(
        self, messages: list[ChatMessage], *, context: CallContext | None = None
    ) -> Completion:
        """Answer ``messages``. ``context`` says which role, action and turn is asking."""

    async def stream(
        self, messages: list[ChatMessage], *, context: CallContext | None = None
    ) -> AsyncIterator[StreamChunk]:
        """Stream the answer. The final chunk has ``completion`` set."""
        completion = await self.complete(messages, context=context)
        yield StreamChunk(delta=completion.text)
        yield StreamChunk(completion=completion)

    async def aclose(self) -> None:
        """Release connections; a no-op for most backends."""

"""Role memory behind four async methods."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol, runtime_checkable

from mgpt.agents.message import Message


@runtime_checkable
class Memory(Protocol):
    """A role's memory. Implementations keep messages in the order they were added."""

    async def add(self, message: Message) -> None:
        """Remember ``message`` (a message already remembered, by id, is ignored)."""

    async def get(self, limit: int | None = None) -> list[Message]:
        """All messages, oldest first; the last ``limit`` when given."""

    async def find(self, *, cause_by: type | None = None, sent_from: str | None = None) -> list[Message]:
        """Messages produced by an action type and/or sent by a role, oldest first."""

    async def clear(self) -> None:
        """Forget everything."""


class InMemory:
    """The default memory: a list in this process."""

    def __init__(self) -> None:
        self._messages: list[Message] = []
        self._ids: set[str] = set()

    async def add(self, message: Message) -> None:
        if message.id in self._ids:
            return
        self._ids.add(message.id)
        self._messages.append(message)

    async def get(self, limit: int | None = None) -> list[Message]:
        if limit is None:
            return list(self._messages)
        return self._messages[-limit:] if limit > 0 else []

    async def find(self, *, cause_by: type | None = None, sent_from: str | None = None) -> list[Message]:
        return [
            m
            for m in self._messages
            if (cause_by is None or m.cause_by is cause_by)
            and (sent_from is None or m.sent_from == sent_from)
        ]

    async def clear(self) -> None:
        self._messages.clear()
        self._ids.clear()


class JsonlMemory(InMemory):
    """Memory kept in a JSONL file as well, and loaded back from it when it exists.

    Payload and ``cause_by`` types must be imported before loading (see
    :mod:`mgpt.agents.typeref`).
    """

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    message = Message.model_validate(json.loads(line))
                    self._ids.add(message.id)
                    self._messages.append(message)

    async def add(self, message: Message) -> None:
        if message.id in self._ids:
            return
        await super().add(message)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(message.model_dump_json() + "\n")

    async def clear(self) -> None:
        await super().clear()
        self.path.unlink(missing_ok=True)

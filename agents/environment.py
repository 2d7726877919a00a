"""The shared bus roles publish to and hear from.

Publishing a message delivers it to every role that watches its ``cause_by`` or is named
in its ``send_to``, appends it to the durable run log, and tells any listeners (the CLI's
live view, tests). Roles never call each other: everything goes through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from mgpt.agents.message import Message
from mgpt.agents.runlog import Event, RunLog


@runtime_checkable
class Member(Protocol):
    """What the bus needs of a role: a name, what it watches, and an inbox."""

    name: str

    def watches(self, message: Message) -> bool: ...

    def deliver(self, message: Message) -> None: ...


Listener = Callable[[Event], None]


class Environment:
    """A publish/subscribe bus with a durable log.

    ``log`` is a :class:`RunLog` or a path for one; without it events are only kept in
    memory (``history``).
    """

    def __init__(self, log: RunLog | str | Path | None = None):
        self.log = RunLog(log) if isinstance(log, (str, Path)) else log
        self.members: dict[str, Member] = {}
        self.history: list[Message] = []
        self._listeners: list[Listener] = []

    def add(self, member: Member) -> None:
        if member.name in self.members:
            raise ValueError(f"a role named {member.name!r} is already on this bus")
        self.members[member.name] = member

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` with every :class:`Event` (messages included)."""
        self._listeners.append(listener)

    def emit(self, event: Event) -> None:
        """Record an event that is not a message: an action starting, a model call..."""
        if self.log is not None:
            self.log.write(event)
        for listener in self._listeners:
            listener(event)

    def notify(self, event: Event) -> None:
        """Tell the listeners of a passing event (an answer streaming in) without logging
        it: it says nothing a later reader needs, and there can be many a second."""
        for listener in self._listeners:
            listener(event)

    def publish(self, message: Message) -> list[str]:
        """Deliver ``message``; returns the names of the roles that received it."""
        self.history.append(message)
        receivers = [
            m.name
            for m in self.members.values()
            if m.name != message.sent_from and (message.is_for(m.name) or m.watches(message))
        ]
        for name in receivers:
            self.members[name].deliver(message)
        self.emit(
            Event(
                kind="message",
                role=message.sent_from,
                detail=message.brief(),
                data={"message": message.model_dump(mode="json"), "to": receivers},
            )
        )
        return receivers

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

"""Typed messages: what roles publish on the environment bus.

Routing fields are real types and names, not strings guessed at run time:

* ``cause_by`` is the :class:`~mgpt.actions.Action` subclass that produced the message;
  roles that *watch* that action receive it.
* ``send_to`` names roles that must receive it whatever they watch.
* ``payload`` is an optional pydantic model (a PRD, a design...) kept with its type, so
  ``Message.model_validate_json(m.model_dump_json()) == m``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field, field_serializer, field_validator

from mgpt.agents.typeref import resolve_type, type_name

#: ``send_to`` value that delivers a message to every role on the bus.
EVERYONE = "<all>"


class UserRequirement:
    """The ``cause_by`` of the idea a user puts on the bus to start a run."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Message(BaseModel):
    """One message on the bus."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    content: str = ""
    payload: BaseModel | None = None
    sent_from: str = ""
    send_to: frozenset[str] = frozenset()
    cause_by: type = UserRequirement
    created_at: datetime = Field(default_factory=_now)

    model_config = {"frozen": True, "arbitrary_types_allowed": True}

    @field_validator("send_to", mode="before")
    @classmethod
    def _send_to_set(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset({value})
        return value

    @field_validator("cause_by", mode="before")
    @classmethod
    def _cause_by_type(cls, value: Any) -> Any:
        if isinstance(value, str):
            return resolve_type(value)
        return value

    @field_validator("payload", mode="before")
    @classmethod
    def _payload_typed(cls, value: Any) -> Any:
        # On the wire a payload is {"type": "module:Name", "data": {...}}.
        if isinstance(value, dict) and set(value) == {"type", "data"}:
            model = resolve_type(value["type"])
            return model.model_validate(value["data"])
        if value is not None and not isinstance(value, BaseModel):
            raise TypeError("payload must be a pydantic model instance")
        return value

    @field_serializer("cause_by")
    def _ser_cause_by(self, value: type) -> str:
        return type_name(value)

    @field_serializer("payload")
    def _ser_payload(self, value: BaseModel | None) -> dict | None:
        if value is None:
            return None
        return {"type": type_name(type(value)), "data": value.model_dump(mode="json")}

    @field_serializer("send_to")
    def _ser_send_to(self, value: frozenset[str]) -> list[str]:
        return sorted(value)

    def is_for(self, role_name: str) -> bool:
        """True when ``send_to`` names ``role_name`` (or everyone)."""
        return role_name in self.send_to or EVERYONE in self.send_to

    def brief(self, limit: int = 80) -> str:
        """A one-line summary for logs and live views."""
        text = " ".join(self.content.split())
        return text if len(text) <= limit else text[: limit - 1] + "…"

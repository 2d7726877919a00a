"""The durable run log: every event of a run, one JSON object per line.

It lives at ``<workspace>/.mgpt/run.jsonl`` so a run can be read afterwards (``jq``, or
:func:`read_log`). Lines are flushed as they are written: a crash loses nothing logged.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, Field


class Event(BaseModel):
    """Something that happened in a run: a message, an action starting, a model call..."""

    kind: str
    role: str = ""
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))


class RunLog:
    """Append-only JSONL file of :class:`Event` records."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, event: Event) -> None:
        line = event.model_dump_json()
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()


def read_log(path: str | Path) -> Iterator[Event]:
    """The events of a run log, in order."""
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield Event.model_validate(json.loads(line))

"""The durable run log: every event of a run, one JSON object per line.

It lives at ``<workspace>/.mgpt/run.jsonl`` so a run can be read afterwards (``jq``, or
:func:`read_log`). Each line is fsync'd as it is written (:mod:`.durable`): a crash loses
nothing logged, and a line torn by a kill is cut off before a resumed run appends.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, Field

from mgpt.agents.durable import append_line, complete_lines, repair_tail


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
        repair_tail(self.path)  # a resumed run appends after the last whole line
        self._file = self.path.open("ab")

    def write(self, event: Event) -> None:
        line = event.model_dump_json()
        with self._lock:
            append_line(self._file, line)

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()


def read_log(path: str | Path) -> Iterator[Event]:
    """The events of a run log, in order (a last line torn by a kill is left out)."""
    lines, _torn = complete_lines(Path(path).read_text(encoding="utf-8"))
    for line in lines:
        if line.strip():
            yield Event.model_validate(json.loads(line))

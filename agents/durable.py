"""Durable JSONL appends: the records a run can be resumed from.

A record counts only once its whole line, newline included, is on disk: :func:`append_line`
writes the line in one call, flushes and ``fsync``\\ s it; :func:`repair_tail` cuts off
whatever follows the last newline (a line torn by a kill or a power cut) before a resumed
run appends again, so a torn record is never mistaken for a finished one.

Test hook: ``MGPT_CRASH_AT_WRITE=N`` makes the process SIGKILL itself at its Nth durable
write (counted over every file), before writing it; with ``MGPT_CRASH_TORN_BYTES=K`` it
first writes the line's first K bytes, so the file ends torn. The resume tests use it to
kill a run at exact points; it costs one environment lookup per process.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import BinaryIO

_count_lock = threading.Lock()
_writes = 0
_crash_at: int | None = None
_crash_read = False


def _crash_point() -> int | None:
    global _crash_read, _crash_at
    if not _crash_read:
        _crash_read = True
        raw = os.environ.get("MGPT_CRASH_AT_WRITE", "")
        _crash_at = int(raw) if raw.strip().isdigit() else None
    return _crash_at


def append_line(f: BinaryIO, line: str) -> None:
    """Append ``line`` and a newline to ``f`` (opened ``"ab"``), then flush and fsync."""
    global _writes
    data = (line + "\n").encode("utf-8")
    crash = _crash_point()
    if crash is not None:
        with _count_lock:
            _writes += 1
            now = _writes
        if now == crash:
            torn = os.environ.get("MGPT_CRASH_TORN_BYTES", "")
            if torn.strip().isdigit():
                f.write(data[: min(int(torn), len(data) - 1)])
                f.flush()
                os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
    f.write(data)
    f.flush()
    os.fsync(f.fileno())


def repair_tail(path: str | Path) -> int:
    """Cut ``path`` back to its last newline; returns how many torn bytes were dropped."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with path.open("rb+") as f:
        # Read backwards in blocks until a newline is found (records are a few KB).
        end = size
        keep = 0
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            block = f.read(end - start)
            idx = block.rfind(b"\n")
            if idx >= 0:
                keep = start + idx + 1
                break
            end = start
        if keep == size:
            return 0
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return size - keep


def complete_lines(text: str) -> tuple[list[str], str]:
    """Split file text into its complete lines and the torn tail after the last newline."""
    head, sep, tail = text.rpartition("\n")
    if not sep:
        return [], text
    return head.split("\n"), tail

"""What runs on a worker: one attempt at one task, in the task's own folder.

A worker on the driver's machine works in the task's folder under the batch folder. A
worker elsewhere (a Ray node) works in a scratch folder: it gets the task's journal from
the driver first, sends the journal's new lines with every charge (:mod:`.hub`), and at the
end packs the folder (the project, its records, its git history; no venvs or caches) and
sends it back, where the driver unpacks it in place of the task's folder.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mgpt.agents.errors import BudgetExceeded
from mgpt.agents.runner.hub import AttemptSuperseded, HubLink, JournalMirror, PoolBudget
from mgpt.agents.runner.tasks import BatchError, Task, TaskContext, resolve_fn

#: Folders a task's folder is sent back without: rebuilt on demand, and large.
SKIP_DIRS = frozenset({"__pycache__", ".pytest_cache", ".venv", "venv", "node_modules", ".mypy_cache"})
#: The most a task's packed folder may weigh (compressed) on its way back to the driver.
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class AttemptSpec:
    """Everything a worker needs for one attempt (picklable: it crosses to the worker)."""

    task: Task
    attempt: int
    hub: tuple[str, int]
    authkey: bytes
    max_cost: float | None = None
    max_tokens: int | None = None
    #: the task's folder, when the worker shares the driver's disk; else a scratch folder
    #: is used and packed back
    workdir: str | None = None
    #: the driver's copy of the task's journal (a worker that does not share its disk)
    journal: bytes | None = None
    #: the batch's name (scratch folders are kept apart by it)
    batch: str = ""
    #: the driver's environment and folder (local workers, started by a fork server that
    #: may be older than the batch)
    env: dict[str, str] | None = field(default=None, repr=False)
    cwd: str | None = None


def run_attempt(spec: AttemptSpec, worker: str | None = None) -> dict[str, Any]:
    """Run ``spec``'s attempt and return its outcome: ``status``, ``result``, ``error``,
    ``seconds``, ``spend``, ``worker`` (and ``archive``, the packed folder, when the
    worker does not share the driver's disk)."""
    started = time.perf_counter()
    task = spec.task
    worker = worker or f"pid {os.getpid()}"
    link = HubLink(spec.hub, spec.authkey)
    try:
        link.call("started", task.id, spec.attempt, worker)
        workdir, shared = prepare_workdir(spec)
        journal = workdir / task.journal if task.journal else None
        resume = journal is not None and journal.is_file() and journal.stat().st_size > 0
        mirror = JournalMirror(journal) if journal is not None and not shared else None
        budget = PoolBudget(link, task.id, spec.attempt, max_cost=spec.max_cost, max_tokens=spec.max_tokens,
                            mirror=mirror)
        ctx = TaskContext(id=task.id, args=dict(task.args), workdir=workdir, attempt=spec.attempt,
                          resume=resume, budget=budget, journal=journal)
        outcome = call_task(task, ctx)
        if outcome["status"] != "superseded":
            budget.flush()
        outcome.update(seconds=round(time.perf_counter() - started, 3), spend=budget.total.model_dump(),
                       worker=worker)
        if not shared:
            outcome["archive"] = pack(workdir)
            shutil.rmtree(workdir, ignore_errors=True)
        return outcome
    finally:
        link.close()


def call_task(task: Task, ctx: TaskContext) -> dict[str, Any]:
    """Call the task's function; how it ended, as data (an error is an outcome, not a crash)."""
    try:
        result = resolve_fn(task.fn)(ctx)
    except BudgetExceeded as exc:
        return {"status": "stopped", "error": str(exc)}
    except AttemptSuperseded as exc:
        return {"status": "superseded", "error": str(exc)}
    except Exception as exc:
        tail = "".join(traceback.format_exception(exc)[-3:])[-1500:]
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:1000], "traceback": tail}
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        return {"status": "failed", "error": f"task {task.id} returned a value that is not JSON ({exc})"}
    return {"status": "done", "result": result}


def prepare_workdir(spec: AttemptSpec) -> tuple[Path, bool]:
    """The attempt's folder, and whether it is the driver's own. A task with no journal to
    continue starts from an empty folder."""
    task = spec.task
    if spec.workdir is not None:
        root, shared = Path(spec.workdir), True
    else:
        scratch = Path(tempfile.gettempdir()) / "mgpt-batch" / (spec.batch or "batch")
        root, shared = scratch / f"{task.id}-{spec.attempt}-{os.getpid()}", False
        shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    journal = root / task.journal if task.journal else None
    if not shared and journal is not None and spec.journal:
        journal.parent.mkdir(parents=True, exist_ok=True)
        journal.write_bytes(spec.journal)
    if journal is None or not journal.is_file() or journal.stat().st_size == 0:
        for child in list(root.iterdir()):  # nothing to continue: start from zero
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    return root, shared


def pack(root: Path) -> bytes:
    """``root``'s files as a gzipped tar (regular files and folders only)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if any(part in SKIP_DIRS for part in rel.parts) or rel.parts[:2] == (".mgpt", "venv"):
                continue
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                continue
            tar.add(path, arcname=rel.as_posix(), recursive=False)
            if buffer.tell() > MAX_ARCHIVE_BYTES:
                raise BatchError(f"the task's folder {root} packs to over {MAX_ARCHIVE_BYTES >> 20} MiB: "
                                 "too much to send back to the driver")
    return buffer.getvalue()


def unpack(archive: bytes, dest: Path) -> None:
    """Put a packed task folder in place of ``dest`` (members outside it are refused)."""
    staging = dest.with_name(f".{dest.name}.incoming")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = PurePosixPath(member.name)
            if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
                raise BatchError(f"refused a packed task folder: it holds {member.name!r}")
            tar.extract(member, staging, set_attrs=False)
    old = dest.with_name(f".{dest.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    staging.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def local_main(spec: AttemptSpec, conn) -> None:
    """A local worker process: run the attempt, send its outcome down ``conn``. The process
    dies with the driver (a worker left running would write into a task the next driver
    runs again)."""
    _die_with_parent()
    done = threading.Event()
    threading.Thread(target=_watch_driver, args=(conn, done), daemon=True).start()
    if spec.env is not None:
        os.environ.clear()
        os.environ.update(spec.env)
    if spec.cwd:
        os.chdir(spec.cwd)
    try:
        outcome = run_attempt(spec)
    except BaseException as exc:  # the driver must hear why, not just see the process end
        outcome = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:1000]}
    done.set()
    conn.send(outcome)


def _watch_driver(conn, done: threading.Event) -> None:
    """Exit when the driver's end of the pipe closes before the outcome is sent (the
    driver is gone)."""
    try:
        conn.poll(None)
    except (EOFError, OSError):
        pass
    if not done.is_set():
        os._exit(70)


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent (the fork server, which exits with the
    driver) dies."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

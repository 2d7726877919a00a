"""The batch's budget server and journal keeper, on the driver; the workers' side of it.

Why a server, and why per call: a batch's ``--budget`` must hold however many workers
spend from it. Each model call already asks its budget for its worst case before it is
made (:meth:`mgpt.agents.budget.Budget.reserve`) and charges what it used after. A task's
:class:`PoolBudget` sends both to the :class:`Hub` in the driver, which holds the worst
case against the one batch-wide :class:`~mgpt.agents.budget.Budget`. So the batch never
overshoots by a call, with nothing reserved idle: a lease of budget per task would have
to guess each task's cost up front, and lock away what a fast task leaves. It costs one
round trip per hold and per charge (about a millisecond here, against seconds for a model
call; ``benchmarks/bench_batch.py``).

Nothing is lost:

- every hold, charge and release is appended to ``spend.jsonl`` and fsync'd before it is
  answered (workers answered at the same time share one fsync), so a driver killed and rerun with ``--resume`` starts from what was spent;
  holds left open by a kill count as spent at their worst case (the call may have been
  billed);
- a call is charged once, keyed by (task, role, ``action#turn``): a retried task replays
  the calls its transcript holds, and those replays are free;
- a charge carries the task's journal bytes written since the last one, and the hub
  writes them to the task's journal on the driver before recording the charge. So every
  charged call is in the journal a retry continues from, even when the worker (or its
  node) is gone. Workers on this machine write the journal in place (no copy needed).
"""

from __future__ import annotations

import json
import os
import queue
import threading
from dataclasses import dataclass
from multiprocessing.connection import Client, Listener
from pathlib import Path
from typing import Any

from mgpt.agents.budget import Budget, Hold, Spend
from mgpt.agents.errors import BudgetExceeded, MgptError
from mgpt.agents.runner.tasks import BatchError, TaskUpdate

#: A journal chunk: (offset in the file, the bytes from there: whole lines only).
Chunk = tuple[int, bytes]


class AttemptSuperseded(MgptError):
    """This attempt's task was given to another worker (this one was taken for dead)."""


@dataclass
class _Held:
    task: str
    role: str
    call: str
    hold: Hold


class Hub:
    """The driver's side: the batch's budget, the tasks' journals, the workers' news.

    Thread-safe: the :class:`HubServer` calls it from one thread per worker connection.
    """

    #: the methods workers may call over the link
    REMOTE = frozenset({"started", "reserve", "release", "charge", "journal"})

    def __init__(self, records: Path, out: Path, journals: dict[str, str | None], *,
                 max_cost: float | None = None, max_tokens: int | None = None):
        self.out = out
        self.journals = journals
        self.budget = Budget(max_cost=max_cost, max_tokens=max_tokens)
        self.updates: queue.Queue[TaskUpdate] = queue.Queue()
        self._lock = threading.Lock()
        self._held: dict[int, _Held] = {}
        self._charged: set[tuple[str, str, str]] = set()
        self._current: dict[str, int] = {}
        self._log_path = records / "spend.jsonl"
        self._load()
        self._log = self._log_path.open("ab")
        self._sync_lock = threading.Lock()
        self._written = self._synced = 0
        self._write({"op": "open"})  # holds still open before this line were lost with their driver
        self._durable()

    # -- durability ----------------------------------------------------------------------
    def _write(self, record: dict[str, Any]) -> None:
        """Append ``record`` (under the lock); :meth:`_durable` makes it durable."""
        self._log.write((json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8"))
        self._log.flush()
        self._written += 1

    def _durable(self) -> None:
        """Return once every record written so far is on disk (called outside the lock).

        Group commit: workers that wrote while another's fsync ran share the next one, so
        four workers cost about one fsync a round, not four."""
        target = self._written
        with self._sync_lock:
            if self._synced >= target:
                return
            upto = self._written
            os.fsync(self._log.fileno())
            self._synced = upto

    def _load(self) -> None:
        """Rebuild the spend of earlier runs of this batch from ``spend.jsonl``."""
        if not self._log_path.is_file():
            return
        from mgpt.agents.durable import complete_lines, repair_tail

        repair_tail(self._log_path)
        lines, _ = complete_lines(self._log_path.read_text(encoding="utf-8"))
        open_holds: dict[int, dict[str, Any]] = {}
        for line in filter(None, lines):
            rec = json.loads(line)
            op = rec["op"]
            if op == "open":
                self._lose(open_holds)
            elif op == "hold":
                open_holds[rec["id"]] = rec
            elif op == "charge":
                open_holds.pop(rec.get("id") or 0, None)
                self._account(rec["task"], rec["role"], rec["call"], rec)
            elif op in ("release", "lost"):
                held = open_holds.pop(rec["id"], None)
                if op == "lost" and held is not None:
                    self._lose({rec["id"]: held})
        self._lose(open_holds)

    def _lose(self, holds: dict[int, dict[str, Any]]) -> None:
        for rec in holds.values():
            self.budget.charge(rec["task"], prompt_tokens=rec["tokens"], completion_tokens=0, cost=rec["cost"])
        holds.clear()

    def _account(self, task: str, role: str, call: str, rec: dict[str, Any], hold: Hold | None = None) -> None:
        self.budget.charge(task, prompt_tokens=rec["prompt_tokens"], completion_tokens=rec["completion_tokens"],
                           cost=rec["cost"], prompt_chars=rec.get("prompt_chars", 0), hold=hold,
                           cached_tokens=rec.get("cached_tokens", 0))
        if call:
            self._charged.add((task, role, call))

    def _write_journal(self, task: str, chunk: Chunk | None) -> None:
        journal = self.journals.get(task)
        if chunk is None or journal is None:
            return
        offset, data = chunk
        path = self.out / task / journal
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("r+b" if path.exists() else "w+b") as f:
            f.truncate(offset)  # the worker's file is the truth; a rewritten one starts at 0
            f.seek(offset)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    # -- the driver's side ---------------------------------------------------------------
    def begin(self, task: str, attempt: int) -> None:
        """``attempt`` of ``task`` is starting: calls from any other attempt are refused."""
        with self._lock:
            self._current[task] = attempt

    def lost(self, task: str) -> None:
        """The task's worker died: its calls in flight may have been billed, so their worst
        case counts as spent; anything its attempt still sends is refused."""
        self._close(task, "lost")

    def settle(self, task: str) -> None:
        """The task's attempt returned: release what it still held (nothing, normally)."""
        self._close(task, "release")

    def _close(self, task: str, op: str) -> None:
        with self._lock:
            self._current.pop(task, None)
            for hold_id in [i for i, h in self._held.items() if h.task == task]:
                held = self._held.pop(hold_id)
                if op == "lost":
                    self.budget.charge(task, prompt_tokens=held.hold.tokens, completion_tokens=0, cost=held.hold.cost,
                                       hold=held.hold)
                else:
                    self.budget.release(held.hold)
                self._write({"op": op, "task": task, "id": hold_id})
        self._durable()

    def spend(self, task: str | None = None) -> Spend:
        """What the batch (or one task) has spent, earlier runs of the batch included."""
        with self._lock:
            if task is None:
                return self.budget.total
            return self.budget.by_role.get(task, Spend()).model_copy()

    def close(self) -> None:
        with self._lock:
            self._log.close()

    # -- the workers' side (over the link) -----------------------------------------------
    def _stale(self, task: str, attempt: int) -> tuple[str, str] | None:
        if self._current.get(task) != attempt:
            return ("stale", f"attempt {attempt} of task {task} was given up for dead and is not the current one")
        return None

    def started(self, task: str, attempt: int, worker: str) -> tuple[str, Any]:
        self.updates.put(TaskUpdate(task, "running", attempt=attempt, worker=worker))
        return ("ok", None)

    def reserve(self, task: str, attempt: int, role: str, call: str, tokens: int, cost: float,
                why: str) -> tuple[str, Any]:
        with self._lock:
            stale = self._stale(task, attempt)
            if stale:
                return stale
            if call and (task, role, call) in self._charged:
                return ("ok", 0)  # a replay of a charged call: answered from the journal, free
            try:
                hold = self.budget.reserve(f"task {task}: {role}", tokens=tokens, cost=cost, why=why)
            except BudgetExceeded as exc:
                return ("refused", str(exc))
            self._held[hold.id] = _Held(task, role, call, hold)
            self._write({"op": "hold", "task": task, "id": hold.id, "role": role, "call": call,
                         "tokens": tokens, "cost": cost})
        self._durable()  # the worker calls the model only once its hold is on disk
        return ("ok", hold.id)

    def release(self, task: str, attempt: int, hold_id: int) -> tuple[str, Any]:
        with self._lock:
            held = self._held.pop(hold_id, None)
            if held is not None:
                self.budget.release(held.hold)
                self._write({"op": "release", "task": task, "id": hold_id})
        self._durable()
        return ("ok", None)

    def charge(self, task: str, attempt: int, hold_id: int | None, role: str, usage: dict[str, Any],
               journal: Chunk | None) -> tuple[str, Any]:
        """Write the journal chunk, then record the call (``usage``: prompt_tokens,
        completion_tokens, cost or None, prompt_chars, cached_tokens)."""
        with self._lock:
            stale = self._stale(task, attempt)
            if stale:
                return stale
            self._write_journal(task, journal)
            if hold_id == 0:
                return ("ok", None)  # a replayed call, charged before
            held = self._held.pop(hold_id, None) if hold_id else None
            call = held.call if held else ""
            if call and (task, role, call) in self._charged:
                self.budget.release(held.hold)
                return ("ok", None)
            self._account(task, role, call, usage, held.hold if held else None)
            self._write({"op": "charge", "task": task, "id": hold_id or 0, "role": role, "call": call, **usage})
        self._durable()
        return ("ok", None)

    def journal(self, task: str, attempt: int, chunk: Chunk | None) -> tuple[str, Any]:
        with self._lock:
            stale = self._stale(task, attempt)
            if stale:
                return stale
            self._write_journal(task, chunk)
            return ("ok", None)


class HubServer:
    """Serves a :class:`Hub` to workers over TCP (``multiprocessing.connection``, with a
    random key per batch: a peer without it is refused before anything is unpickled)."""

    def __init__(self, hub: Hub, host: str = "127.0.0.1"):
        self.hub = hub
        self.authkey = os.urandom(32)
        self._listener = Listener((host, 0), authkey=self.authkey)
        self.address: tuple[str, int] = self._listener.address
        self._closed = False
        threading.Thread(target=self._accept, name="mgpt-hub", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except OSError:  # a peer that failed the key, or the listener closing
                continue
            if self._closed:
                conn.close()
                break
            no_delay(conn)
            threading.Thread(target=self._serve, args=(conn,), name="mgpt-hub-conn", daemon=True).start()

    def _serve(self, conn) -> None:
        with conn:
            while True:
                try:
                    method, args = conn.recv()
                except (EOFError, OSError):
                    return
                if method not in Hub.REMOTE:
                    conn.send(("error", f"no such call: {method}"))
                    continue
                try:
                    conn.send(getattr(self.hub, method)(*args))
                except Exception as exc:  # a bug or a full disk: the worker reports it
                    conn.send(("error", f"{type(exc).__name__}: {exc}"))

    def close(self) -> None:
        self._closed = True
        try:  # wake the accept() blocked in its thread, so it sees the flag
            Client(self.address, authkey=self.authkey).close()
        except OSError:
            pass
        self._listener.close()


def no_delay(conn) -> None:
    """Send each small message at once: with Nagle's algorithm, a request written right
    after the key handshake waits for the peer's delayed ACK (40 ms on Linux) first."""
    import socket

    with socket.socket(fileno=os.dup(conn.fileno())) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class HubLink:
    """A worker's connection to the driver's hub."""

    def __init__(self, address: tuple[str, int], authkey: bytes):
        try:
            self._conn = Client(tuple(address), authkey=authkey)
        except OSError as exc:
            raise BatchError(f"this worker cannot reach the batch's driver at {address[0]}:{address[1]} "
                             f"({exc}); the driver must be reachable from every worker node") from None
        no_delay(self._conn)
        self._lock = threading.Lock()

    def call(self, method: str, *args: Any) -> tuple[str, Any]:
        with self._lock:
            try:
                self._conn.send((method, args))
                reply = self._conn.recv()
            except (EOFError, OSError):
                raise BatchError("the batch's driver went away; rerun the batch with --resume") from None
        if reply[0] == "stale":
            raise AttemptSuperseded(reply[1])
        if reply[0] == "error":
            raise BatchError(f"the batch's driver failed on {method}: {reply[1]}")
        return reply

    def close(self) -> None:
        self._conn.close()


class JournalMirror:
    """A task's journal on a worker that does not share the driver's disk: what was
    written since the last chunk sent, in whole lines."""

    def __init__(self, path: Path):
        self.path = path
        self.sent = path.stat().st_size if path.is_file() else 0

    def pending(self) -> Chunk | None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return None
        offset = self.sent if size >= self.sent else 0  # rewritten from the start
        with self.path.open("rb") as f:
            f.seek(offset)
            data = f.read(size - offset)
        data = data[: data.rfind(b"\n") + 1]
        if not data and offset == self.sent:
            return None
        return (offset, data)

    def advance(self, chunk: Chunk | None) -> None:
        if chunk is not None:
            self.sent = chunk[0] + len(chunk[1])


class PoolBudget(Budget):
    """A task's view of the batch's shared budget: every hold and charge goes to the hub.

    Its own totals (:attr:`total`, what the task's run reports) count the task's calls
    only; whether a call fits is the hub's decision, over the whole batch.
    """

    def __init__(self, link: HubLink, task: str, attempt: int, *, max_cost: float | None,
                 max_tokens: int | None, mirror: JournalMirror | None = None):
        super().__init__(max_cost=max_cost, max_tokens=max_tokens)
        self.link, self.task, self.attempt, self.mirror = link, task, attempt, mirror

    def check(self, role: str = "", *, tokens: int = 0, cost: float = 0.0, why: str = "") -> None:
        self.release(self.reserve(role, tokens=tokens, cost=cost, why=why))

    def reserve(self, role: str = "", *, tokens: int = 0, cost: float = 0.0, why: str = "", call: str = "") -> Hold:
        answer = self.link.call("reserve", self.task, self.attempt, role, call, tokens, cost, why)
        if answer[0] == "refused":
            raise BudgetExceeded(answer[1])
        return Hold(answer[1], tokens, cost)

    def release(self, hold: Hold | None) -> None:
        if hold is not None and hold.id:
            self.link.call("release", self.task, self.attempt, hold.id)

    def charge(self, role: str, *, prompt_tokens: int, completion_tokens: int, cost: float | None,
               prompt_chars: int = 0, hold: Hold | None = None, cached_tokens: int = 0) -> None:
        chunk = self.sync()
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "cost": cost,
                 "prompt_chars": prompt_chars, "cached_tokens": cached_tokens}
        self.link.call("charge", self.task, self.attempt, hold.id if hold is not None else None, role, usage, chunk)
        if self.mirror is not None:
            self.mirror.advance(chunk)
        super().charge(role, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost=cost,
                       prompt_chars=prompt_chars, cached_tokens=cached_tokens)

    def sync(self) -> Chunk | None:
        """The journal's unsent lines (``None`` when the driver shares this disk)."""
        return self.mirror.pending() if self.mirror is not None else None

    def flush(self) -> None:
        """Send the journal's unsent lines now (at the end of an attempt)."""
        chunk = self.sync()
        if chunk is not None:
            self.link.call("journal", self.task, self.attempt, chunk)
            self.mirror.advance(chunk)

"""The driver: hands tasks to workers, retries the ones whose worker died, records outcomes.

The batch folder holds each task's folder (``OUT/<id>``) and the batch's records in
``OUT/.mgpt-batch/``: ``ledger.jsonl`` (the tasks, then one fsync'd line per outcome) and
``spend.jsonl`` (the budget's log, :mod:`.hub`). ``--resume`` reads the ledger, skips the
tasks that finished (``done`` or ``failed``) and runs the rest, each continuing its own
journal.
"""

from __future__ import annotations

import json
import queue
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Iterable

from mgpt.agents.durable import append_line, complete_lines, repair_tail
from mgpt.agents.runner.hub import Hub, HubServer
from mgpt.agents.runner.local import Finished, LocalBackend
from mgpt.agents.runner.tasks import (
    FINAL, BatchError, BatchResult, RunnerOptions, Task, TaskOutcome, TaskUpdate, check_tasks,
)
from mgpt.agents.runner.worker import AttemptSpec, unpack

LEDGER_VERSION = 1
#: How often the driver looks at its workers and the hub's news (seconds).
POLL = 0.2


class BatchStore:
    """The batch folder's records: the ledger of outcomes, read back by ``--resume``."""

    def __init__(self, out: Path):
        self.out = out
        self.records = out / ".mgpt-batch"
        self.ledger = self.records / "ledger.jsonl"
        self._file = None
        #: the batch's name (from its ledger)
        self.batch = ""

    def check(self, tasks: list[Task], *, resume: bool) -> dict[str, TaskOutcome]:
        """Refuse a folder the batch cannot use (writing nothing); returns the outcomes an
        earlier run recorded (``resume``)."""
        if resume:
            return self._read({t.id: t.digest() for t in tasks})
        if self.out.exists() and any(self.out.iterdir()):
            if self.ledger.is_file():
                raise BatchError(f"{self.out} holds a batch already: pass --resume to continue it, or choose "
                                 "another output folder")
            raise BatchError(f"{self.out} is not empty: choose a new (or empty) output folder for the batch")
        return {}

    def open(self, tasks: list[Task], *, resume: bool) -> None:
        """Start the ledger (a new batch writes its header: the tasks it holds)."""
        self.records.mkdir(parents=True, exist_ok=True)
        self._file = self.ledger.open("ab")
        if not resume:
            self.batch = uuid.uuid4().hex[:12]
            header = {"type": "batch", "version": LEDGER_VERSION, "id": self.batch,
                      "tasks": {t.id: t.digest() for t in tasks}}
            append_line(self._file, json.dumps(header))

    def _read(self, digests: dict[str, str]) -> dict[str, TaskOutcome]:
        if not self.ledger.is_file():
            raise BatchError(f"nothing to resume in {self.out}: it holds no batch (.mgpt-batch/ledger.jsonl); "
                             "run the batch without --resume")
        repair_tail(self.ledger)
        lines, _ = complete_lines(self.ledger.read_text(encoding="utf-8"))
        records = [json.loads(line) for line in lines if line.strip()]
        header = records[0] if records and records[0].get("type") == "batch" else None
        if header is None or header.get("version", 0) > LEDGER_VERSION:
            raise BatchError(f"{self.ledger} is not a batch ledger this mgpt reads")
        self.batch = header["id"]
        if header["tasks"] != digests:
            changed = sorted(set(header["tasks"].items()) ^ set(digests.items()))
            raise BatchError(f"the tasks differ from the batch recorded in {self.out} (first difference: task "
                             f"{changed[0][0]}); resume with the same input, or start a new batch in another folder")
        outcomes = {}
        for rec in records[1:]:
            if rec.get("type") == "outcome":
                outcomes[rec["id"]] = TaskOutcome.from_record(rec)
        return outcomes

    def record(self, outcome: TaskOutcome) -> None:
        append_line(self._file, json.dumps(outcome.record(), default=str))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def open_backend(options: RunnerOptions, tasks: list[Task]):
    """Local processes, or the Ray cluster ``options.ray`` names."""
    if options.ray:
        from mgpt.agents.runner.ray_backend import RayBackend

        return RayBackend(options.ray, options.workers)
    preload = sorted({t.fn.partition(":")[0] for t in tasks})
    return LocalBackend(options.workers or 1, preload)


def run_tasks(tasks: Iterable[Task], options: RunnerOptions) -> BatchResult:
    """Run every task on the workers ``options`` says, ``options.workers`` at a time, and
    return their outcomes (in the tasks' order).

    A worker that dies mid-task has its task tried again (``options.retries`` times), the
    new attempt continuing the task's journal; a task the budget stops, or that ran out of
    retries, is left for ``--resume``. Ctrl-C stops the workers; everything recorded stays.
    """
    tasks = list(tasks)
    check_tasks(tasks)
    if options.retries < 0:
        raise BatchError("retries must be 0 or more")
    started = time.perf_counter()
    out = Path(options.out).resolve()
    store = BatchStore(out)
    recorded = store.check(tasks, resume=options.resume)
    hub = backend = server = None
    try:
        backend = open_backend(options, tasks)  # a cluster that is not there leaves no batch folder behind
        store.open(tasks, resume=options.resume)
        hub = Hub(store.records, out, {t.id: t.journal for t in tasks}, max_cost=options.max_cost,
                  max_tokens=options.max_tokens)
        server = HubServer(hub, backend.host)
        where = backend.describe()
        outcomes = _Scheduler(tasks, options, store, hub, backend, server, recorded).run()
        spend = hub.spend()
    finally:
        for part in (backend, server, hub):
            if part is not None:
                part.close()
        store.close()
    return BatchResult(outcomes=[outcomes[t.id] for t in tasks], spend=spend,
                       seconds=time.perf_counter() - started, out=out, workers=where)


class _Scheduler:
    """One batch run: the queue, the running attempts, retries and the outcomes."""

    def __init__(self, tasks, options: RunnerOptions, store: BatchStore, hub: Hub, backend, server: HubServer,
                 recorded: dict[str, TaskOutcome]):
        self.options, self.store, self.hub, self.backend, self.server = options, store, hub, backend, server
        self.outcomes: dict[str, TaskOutcome] = {}
        self.pending: deque[Task] = deque()
        self.attempts: dict[str, int] = {}
        self.deaths: dict[str, int] = {}
        self.workers: dict[str, str] = {}
        for task in tasks:
            previous = recorded.get(task.id)
            if previous is not None and previous.status in FINAL:
                self.outcomes[task.id] = previous
                self._tell(TaskUpdate(task.id, "skipped", attempt=previous.attempts, outcome=previous))
            else:
                self.attempts[task.id] = previous.attempts if previous is not None else 0
                self.pending.append(task)
                self._tell(TaskUpdate(task.id, "queued"))

    def _tell(self, update: TaskUpdate) -> None:
        if self.options.on_update is not None:
            self.options.on_update(update)

    def run(self) -> dict[str, TaskOutcome]:
        running = 0
        while self.pending or running:
            while self.pending and running < self.backend.slots:
                self._start(self.pending.popleft())
                running += 1
            finished = self.backend.wait(POLL)
            self._news()
            for item in finished:
                running -= 1
                self._finish(item)
        self._news()
        return self.outcomes

    def _news(self) -> None:
        """What workers told the hub (which task runs where)."""
        while True:
            try:
                update = self.hub.updates.get_nowait()
            except queue.Empty:
                return
            if update.attempt == self.attempts.get(update.id):
                self.workers[update.id] = update.worker
                self._tell(update)

    def _start(self, task: Task) -> None:
        attempt = self.attempts[task.id] = self.attempts[task.id] + 1
        self.hub.begin(task.id, attempt)
        workdir = self.store.out / task.id
        journal = None
        if not self.backend.shares_disk and task.journal and (workdir / task.journal).is_file():
            journal = (workdir / task.journal).read_bytes()
        spec = AttemptSpec(
            task=task, attempt=attempt, hub=self.server.address, authkey=self.server.authkey,
            max_cost=self.options.max_cost, max_tokens=self.options.max_tokens,
            workdir=str(workdir) if self.backend.shares_disk else None, journal=journal, batch=self.store.batch,
        )
        # The worker says where it runs once it starts (the hub passes it on); a local one's
        # name is known now, for the message if it dies before saying so.
        self.workers[task.id] = self.backend.start(spec)

    def _finish(self, item: Finished) -> None:
        task, attempt = item.spec.task, item.spec.attempt
        if item.outcome is None or item.outcome.get("status") == "superseded":
            self._lost(task, attempt, item.why or "the attempt was superseded")
            return
        self.hub.settle(task.id)
        got = item.outcome
        workdir = self.store.out / task.id
        if got.get("archive") is not None:
            unpack(got["archive"], workdir)
        journal = workdir / task.journal if task.journal else None
        outcome = TaskOutcome(
            id=task.id, status=got["status"], result=got.get("result"), error=got.get("error", ""),
            attempts=attempt, seconds=got.get("seconds", 0.0), spend=self.hub.spend(task.id),
            worker=got.get("worker") or self.workers.get(task.id, ""), workdir=workdir,
            transcript=journal if journal is not None and journal.is_file() else None,
        )
        self.store.record(outcome)
        self.outcomes[task.id] = outcome
        self._tell(TaskUpdate(task.id, outcome.status, attempt=attempt, worker=outcome.worker,
                              detail=outcome.error, outcome=outcome))

    def _lost(self, task: Task, attempt: int, why: str) -> None:
        """The worker died: settle its holds, and try again, or give the task up as lost."""
        self.hub.lost(task.id)
        deaths = self.deaths[task.id] = self.deaths.get(task.id, 0) + 1
        if deaths <= self.options.retries:
            self._tell(TaskUpdate(task.id, "retrying", attempt=attempt, worker=self.workers.get(task.id, ""),
                                  detail=why))
            self.pending.appendleft(task)
            return
        outcome = TaskOutcome(
            id=task.id, status="lost", error=f"{why}; gave up after {deaths} attempt(s) whose worker died "
            "(rerun with --resume to try again)", attempts=attempt, spend=self.hub.spend(task.id),
            worker=self.workers.get(task.id, ""), workdir=self.store.out / task.id,
        )
        self.store.record(outcome)
        self.outcomes[task.id] = outcome
        self._tell(TaskUpdate(task.id, "lost", attempt=attempt, worker=outcome.worker, detail=why, outcome=outcome))

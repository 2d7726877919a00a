"""What the runner runs and what it hands back: tasks, their context, outcomes, options."""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from mgpt.agents.budget import Budget, Spend
from mgpt.agents.errors import MgptError

#: How a task ended. ``done``: its function returned (its result says whether it passed);
#: ``failed``: its function raised; ``stopped``: the batch's budget stopped it; ``lost``:
#: its worker died more often than the retries allow. ``--resume`` runs ``stopped`` and
#: ``lost`` tasks again (continuing their journals) and skips the others.
Status = Literal["done", "failed", "stopped", "lost"]
FINAL: frozenset[str] = frozenset({"done", "failed"})

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class BatchError(MgptError):
    """A batch cannot run as asked (bad tasks, an output folder in the way, no cluster)."""


@dataclass(frozen=True)
class Task:
    """One unit of work: picklable data and a function named by its import path.

    ``fn`` is ``"package.module:function"``; it is called on a worker as ``fn(ctx)`` with a
    :class:`TaskContext` and returns a JSON value (a dict with ``"ok": false`` counts as a
    task that ran but did not pass). ``journal`` is the file, inside the task's folder,
    that the function appends its durable records to (a run's transcript): a retry gets
    it back and continues from it (``ctx.resume``) instead of starting from zero.
    """

    #: unique in the batch and stable across reruns (``--resume`` matches on it); the name
    #: of the task's folder under the batch folder
    id: str
    fn: str
    args: dict[str, Any] = field(default_factory=dict)
    journal: str | None = ".mgpt/transcript.jsonl"

    def digest(self) -> str:
        """What identifies the task's work: ``--resume`` refuses a batch whose tasks changed."""
        text = json.dumps([self.fn, self.args, self.journal], sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class TaskContext:
    """What a task's function gets on its worker."""

    id: str
    args: dict[str, Any]
    #: the task's own folder (its workspace); created empty for a first attempt
    workdir: Path
    #: 1 for the first try; more after a worker died, or on ``--resume``
    attempt: int
    #: the folder holds the task's journal from an earlier attempt: continue it
    resume: bool
    #: the batch's budget, shared with every other task (unlimited if the batch has none)
    budget: Budget
    #: the task's journal (``workdir / Task.journal``), if it has one
    journal: Path | None = None


@dataclass
class TaskOutcome:
    """How one task ended, as the driver recorded it."""

    id: str
    status: Status
    result: Any = None
    error: str = ""
    attempts: int = 0
    seconds: float = 0.0
    spend: Spend = field(default_factory=Spend)
    #: where the last attempt ran: ``pid 123`` or ``node 10.0.0.7 pid 123``
    worker: str = ""
    workdir: Path | None = None
    #: the task's journal (its transcript) on the driver, if it wrote one
    transcript: Path | None = None
    #: recorded by an earlier run of the batch and skipped by ``--resume``
    skipped: bool = False

    @property
    def ok(self) -> bool:
        """The task ran and passed (a dict result may say ``"ok": false``)."""
        if self.status != "done":
            return False
        return bool(self.result.get("ok", True)) if isinstance(self.result, dict) else True

    def record(self) -> dict[str, Any]:
        """The ledger line for this outcome."""
        data = asdict(self)
        data.pop("skipped")
        data["workdir"] = str(self.workdir) if self.workdir else None
        data["transcript"] = str(self.transcript) if self.transcript else None
        data["spend"] = self.spend.model_dump()
        return {"type": "outcome", **data}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "TaskOutcome":
        data = {k: v for k, v in data.items() if k != "type"}
        data["spend"] = Spend.model_validate(data.get("spend") or {})
        for name in ("workdir", "transcript"):
            data[name] = Path(data[name]) if data.get(name) else None
        return cls(**data, skipped=True)


@dataclass(frozen=True)
class TaskUpdate:
    """A change in one task's state, for a live view.

    ``status`` is one of ``queued``, ``running``, ``retrying``, ``skipped`` or a final
    :data:`Status`."""

    id: str
    status: str
    attempt: int = 0
    worker: str = ""
    detail: str = ""
    outcome: TaskOutcome | None = None


@dataclass
class RunnerOptions:
    """Where and how a batch runs. ``mgpt batch`` and the evaluations' flags map onto these."""

    #: the batch folder: each task's folder ``OUT/<id>``, the records in ``OUT/.mgpt-batch``
    out: Path
    #: tasks at once (local processes; on Ray the default is the cluster's CPUs)
    workers: int | None = None
    #: ``None``: processes on this machine; ``"auto"`` or ``HOST:PORT``: a Ray cluster
    ray: str | None = None
    #: continue the batch recorded in ``out``: finished tasks are skipped
    resume: bool = False
    #: the whole batch's limits (USD, tokens); ``None`` is unlimited
    max_cost: float | None = None
    max_tokens: int | None = None
    #: how many times a task whose worker died is tried again
    retries: int = 2
    #: called (in the driver) with every :class:`TaskUpdate`
    on_update: Callable[[TaskUpdate], None] | None = None


@dataclass
class BatchResult:
    """Every task's outcome, the batch's spend (earlier runs of it included) and its time."""

    outcomes: list[TaskOutcome]
    spend: Spend
    seconds: float
    out: Path
    #: what ran the tasks: "2 local process(es)", "Ray: 2 node(s), 2 task(s) at once"
    workers: str = ""

    @property
    def passed(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(o.status in FINAL and not o.ok for o in self.outcomes)

    @property
    def stopped(self) -> int:
        return sum(o.status == "stopped" for o in self.outcomes)

    @property
    def lost(self) -> int:
        return sum(o.status == "lost" for o in self.outcomes)

    @property
    def complete(self) -> bool:
        """Every task reached a final outcome (nothing left for ``--resume``)."""
        return all(o.status in FINAL for o in self.outcomes)


def resolve_fn(path: str) -> Callable[[TaskContext], Any]:
    """The function ``"package.module:function"`` names, or :class:`BatchError` saying why not."""
    module, sep, name = path.partition(":")
    if not sep or not module or not name:
        raise BatchError(f"a task's function is named 'package.module:function', not {path!r}")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise BatchError(f"cannot import the task function {path!r}: {exc}") from None
    if not callable(fn):
        raise BatchError(f"the task function {path!r} is not callable")
    return fn


def check_tasks(tasks: list[Task]) -> None:
    """Refuse tasks the runner cannot keep apart or find: bad or repeated ids, bad journals,
    functions that do not import."""
    seen: set[str] = set()
    for task in tasks:
        if not _ID.match(task.id):
            raise BatchError(f"task id {task.id!r} is not a folder name: use letters, digits, '.', '_' "
                             "and '-' (at most 100, not starting with '.')")
        if task.id in seen:
            raise BatchError(f"two tasks have the id {task.id!r}: ids must be unique in a batch")
        seen.add(task.id)
        journal = task.journal
        if journal is not None and (Path(journal).is_absolute() or ".." in Path(journal).parts or not journal.strip()):
            raise BatchError(f"task {task.id}: the journal {journal!r} must be a path inside the task's folder")
    for fn in sorted({t.fn for t in tasks}):
        resolve_fn(fn)

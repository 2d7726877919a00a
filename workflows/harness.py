"""What every run of every SOP shares: its options, its workspace, its durable records.

A run writes into a workspace. Every model call is recorded to ``.mgpt/transcript.jsonl``
(and to ``options.record`` when given), every event to ``.mgpt/run.jsonl``; each step is
committed to the workspace's git history (:mod:`.history`); review gates pause where asked
(:mod:`.review`); ``resume`` continues an interrupted run from its transcript
(:mod:`.resume`). An SOP (the software company, the writers' room...) drives a
:class:`RunSession` through these steps::

    session = RunSession.begin(model, options)          # the sandbox, prices, resume
    if session.finished is not None: ...                 # nothing to run again
    idea = session.resolve_idea(idea)
    note = prepare_workspace(session.root, force=...)    # the SOP's own preparation
    session.open(idea, note)                             # history, transcript, run log
    team = ...hire roles on session.model, session.env...
    session.install_review(team.roles)
    try:
        result = await team.run(idea, max_rounds=options.max_rounds)
        session.end(EndRecord(...))
    finally:
        await session.close()
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from mgpt import __version__
from mgpt.agents.budget import Budget
from mgpt.agents.environment import Environment
from mgpt.agents.errors import MgptError
from mgpt.agents.runlog import Event, RunLog
from mgpt.llm.backends.base import Model
from mgpt.llm.backends.cost import PriceTable, priced_as, require_price
from mgpt.llm.backends.replay import EndRecord, RecordingModel, ResumeModel, Transcript, TranscriptHeader
from mgpt.sandbox.isolation import Limits
from mgpt.sandbox.isolation import require as require_sandbox
from mgpt.sandbox.workspace import Workspace
from mgpt.workflows.history import GitError, GitHistory, git_available
from mgpt.workflows.resume import check_same_run, load_for_resume, restore_workspace
from mgpt.workflows.review import TOOLS_STEP, ReviewError, ReviewGate, Reviewer, tool_approver


class WorkspaceNotEmpty(MgptError):
    """The workspace already holds files and the run was not told to overwrite them."""


@dataclass
class RunOptions:
    """How one run goes, whatever its SOP: where it writes, its bounds, its records.

    ``mgpt run``'s flags map onto these fields one to one; from Python,
    ``run_company(idea, model=m, options=RunOptions(workspace="todo", budget=Budget(max_cost=1)))``
    (or the same fields as keyword arguments).
    """

    #: the folder the project is written into
    workspace: str | Path = "workspace"
    #: stop after this many rounds of the team
    max_rounds: int = 12
    #: the worst-case bound every call must fit (USD and/or tokens)
    budget: Budget | None = None
    #: also write the transcript of model calls here
    record: str | Path | None = None
    #: write into a workspace that is not empty
    force: bool = False
    #: continue the interrupted run the workspace holds (recorded calls are not made again)
    resume: bool = False
    #: limits for generated code (deadline, output cap); ``sandbox`` overrides its mode
    limits: Limits | None = None
    #: how generated code runs: "bwrap" (isolated; default, also $MGPT_SANDBOX) or "none"
    sandbox: str | None = None
    #: USD per 1M tokens, by model
    prices: PriceTable | None = None
    #: called with every event of the run (the CLI's live view)
    on_event: Callable[[Event], None] | None = None
    #: steps a reviewer sees before the next role builds on them (prd, design, tasks, code)
    review: list[str] | None = None
    reviewer: Reviewer | None = None
    #: how many times one document may be revised with the reviewer's feedback
    review_rounds: int = 2
    #: commit each step to the workspace's git repository (when git is installed)
    history: bool = True

    @classmethod
    def split(cls, settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``settings`` parted into RunOptions fields and the rest (an SOP's own options)."""
        names = {f.name for f in fields(cls)}
        return ({k: v for k, v in settings.items() if k in names},
                {k: v for k, v in settings.items() if k not in names})


def prepare_workspace(workspace: Path, *, force: bool) -> str:
    """Make ``workspace`` ready for a fresh run; returns a note for the run log ("" if none).

    A non-empty workspace is refused unless ``force``, or unless it holds only the files of
    a failed attempt (its log ends in an error and no file was changed since): those are
    cleared and the run starts again, as a retry should, without ``--force``.
    """
    workspace.mkdir(parents=True, exist_ok=True)
    if any(workspace.iterdir()) and not force:
        failed = Workspace(workspace).failed_attempt()
        if failed is None:
            raise WorkspaceNotEmpty(
                f"workspace {workspace} is not empty; choose another with --workspace, pass "
                "--inc to extend the project in it, or --force to write into it anyway (a "
                "workspace holding only the files of a failed run is reused without --force)"
            )
        Workspace(workspace).clear(failed.files)
        return (
            f"cleared {len(failed.files)} file(s) of a failed attempt (it stopped with: "
            f"{failed.error[:200]}) and started again"
        )
    # A forced run starts a fresh log and transcript; project files are overwritten as written.
    shutil.rmtree(workspace / ".mgpt", ignore_errors=True)
    return ""


@dataclass
class RunSession:
    """One run's plumbing: the workspace, the recorders, the run log, history and resume."""

    options: RunOptions
    #: the model as the SOP was given it (closed at the end)
    base: Model
    root: Path
    limits: Limits
    #: the interrupted run being resumed, if any
    previous: Transcript | None = None
    notes: list[str] = field(default_factory=list)
    #: the model roles call: recording, and replaying what a resumed run already asked
    model: Model | None = None
    env: Environment | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    git: GitHistory | None = None
    recorders: list[RecordingModel] = field(default_factory=list)
    resumer: ResumeModel | None = None

    @property
    def transcript(self) -> Path:
        return self.root / ".mgpt" / "transcript.jsonl"

    @property
    def log(self) -> Path:
        return self.root / ".mgpt" / "run.jsonl"

    @property
    def finished(self) -> EndRecord | None:
        """The end record of a resumed run that had already finished: nothing to run again."""
        end = self.previous.end if self.previous is not None else None
        return end if end is not None and end.stop_reason == "idle" else None

    @classmethod
    def begin(cls, model: Model, options: RunOptions) -> "RunSession":
        """Check what can be checked before any model call or write: the sandbox (a run that
        cannot isolate is refused in one line), a budget's prices, and the run to resume."""
        limits = options.limits
        limits = replace(limits or Limits(), sandbox=require_sandbox(options.sandbox or (limits.sandbox if limits else None)))
        budget = options.budget
        if budget is not None and budget.max_cost is not None:
            require_price(priced_as(model), options.prices or PriceTable())  # before touching the workspace
        root = Path(options.workspace).resolve()
        previous = load_for_resume(root) if options.resume else None
        return cls(options=options, base=model, root=root, limits=limits, previous=previous)

    def resolve_idea(self, idea: str | None) -> str:
        """The idea to run: the resumed run's own unless another is given (then refused
        unless ``force``); the reviewer is checked here too."""
        if self.previous is not None:
            idea = self.previous.header.idea if idea is None else idea
            self.notes += check_same_run(self.previous.header, idea=idea, model_name=self.base.name,
                                         force=self.options.force)
        if idea is None or not idea.strip():
            raise MgptError("the idea is empty: say what to build, e.g. mgpt run \"a todo CLI\"")
        if self.review_steps and self.options.reviewer is None:
            raise ReviewError(
                f"reviewing {', '.join(self.review_steps)} needs a reviewer: pass reviewer=... (or "
                "review=[] to go on without review)"
            )
        return idea

    @property
    def review_steps(self) -> list[str]:
        """The steps to review: as asked, else as the resumed run was started."""
        if self.options.review is not None:
            return list(self.options.review)
        return list((self.previous.header.meta.get("review") if self.previous else None) or [])

    def open(self, idea: str, note: str | None = None, *, meta: dict[str, Any] | None = None) -> None:
        """Start the records: history, the transcript (with ``meta`` in its header on a fresh
        run), the recorders, resume's replay, the run log and its listeners."""
        self._open_history(idea, meta or {})
        header = TranscriptHeader(idea=idea, model=priced_as(self.base), meta=self.meta)
        writer = RecordingModel(self.base, self.transcript, header=header, append=self.previous is not None)
        self.recorders = [writer]
        answering: Model = writer
        record = self.options.record
        if record is not None:
            if self.previous is not None:
                self.notes.append(f"--record {record}: the full transcript is copied there when the run ends")
            else:
                answering = RecordingModel(writer, record, header=header)
                self.recorders.append(answering)  # type: ignore[arg-type]
        if self.previous is not None:
            self.resumer = ResumeModel(answering, self.previous.calls, source=self.transcript,
                                       tool_results=self.previous.tool_results)
            answering = self.resumer
        self.model = answering
        self._open_log(note)

    def _open_history(self, idea: str, meta: dict[str, Any]) -> None:
        history = self.options.history
        self.git = GitHistory(self.root) if history and git_available() else None
        if history and self.git is None:
            self.notes.append("no version history: git is not installed")
        if self.previous is not None:
            self.meta = self.previous.header.meta
            note, used_git = restore_workspace(self.root, self.previous.header,
                                               self.git if self.meta.get("git_base") else None,
                                               stopped=self.previous.end is not None)
            self.notes.append(note)
            if not used_git:
                self.git = None  # the run began without history (or lost it): do not start one halfway
            return
        # model_name: what resume compares (the header's model may be the priced-as name).
        self.meta = {"mgpt": __version__, "model_name": self.base.name, "baseline": Workspace(self.root).files()}
        if self.git is not None:
            try:
                self.meta["git_base"] = self.git.start(idea)
            except GitError as exc:
                self.notes.append(f"no version history: {exc}")
                self.git = None
        self.meta.update({"review": self.review_steps, "review_rounds": self.options.review_rounds, **meta})

    def _open_log(self, note: str | None) -> None:
        env = Environment(RunLog(self.log))
        if self.options.on_event is not None:
            env.listen(self.options.on_event)
        if note:
            env.emit(Event(kind="workspace", detail=note))
        if self.git is not None:
            env.listen(self.safe(self.git.on_event))
        if self.previous is not None:
            env.emit(Event(kind="resume", detail="; ".join(self.notes), data={
                "recorded_calls": len(self.previous.calls), "recorded_reviews": len(self.previous.reviews),
                "torn_bytes": self.previous.torn_bytes,
            }))
        self.env = env

    def install_review(self, roles: list) -> None:
        """Review gates on ``roles`` for the steps asked, and for decisions recorded in a
        transcript being resumed or replayed (they are repeated as made)."""
        recorded = [*(self.previous.reviews if self.previous else []),
                    *list(getattr(getattr(self.base, "transcript", None), "reviews", []) or [])]
        steps = self.review_steps
        if TOOLS_STEP in steps and self.options.reviewer is not None:
            # --review tools: the reviewer approves each call to a tool that needs approval
            # (the roles share the run's settings).
            for role in roles:
                context = getattr(role, "context", None)
                if context is not None:
                    context.settings["approve_tool"] = tool_approver(self.options.reviewer)
        if not steps and not recorded:
            return
        gate = ReviewGate(
            list(dict.fromkeys([*steps, *(r.step for r in recorded)])),
            reviewer=self.options.reviewer if steps else None, rounds=self.options.review_rounds,
            recorded=recorded,
            record=lambda r: [rec.append_record(r) for rec in self.recorders],
            commit=self.safe(self.git.commit) if self.git is not None else None, emit=self.env.emit,
        )
        gate.install(roles)

    def end(self, record: EndRecord) -> None:
        """Write the run's outcome, last, to every transcript."""
        for rec in self.recorders:
            rec.append_record(record)

    async def close(self) -> None:
        """Close the run log and the recorders, and the model."""
        if self.env is not None:
            self.env.close()
        for rec in self.recorders:
            rec.close()
        await self.base.aclose()

    def wrap_up(self) -> None:
        """After the run: history's notes, and the transcript copied to ``record`` on a resume."""
        git = self.git
        if git is not None and git.matched:
            self.notes.append(f"git cross-check: {git.matched} replayed step(s) made exactly their recorded commits")
        if git is not None and git.diverged:
            self.notes.append(f"history: {git.diverged}")
        record = self.options.record
        if record is not None and self.previous is not None:
            Path(record).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.transcript, record)

    def call_counts(self, made: int) -> tuple[int, int]:
        """(model calls answered from the transcript, calls made to the model)."""
        if self.resumer is None:
            return 0, made
        return len(self.resumer.replayed), len(self.resumer.made)

    def unused_replay_calls(self) -> list[tuple[str, str, int]]:
        """Recorded calls a replay never asked for (not counting those a resume replayed)."""
        unused = list(getattr(self.base, "unused", []))
        if self.resumer is not None:
            done = set(self.resumer.replayed)
            unused = [k for k in unused if k not in done]
        return unused

    def safe(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """History is best effort: a git failure becomes a note, never a failed run."""

        def call(*args: Any) -> Any:
            try:
                return fn(*args)
            except (GitError, OSError) as exc:
                if f"history: {exc}" not in self.notes:
                    self.notes.append(f"history: {exc}")
                return None

        return call

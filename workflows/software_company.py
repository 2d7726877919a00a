"""The software company SOP: five roles turn one idea into a project that runs.

:func:`run_company` prepares the workspace (refusing a non-empty one unless told), wires
the team with its bounds, records every model call to ``.mgpt/transcript.jsonl`` (and to
``record`` when given), logs every event to ``.mgpt/run.jsonl``, commits each step to the
workspace's git history (:mod:`.history`), pauses for human review where asked
(:mod:`.review`), writes the generated project's README, and returns what happened.
``resume=True`` continues an interrupted run from its transcript (:mod:`.resume`);
``incremental=True`` extends the project a workspace holds (:mod:`.incremental`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from mgpt.actions.documents import PRD, SystemDesign, TestReport
from mgpt.actions.incremental import MAP_BUDGET, ProjectState, scan_project
from mgpt.sandbox.isolation import Limits
from mgpt.sandbox.isolation import require as require_sandbox
from mgpt.sandbox.workspace import UnsafePathError, Workspace
from mgpt.agents.budget import Budget, Spend
from mgpt.agents.environment import Environment
from mgpt.agents.errors import MgptError
from mgpt.agents.runlog import Event, RunLog
from mgpt.agents.team import RunResult, Team
from mgpt.llm.backends.base import Model
from mgpt.llm.backends.cost import PriceTable, priced_as, require_price
from mgpt.llm.backends.replay import EndRecord, RecordingModel, ResumeModel, Transcript, TranscriptHeader
from mgpt.memory.retrieval import Embed, RetrievalMemory
from mgpt.roles.software import Architect, Engineer, ProductManager, ProjectManager, QaEngineer

from mgpt import __version__

from mgpt.workflows.history import GitError, GitHistory, git_available
from mgpt.workflows.incremental import check_resumable, check_review, prepare_incremental
from mgpt.workflows.resume import check_same_run, load_for_resume, restore_workspace
from mgpt.workflows.review import TOOLS_STEP, ReviewError, ReviewGate, Reviewer, tool_approver


class WorkspaceNotEmpty(MgptError):
    """The workspace already holds files and the run was not told to overwrite them."""


@dataclass
class CompanyResult:
    """What a software-company run produced."""

    run: RunResult
    workspace: Path
    files: list[str]
    report: TestReport | None
    transcript: Path
    log: Path
    unused_replay_calls: list[tuple[str, str, int]] = field(default_factory=list)
    #: Resume: model calls answered from the workspace transcript / made to the model.
    replayed_calls: int = 0
    new_calls: int = 0
    #: Resume found the run already finished: nothing was run again.
    already_finished: bool = False
    #: How the run was resumed, and what the git history says (or why there is none).
    notes: list[str] = field(default_factory=list)
    #: How generated code ran: "bwrap" (isolated) or "none" (unisolated).
    sandbox: str = "bwrap"

    @property
    def tests_passed(self) -> bool:
        return self.report is not None and self.report.ok


def prepare_workspace(workspace: Path, *, force: bool) -> str:
    """Make ``workspace`` ready for a run; returns a note for the run log ("" if none).

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


def build_team(
    model: Model,
    workspace: Path,
    *,
    budget: Budget | None = None,
    fix_rounds: int = 2,
    limits: Limits | None = None,
    prices: PriceTable | None = None,
    env: Environment | None = None,
    context_budget: int | None = None,
    recall: str | Path | RetrievalMemory | None = None,
    embed: Embed | None = None,
    incremental: ProjectState | None = None,
    map_budget: int = MAP_BUDGET,
) -> Team:
    """The five roles on one bus, with the run's model, budget and workspace.

    Options (off by default; the number of model calls never changes): ``context_budget``
    caps the characters of earlier files' interfaces in WriteCode/WriteTests prompts, keeping
    the most relevant; ``recall`` (a folder, or a :class:`RetrievalMemory`) lets FixBug recall
    similar fixes from earlier runs and remembers its own; ``embed`` ranks by a trained
    embedder instead of BM25. ``incremental``: the project an incremental run extends.
    """
    if fix_rounds < 0:
        raise ValueError("fix_rounds must be >= 0")
    if context_budget is not None and context_budget < 0:
        raise ValueError("context_budget must be >= 0")
    settings = {"fix_rounds": fix_rounds, "limits": limits or Limits(), "prices": prices}
    if context_budget is not None:
        settings["context_budget"] = context_budget
    if embed is not None:
        settings["embed"] = embed
    if recall is not None:
        settings["recall"] = recall if isinstance(recall, RetrievalMemory) else RetrievalMemory(recall, embed=embed)
    team = Team(
        model=model,
        env=env,
        budget=budget,
        workspace=workspace,
        settings={**settings, "incremental": incremental, "map_budget": map_budget},
    )
    team.hire(ProductManager(), Architect(), ProjectManager(), Engineer(), QaEngineer())
    return team


def _project_readme(workspace: Workspace) -> str | None:
    try:
        prd = PRD.model_validate_json(workspace.read("docs/prd.json"))
        design = SystemDesign.model_validate_json(workspace.read("docs/design.json"))
    except (OSError, ValueError, UnsafePathError):
        return None
    files = "\n".join(f"- `{f.path}`: {f.purpose}" for f in design.files)
    has_main = any(f.path == f"{prd.project_name}/__main__.py" for f in design.files)
    run = f"\n## Run\n\n```\npython -m {prd.project_name} --help\n```\n" if has_main else ""
    return (
        f"# {prd.project_name}\n\n{prd.summary}\n\n## Files\n{files}\n{run}\n## Test\n\n"
        "```\npython -m pytest -q\n```\n\nDocuments: `docs/prd.md`, `docs/design.md`, "
        "`docs/tasks.md`, `docs/qa_report.md`. Generated by mgpt.\n"
    )


def write_project_readme(ws: Workspace) -> bool:
    """Write the project's README from the PRD and design, unless the engineer wrote one
    (any ``README*`` at the top: README.md, readme.md, README.rst are kept as written)."""
    if any(p.name.lower().startswith("readme") for p in ws.root.iterdir() if p.is_file()):
        return False
    readme = _project_readme(ws)
    if readme is not None:
        ws.write("README.md", readme)
    return readme is not None


async def run_company(
    idea: str | None,
    *,
    model: Model,
    workspace: str | Path,
    max_rounds: int = 12,
    budget: Budget | None = None,
    fix_rounds: int = 2,
    record: str | Path | None = None,
    force: bool = False,
    limits: Limits | None = None,
    prices: PriceTable | None = None,
    on_event: Callable[[Event], None] | None = None,
    resume: bool = False,
    review: list[str] | None = None,
    reviewer: Reviewer | None = None,
    review_rounds: int = 2,
    history: bool = True,
    sandbox: str | None = None,
    context_budget: int | None = None,
    recall: str | Path | RetrievalMemory | None = None,
    embed: Embed | None = None,
    incremental: bool = False,
    map_budget: int = MAP_BUDGET,
) -> CompanyResult:
    """Run the software company on ``idea`` into ``workspace``.

    ``resume`` continues the run the workspace holds (``idea`` may then be ``None``):
    recorded model calls and review decisions are replayed, the rest made. ``review`` names
    the steps (``prd``, ``design``, ``tasks``, ``code``) that ``reviewer`` sees before the
    next role builds on them. ``history`` commits each step to the workspace's git
    repository when git is installed.

    ``sandbox`` is how generated code runs: ``"bwrap"`` (isolated; the default, also
    ``$MGPT_SANDBOX``) or ``"none"`` (unisolated, by explicit choice). Checked before any
    model call: a run that cannot isolate is refused with one line saying what to do.

    ``incremental`` extends the project already in ``workspace`` (``--inc``): a change
    request, a design change, tasks and code for the changed and new files only, new tests
    beside the old ones (which must still pass). ``map_budget`` caps, in characters, the
    map of the project's modules the prompts carry. Resuming an interrupted incremental run
    needs only ``resume`` (its transcript says it was incremental).
    """
    limits = replace(limits or Limits(), sandbox=require_sandbox(sandbox or (limits.sandbox if limits else None)))
    root = Path(workspace).resolve()
    if budget is not None and budget.max_cost is not None:
        require_price(priced_as(model), prices or PriceTable())  # refuse before touching the workspace
    mgpt_dir = root / ".mgpt"
    transcript = mgpt_dir / "transcript.jsonl"
    previous: Transcript | None = load_for_resume(root) if resume else None
    notes: list[str] = []
    note = None
    if previous is not None:
        incremental = check_resumable(previous.header, root, incremental=incremental)
        if previous.end is not None and previous.end.stop_reason == "idle":
            await model.aclose()
            return _finished(previous, root, transcript)
        idea = previous.header.idea if idea is None else idea
        notes += check_same_run(previous.header, idea=idea, model_name=model.name, force=force)
    if idea is None or not idea.strip():
        raise MgptError("the idea is empty: say what to build, e.g. mgpt run \"a todo CLI\"")
    if review is None:
        review = list((previous.header.meta.get("review") if previous else None) or [])
    if incremental:
        check_review(review)
    if review and reviewer is None:
        raise ReviewError(
            f"reviewing {', '.join(review)} needs a reviewer: pass reviewer=... (or review=[] "
            "to go on without review)"
        )
    project: ProjectState | None = None
    if previous is None and incremental:
        project, note = prepare_incremental(root, force=force or resume, budget=map_budget)
    elif previous is None:
        # A fresh run, or a resume of one killed before its first record: start over.
        note = prepare_workspace(root, force=force or resume)
    git = GitHistory(root) if history and git_available() else None
    if history and git is None:
        notes.append("no version history: git is not installed")
    meta: dict[str, Any]
    if previous is not None:
        meta = previous.header.meta
        note, used_git = restore_workspace(root, previous.header, git if meta.get("git_base") else None,
                                           stopped=previous.end is not None)
        notes.append(note)
        if not used_git:
            git = None  # the run began without history (or lost it): do not start one halfway
    else:
        # model_name: what resume compares (the header's model may be the priced-as name).
        meta = {"mgpt": __version__, "model_name": model.name, "baseline": Workspace(root).files()}
        if git is not None:
            try:
                meta["git_base"] = git.start(idea)
            except GitError as exc:
                notes.append(f"no version history: {exc}")
                git = None
    if previous is None:
        meta.update({"review": review, "review_rounds": review_rounds})
        if incremental:
            meta.update({"incremental": True, "map_budget": map_budget})
    if incremental and project is None:
        # Resuming: the workspace is back at the run's first commit, the project as it was.
        project = scan_project(root, int(meta.get("map_budget") or map_budget))
    header = TranscriptHeader(idea=idea, model=priced_as(model), meta=meta)
    writer = RecordingModel(model, transcript, header=header, append=previous is not None)
    recorders = [writer]
    answering: Model = writer
    if record is not None:
        if previous is not None:
            notes.append(f"--record {record}: the full transcript is copied there when the run ends")
        else:
            answering = RecordingModel(writer, record, header=header)
            recorders.append(answering)  # type: ignore[arg-type]
    resumer: ResumeModel | None = None
    if previous is not None:
        resumer = ResumeModel(answering, previous.calls, source=transcript, tool_results=previous.tool_results)
        answering = resumer
    env = Environment(RunLog(mgpt_dir / "run.jsonl"))
    if on_event is not None:
        env.listen(on_event)
    if note:
        env.emit(Event(kind="workspace", detail=note))
    if git is not None:
        env.listen(_safe(git.on_event, notes))
    if previous is not None:
        env.emit(Event(kind="resume", detail="; ".join(notes), data={
            "recorded_calls": len(previous.calls), "recorded_reviews": len(previous.reviews),
            "torn_bytes": previous.torn_bytes,
        }))
    team = build_team(
        answering, root, budget=budget, fix_rounds=fix_rounds, limits=limits, prices=prices, env=env,
        context_budget=context_budget, recall=recall, embed=embed,
        incremental=project, map_budget=int(meta.get("map_budget") or map_budget),
    )
    if TOOLS_STEP in review and reviewer is not None:
        team.context.settings["approve_tool"] = tool_approver(reviewer)
    recorded_reviews = [*(previous.reviews if previous else []), *_replayed_reviews(model)]
    if review or recorded_reviews:
        steps = list(dict.fromkeys([*review, *(r.step for r in recorded_reviews)]))
        gate = ReviewGate(
            steps, reviewer=reviewer if review else None, rounds=review_rounds,
            recorded=recorded_reviews,
            record=lambda r: [rec.append_record(r) for rec in recorders],
            commit=_safe(git.commit, notes) if git is not None else None, emit=env.emit,
        )
        gate.install(team.roles)
    try:
        result = await team.run(idea, max_rounds=max_rounds)
        ws = Workspace(root)
        # An incremental run leaves the project's README to the project (a plain project's
        # README, if any, is the user's; mgpt's own was written by the first run).
        if not incremental and write_project_readme(ws):
            if git is not None:
                _safe(lambda: git.commit("mgpt", "README: how to run and test the project"), notes)()
        reports = [m.payload for m in result.messages if isinstance(m.payload, TestReport)]
        report = reports[-1] if reports else None
        end = EndRecord(
            stop_reason=result.stop_reason, detail=result.detail, rounds=result.rounds,
            tests_passed=report is not None and report.ok,
            report=report.model_dump(mode="json") if report else None,
        )
        for rec in recorders:
            rec.append_record(end)
    finally:
        env.close()
        for rec in recorders:
            rec.close()
        await model.aclose()
    if git is not None and git.matched:
        notes.append(f"git cross-check: {git.matched} replayed step(s) made exactly their recorded commits")
    if git is not None and git.diverged:
        notes.append(f"history: {git.diverged}")
    if record is not None and previous is not None:
        Path(record).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(transcript, record)
    unused = list(getattr(model, "unused", []))
    if resumer is not None:
        done = set(resumer.replayed)
        unused = [k for k in unused if k not in done]
    return CompanyResult(
        run=result,
        workspace=root,
        files=ws.files(),
        report=report,
        transcript=transcript,
        log=mgpt_dir / "run.jsonl",
        unused_replay_calls=unused,
        replayed_calls=len(resumer.replayed) if resumer else 0,
        new_calls=len(resumer.made) if resumer else result.spend.calls,
        notes=notes,
        sandbox=limits.sandbox or "bwrap",
    )


def _safe(fn: Callable[..., Any], notes: list[str]) -> Callable[..., Any]:
    """History is best effort: a git failure becomes a note, never a failed run."""

    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except (GitError, OSError) as exc:
            if str(exc) not in notes:
                notes.append(f"history: {exc}")
            return None

    return call


def _replayed_reviews(model: Model) -> list:
    """Review decisions in a transcript being replayed (``--replay``): repeated as made."""
    transcript = getattr(model, "transcript", None)
    return list(getattr(transcript, "reviews", []) or [])


def _finished(previous: Transcript, root: Path, transcript: Path) -> CompanyResult:
    end = previous.end
    assert end is not None
    report = TestReport.model_validate(end.report) if end.report else None
    run = RunResult(
        stop_reason=end.stop_reason,  # type: ignore[arg-type]
        rounds=end.rounds, seconds=0.0, spend=Spend(), messages=[], detail=end.detail,
    )
    return CompanyResult(
        run=run, workspace=root, files=Workspace(root).files(), report=report,
        transcript=transcript, log=root / ".mgpt" / "run.jsonl", already_finished=True,
        notes=[f"this run already finished ({end.stop_reason}: {end.detail}); nothing was run again"],
    )

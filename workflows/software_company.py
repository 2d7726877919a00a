"""The software company SOP: five roles turn one idea into a project that runs.

:func:`run_company` hires the product manager, architect, project manager, engineer and
QA engineer on one bus and runs them through the shared run plumbing of
:mod:`.harness` (workspace, transcript, run log, git history, review, resume); it writes
the generated project's README and returns what happened. ``incremental=True`` extends
the project a workspace holds (:mod:`.incremental`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from mgpt.actions.documents import PRD, SystemDesign, TestReport
from mgpt.actions.incremental import MAP_BUDGET, ProjectState, scan_project
from mgpt.agents.budget import Budget, Spend
from mgpt.agents.environment import Environment
from mgpt.agents.team import RunResult, Team
from mgpt.llm.backends.base import Model
from mgpt.llm.backends.cost import PriceTable
from mgpt.llm.backends.replay import EndRecord, Transcript
from mgpt.memory.retrieval import Embed, RetrievalMemory
from mgpt.roles.software import software_roles
from mgpt.sandbox.isolation import Limits
from mgpt.sandbox.workspace import UnsafePathError, Workspace
from mgpt.workflows.harness import RunOptions, RunSession, WorkspaceNotEmpty, prepare_workspace
from mgpt.workflows.incremental import check_resumable, check_review, prepare_incremental

__all__ = [
    "CompanyOptions", "CompanyResult", "RunOptions", "WorkspaceNotEmpty", "build_team", "prepare_workspace",
    "run_company", "write_project_readme",
]


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

    @property
    def ok(self) -> bool:
        """The run did what it was asked: the project's tests pass."""
        return self.tests_passed


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
    split_fixes: bool = True,
    map_budget: int = MAP_BUDGET,
    parallel: int | None = None,
) -> Team:
    """The five roles on one bus, with the run's model, budget and workspace.

    Options (off by default; the number of model calls never changes): ``context_budget``
    caps the characters of earlier files' interfaces in WriteCode/WriteTests prompts, keeping
    the most relevant; ``recall`` (a folder, or a :class:`RetrievalMemory`) lets FixBug recall
    similar fixes from earlier runs and remembers its own; ``embed`` ranks by a trained
    embedder instead of BM25. ``incremental``: the project an incremental run extends (the
    roles then hold their steps' incremental variants). ``parallel``: how many model calls
    one step may make at once (None: the model's own ``parallel``). ``split_fixes``: FixBug
    fixes failures that touch no common file by separate calls at once (False: one call per
    round, as transcripts recorded before mgpt split fixes did).
    """
    if fix_rounds < 0:
        raise ValueError("fix_rounds must be >= 0")
    if parallel is not None and parallel < 1:
        raise ValueError("parallel must be at least 1 (1: one call at a time)")
    if context_budget is not None and context_budget < 0:
        raise ValueError("context_budget must be >= 0")
    settings = {"fix_rounds": fix_rounds, "limits": limits or Limits(), "prices": prices, "split_fixes": split_fixes}
    if context_budget is not None:
        settings["context_budget"] = context_budget
    if embed is not None:
        settings["embed"] = embed
    if parallel is not None:
        settings["parallel"] = parallel
    if recall is not None:
        settings["recall"] = recall if isinstance(recall, RetrievalMemory) else RetrievalMemory(recall, embed=embed)
    team = Team(
        model=model,
        env=env,
        budget=budget,
        workspace=workspace,
        settings={**settings, "incremental": incremental, "map_budget": map_budget},
    )
    team.hire(*software_roles(incremental=incremental is not None))
    return team


def split_fixes(session: RunSession) -> bool:
    """Whether FixBug may split a round's failures into separate calls: yes on a fresh run
    (its header says so), and on a resumed or replayed run only when its transcript says so.
    A transcript recorded before the split holds one fix call per round, and replaying it
    must ask for exactly the calls it holds."""
    recorded = session.previous if session.previous is not None else getattr(session.base, "transcript", None)
    if isinstance(recorded, Transcript):
        return bool(recorded.header.meta.get("split_fixes"))
    return True


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


@dataclass
class CompanyOptions:
    """The software company's own options (besides :class:`RunOptions`)."""

    #: how many times QA may send failing tests back to the engineer
    fix_rounds: int = 2
    #: cap the characters of earlier files' interfaces in WriteCode/WriteTests prompts
    context_budget: int | None = None
    #: a folder (or memory) of past fixes FixBug recalls and adds to
    recall: str | Path | RetrievalMemory | None = None
    #: rank context and recall with this embedder instead of BM25
    embed: Embed | None = None
    #: extend the project the workspace holds (``--inc``)
    incremental: bool = False
    #: the characters the map of the project's modules may take in prompts (``--inc``)
    map_budget: int = MAP_BUDGET
    #: model calls one step may make at once: files whose dependencies are written, tests
    #: per module, independent fixes (``--parallel``; None: what the backend serves well,
    #: ``Model.parallel``). The run's result is the same at any setting.
    parallel: int | None = None


async def run_company(
    idea: str | None,
    *,
    model: Model,
    options: RunOptions | None = None,
    company: CompanyOptions | None = None,
    **settings: Any,
) -> CompanyResult:
    """Run the software company on ``idea`` into ``options.workspace``.

    ``options`` (:class:`RunOptions`) says where and how the run goes, ``company``
    (:class:`CompanyOptions`) what the company does; the fields of either may also be given
    as keyword arguments (``run_company(idea, model=m, workspace="todo", fix_rounds=1)``).

    ``resume`` continues the run the workspace holds (``idea`` may then be ``None``):
    recorded model calls and review decisions are replayed, the rest made. ``review`` names
    the steps (``prd``, ``design``, ``tasks``, ``code``) that ``reviewer`` sees before the
    next role builds on them. ``sandbox`` is how generated code runs: checked before any
    model call, a run that cannot isolate is refused with one line saying what to do.

    ``incremental`` extends the project already in the workspace (``--inc``): a change
    request, a design change, tasks and code for the changed and new files only, new tests
    beside the old ones (which must still pass). Resuming an interrupted incremental run
    needs only ``resume`` (its transcript says it was incremental).
    """
    run_settings, company_settings = RunOptions.split(settings)
    unknown = set(company_settings) - {f.name for f in fields(CompanyOptions)}
    if unknown:
        raise TypeError(f"run_company() got unexpected options: {', '.join(sorted(unknown))}")
    options = replace(options or RunOptions(), **run_settings)
    company = replace(company or CompanyOptions(), **company_settings)
    session = RunSession.begin(model, options)
    incremental = company.incremental
    if session.previous is not None:
        incremental = check_resumable(session.previous.header, session.root, incremental=incremental)
        if session.finished is not None:
            await model.aclose()
            return _finished(session.previous, session.root, session.transcript)
    idea = session.resolve_idea(idea)
    if incremental:
        check_review(session.review_steps)
    project, note = _prepare(session, company, incremental)
    map_budget = company.map_budget
    split = split_fixes(session)
    meta = {"split_fixes": split, **({"incremental": True, "map_budget": map_budget} if incremental else {})}
    session.open(idea, note, meta=meta)
    map_budget = int(session.meta.get("map_budget") or map_budget)
    if incremental and project is None:
        # Resuming: the workspace is back at the run's first commit, the project as it was.
        project = scan_project(session.root, map_budget)
    team = build_team(
        session.model, session.root, budget=options.budget, fix_rounds=company.fix_rounds,
        limits=session.limits, prices=options.prices, env=session.env,
        context_budget=company.context_budget, recall=company.recall, embed=company.embed,
        incremental=project, map_budget=map_budget, parallel=company.parallel, split_fixes=split,
    )
    session.install_review(team.roles)
    try:
        result, report = await _run_team(team, idea, session, incremental)
    finally:
        await session.close()
    session.wrap_up()
    replayed, made = session.call_counts(result.spend.calls)
    return CompanyResult(
        run=result, workspace=session.root, files=Workspace(session.root).files(), report=report,
        transcript=session.transcript, log=session.log, unused_replay_calls=session.unused_replay_calls(),
        replayed_calls=replayed, new_calls=made, notes=session.notes, sandbox=session.limits.sandbox or "bwrap",
    )


def _prepare(session: RunSession, company: CompanyOptions, incremental: bool) -> tuple[ProjectState | None, str | None]:
    """The workspace made ready: the project to extend (``--inc``), or an empty folder.
    A resumed run's workspace is restored later, from its history."""
    if session.previous is not None:
        return None, None
    force = session.options.force or session.options.resume
    if incremental:
        return prepare_incremental(session.root, force=force, budget=company.map_budget)
    # A fresh run, or a resume of one killed before its first record: start over.
    return None, prepare_workspace(session.root, force=force)


async def _run_team(team: Team, idea: str, session: RunSession, incremental: bool) -> tuple[RunResult, TestReport | None]:
    """Run the team, write the project's README, and record the outcome."""
    result = await team.run(idea, max_rounds=session.options.max_rounds)
    ws = Workspace(session.root)
    # An incremental run leaves the project's README to the project (a plain project's
    # README, if any, is the user's; mgpt's own was written by the first run).
    if not incremental and write_project_readme(ws) and session.git is not None:
        session.safe(lambda: session.git.commit("mgpt", "README: how to run and test the project"))()
    reports = [m.payload for m in result.messages if isinstance(m.payload, TestReport)]
    report = reports[-1] if reports else None
    session.end(EndRecord(
        stop_reason=result.stop_reason, detail=result.detail, rounds=result.rounds,
        tests_passed=report is not None and report.ok,
        report=report.model_dump(mode="json") if report else None,
    ))
    return result, report


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

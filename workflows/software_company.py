"""The software company SOP: five roles turn one idea into a project that runs.

:func:`run_company` prepares the workspace (refusing a non-empty one unless told), wires
the team with its bounds, records every model call to ``.mgpt/transcript.jsonl`` (and to
``record`` when given), logs every event to ``.mgpt/run.jsonl``, writes the generated
project's README, and returns what happened.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mgpt.actions.documents import PRD, SystemDesign, TestReport
from mgpt.actions.sandbox import Limits
from mgpt.actions.workspace import Workspace
from mgpt.agents.budget import Budget
from mgpt.agents.environment import Environment
from mgpt.agents.errors import MgptError
from mgpt.agents.runlog import Event, RunLog
from mgpt.agents.team import RunResult, Team
from mgpt.llm.base import Model
from mgpt.llm.cost import PriceTable, priced_as, require_price
from mgpt.llm.replay import RecordingModel, TranscriptHeader
from mgpt.memory.retrieval import Embed, RetrievalMemory
from mgpt.roles.software import Architect, Engineer, ProductManager, ProjectManager, QaEngineer

from mgpt import __version__


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
                f"workspace {workspace} is not empty; choose another with --workspace, or pass "
                "--force to write into it anyway (a workspace holding only the files of a failed "
                "run is reused without --force)"
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
) -> Team:
    """The five roles on one bus, with the run's model, budget and workspace.

    Options (off by default; the number of model calls never changes): ``context_budget``
    caps the characters of earlier files' interfaces in WriteCode/WriteTests prompts, keeping
    the most relevant; ``recall`` (a folder, or a :class:`RetrievalMemory`) lets FixBug recall
    similar fixes from earlier runs and remembers its own; ``embed`` ranks by a trained
    embedder instead of BM25.
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
        settings=settings,
    )
    team.hire(ProductManager(), Architect(), ProjectManager(), Engineer(), QaEngineer())
    return team


def _project_readme(workspace: Workspace) -> str | None:
    docs = workspace.root / "docs"
    try:
        prd = PRD.model_validate_json((docs / "prd.json").read_text(encoding="utf-8"))
        design = SystemDesign.model_validate_json((docs / "design.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = "\n".join(f"- `{f.path}`: {f.purpose}" for f in design.files)
    has_main = any(f.path == f"{prd.project_name}/__main__.py" for f in design.files)
    run = f"\n## Run\n\n```\npython -m {prd.project_name} --help\n```\n" if has_main else ""
    return (
        f"# {prd.project_name}\n\n{prd.summary}\n\n## Files\n{files}\n{run}\n## Test\n\n"
        "```\npython -m pytest -q\n```\n\nDocuments: `docs/prd.md`, `docs/design.md`, "
        "`docs/tasks.md`, `docs/qa_report.md`. Generated by mgpt.\n"
    )


async def run_company(
    idea: str,
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
    context_budget: int | None = None,
    recall: str | Path | RetrievalMemory | None = None,
    embed: Embed | None = None,
) -> CompanyResult:
    """Run the software company on ``idea`` into ``workspace``."""
    if not idea.strip():
        raise MgptError("the idea is empty: say what to build, e.g. mgpt run \"a todo CLI\"")
    root = Path(workspace).resolve()
    if budget is not None and budget.max_cost is not None:
        require_price(priced_as(model), prices or PriceTable())  # refuse before touching the workspace
    note = prepare_workspace(root, force=force)
    mgpt_dir = root / ".mgpt"
    transcript = mgpt_dir / "transcript.jsonl"
    header = TranscriptHeader(idea=idea, model=priced_as(model), meta={"mgpt": __version__})
    recorded: Model = RecordingModel(model, transcript, header=header)
    if record is not None:
        recorded = RecordingModel(recorded, record, header=header)
    env = Environment(RunLog(mgpt_dir / "run.jsonl"))
    if on_event is not None:
        env.listen(on_event)
    if note:
        env.emit(Event(kind="workspace", detail=note))
    team = build_team(
        recorded, root, budget=budget, fix_rounds=fix_rounds, limits=limits, prices=prices, env=env,
        context_budget=context_budget, recall=recall, embed=embed,
    )
    try:
        result = await team.run(idea, max_rounds=max_rounds)
    finally:
        env.close()
        await model.aclose()
    ws = Workspace(root)
    readme = _project_readme(ws)
    if readme is not None and not ws.exists("README.md"):
        ws.write("README.md", readme)
    reports = [m.payload for m in result.messages if isinstance(m.payload, TestReport)]
    unused = list(getattr(model, "unused", []))
    return CompanyResult(
        run=result,
        workspace=root,
        files=ws.files(),
        report=reports[-1] if reports else None,
        transcript=transcript,
        log=mgpt_dir / "run.jsonl",
        unused_replay_calls=unused,
    )

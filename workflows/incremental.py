"""Incremental runs: a new run in a workspace that already holds a project (``--inc``).

:func:`prepare_incremental` checks there is a project to extend, keeps the previous run's
records (``.mgpt/`` moves to ``.mgpt/runs/<n>/``: transcript, run log, report; the project
venv stays where it is, a cache), and reads the project (:func:`~mgpt.actions.incremental.scan_project`).
The run itself is the software company with ``settings["incremental"]`` set
(:mod:`mgpt.actions.incremental` says what each role then does); its git commits go on top
of the existing history.

Resuming an interrupted incremental run (``--resume``, with or without ``--inc``) works the
way any resume does, because the run's first commit is the project as it was before the
change: the workspace is reset to it and the recorded calls are replayed. Without that
commit (no git) it is refused: the changed files could not be put back.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mgpt.actions.incremental import ProjectState, is_test_file, project_files, scan_project
from mgpt.agents.errors import MgptError
from mgpt.llm.backends.replay import Transcript, TranscriptHeader


class IncrementalRefused(MgptError):
    """``--inc`` cannot run here (no project to extend, an unfinished run in the way)."""


def _runs_dir(mgpt_dir: Path) -> Path:
    return mgpt_dir / "runs"


def archive_previous_run(root: Path) -> Path | None:
    """Move the previous run's records to ``.mgpt/runs/<n>/`` (n = 1, 2, ...); returns
    that folder, or None when there was nothing to keep. The project venv is not moved."""
    mgpt_dir = root / ".mgpt"
    if not mgpt_dir.is_dir():
        return None
    entries = [p for p in mgpt_dir.iterdir() if p.name not in ("runs", "venv")]
    if not entries:
        return None
    runs = _runs_dir(mgpt_dir)
    runs.mkdir(exist_ok=True)
    taken = [int(p.name) for p in runs.iterdir() if p.name.isdigit()]
    target = runs / str(max(taken, default=0) + 1)
    target.mkdir()
    for entry in entries:
        shutil.move(str(entry), str(target / entry.name))
    return target


def prepare_incremental(root: Path, *, force: bool = False, budget: int) -> tuple[ProjectState, str]:
    """Check ``root`` holds a project to extend, keep the last run's records, read the
    project. Returns its state and a note for the run log."""
    if not root.is_dir():
        raise IncrementalRefused(f"--inc extends an existing project, but {root} does not exist; "
                                 "start the project with mgpt run (without --inc)")
    files = project_files(root)
    if not any(f.endswith(".py") and not is_test_file(f) for f in files):
        raise IncrementalRefused(f"--inc extends an existing project, but {root} holds no Python "
                                 "source files; start the project with mgpt run (without --inc)")
    transcript = root / ".mgpt" / "transcript.jsonl"
    if transcript.is_file() and not force:
        try:
            last = Transcript.load(transcript, resuming=True)
        except (MgptError, OSError, ValueError):
            last = None
        if last is not None and last.end is None and (last.calls or last.header.idea):
            raise IncrementalRefused(
                f"the last run in {root} did not finish: finish it with --resume first, or pass "
                "--force to extend the project as it stands (its records are kept in .mgpt/runs/)"
            )
    kept = archive_previous_run(root)
    project = scan_project(root, budget)
    origin = ("mgpt's documents (docs/prd.json, docs/design.json)" if project.made_by_mgpt
              else f"a map of its code ({len(project.map)} characters)")
    note = (f"extending {project.project_name}: change {project.number:03d}, working from {origin}; "
            f"{len(project.old_tests)} old test file(s) kept")
    if kept is not None:
        note += f"; the previous run's records are in {kept.relative_to(root)}"
    return project, note


def check_resumable(header: TranscriptHeader, root: Path, *, incremental: bool) -> bool:
    """Whether the run to resume is incremental; refuses what cannot be resumed exactly."""
    was = bool(header.meta.get("incremental"))
    if incremental and not was:
        raise IncrementalRefused("the run to resume was not an incremental run: resume it without --inc")
    if was and not (header.meta.get("git_base") and (root / ".git").is_dir() and shutil.which("git")):
        raise IncrementalRefused(
            "this incremental run cannot be resumed: it has no git history to put the changed "
            "files back from; start the change again with --inc --force"
        )
    return was


def check_review(steps: list[str]) -> None:
    """Review of an incremental run: the task list and the code are the same documents as
    in a first run; the change request and design change are not (yet) reviewable."""
    odd = [s for s in steps if s in ("prd", "design")]
    if odd:
        raise IncrementalRefused(
            f"--review {','.join(odd)} is not available with --inc (the change request and design "
            "change are not reviewable yet): review tasks and/or code, or drop --review"
        )

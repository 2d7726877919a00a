"""Resume: continue an interrupted run exactly, without paying twice for a model call.

The workspace's transcript (``.mgpt/transcript.jsonl``) is the run's durable state: every
model answer, every review decision and, last, the outcome, each an fsync'd line. A
resumed run puts the workspace back to where the run started (:func:`restore_workspace`)
and runs again from the start with a :class:`~mgpt.llm.backends.replay.ResumeModel`: the calls
already made are answered from the transcript, so every role takes the same path and
writes the same files, and the first call not recorded goes to the real model. This is
exact because replay is keyed by (role, action, turn): which of two concurrent roles
reaches the model first does not change what either is answered, and each role's turns
are numbered by its own calls.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mgpt.sandbox.workspace import RESERVED, Workspace
from mgpt.agents.errors import MgptError
from mgpt.llm.backends.replay import Transcript, TranscriptHeader

from mgpt.workflows.history import GitError, GitHistory


class ResumeRefused(MgptError):
    """The run cannot be resumed as asked (nothing to resume, another idea or model)."""


def transcript_path(root: Path) -> Path:
    return root / ".mgpt" / "transcript.jsonl"


def load_for_resume(root: Path) -> Transcript | None:
    """The interrupted run's transcript, or ``None`` when the run never wrote its header
    (it was killed before its first record: there is nothing to replay)."""
    path = transcript_path(root)
    if not path.is_file():
        if not root.is_dir():
            raise ResumeRefused(f"nothing to resume: {root} does not exist; start a run without --resume")
        raise ResumeRefused(
            f"nothing to resume in {root}: it has no .mgpt/transcript.jsonl (start a run "
            "without --resume)"
        )
    transcript = Transcript.load(path, resuming=True)
    if not transcript.header.idea and not transcript.calls:
        return None
    return transcript


def check_same_run(header: TranscriptHeader, *, idea: str, model_name: str, force: bool) -> list[str]:
    """Refuse (unless ``force``) to resume with another idea or model; returns notes on
    what ``force`` let through."""
    notes = []
    if idea.strip() != header.idea.strip():
        if not force:
            raise ResumeRefused(
                f"this run was started for another idea ({header.idea[:80]!r}); resume without "
                "an idea, or pass --force to continue with the new one"
            )
        notes.append(f"idea changed from {header.idea[:80]!r} (forced)")
    used = header.meta.get("model_name") or header.model
    if model_name != used:
        if not force:
            raise ResumeRefused(
                f"this run used model {used!r}, not {model_name!r}; resume with the same "
                "model, or pass --force to answer the remaining calls with the new one"
            )
        notes.append(f"model changed from {used!r} to {model_name!r} (forced)")
    return notes


def restore_workspace(
    root: Path, header: TranscriptHeader, history: GitHistory | None, *, stopped: bool = False
) -> tuple[str, bool]:
    """Put the workspace back to how the run found it; the replay then rewrites every file
    the run wrote, in the same order. Returns a note saying how, and whether the git
    history was used (it is not when the run had none or it is gone)."""
    base = header.meta.get("git_base")
    note = ""
    used_git = False
    if history is not None and base:
        try:
            history.save_leftovers()
            history.restore(base, stopped=stopped)
            note, used_git = f"workspace reset to the run's first commit {base[:10]}", True
        except GitError as exc:
            note = f"no version history on resume ({exc}); "
    if not used_git:
        baseline = set(header.meta.get("baseline") or [])
        removed = [f for f in Workspace(root).files() if f not in baseline]
        for rel in removed:
            (root / rel).unlink(missing_ok=True)
        note += f"removed {len(removed)} file(s) the run wrote; they are written again as replayed"
    # Half-written temp files (a kill inside an atomic write) and stale caches.
    for path in sorted(root.rglob("*"), reverse=True):
        rel = path.relative_to(root)
        if rel.parts[0] in RESERVED:
            continue
        if path.is_dir() and path.name in ("__pycache__", ".pytest_cache"):
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.name.startswith(".tmp-"):
            path.unlink(missing_ok=True)
        elif path.is_dir() and not used_git and not any(path.iterdir()):
            path.rmdir()
    return note, used_git

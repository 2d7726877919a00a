"""Version history: the workspace is a git repository and every step is a commit by its role.

``git log`` then tells the run's story (the PRD by ProductManager, the design by
Architect, ... each fix round by Engineer) and ``git diff`` shows what a fix round changed.
mgpt's own ``.mgpt/`` folder and caches stay out of the history (``.git/info/exclude``, so
the project's own ``.gitignore`` is left to it). Commits never depend on the user's git
configuration: name and email are given per command, signing and hooks are off.

On resume the history is also a cross-check: the working tree is put back to the run's
first commit, and each step replayed must produce exactly the tree its recorded commit
holds; when it does, the branch simply moves to that commit again (same hashes, same
dates), when it does not, the divergence is reported and new commits are made.

Without ``git`` on the PATH the run goes on without history (:attr:`GitHistory.note`
says so).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from mgpt.agents.runlog import Event

#: Kept out of the project's history: mgpt's records, caches, half-written temp files.
EXCLUDE = (".mgpt/", "__pycache__/", ".pytest_cache/", "*.pyc", ".tmp-*")

EMAIL = "mgpt@localhost"


class GitError(RuntimeError):
    """A git command failed (the run goes on; the history is best effort)."""


def git_available() -> bool:
    return shutil.which("git") is not None


@dataclass
class GitHistory:
    """Commits a workspace's changes, one per step, authored by the role that made them."""

    root: Path
    #: Commits recorded by the interrupted run, still to be matched on resume.
    pending: list[str] = field(default_factory=list)
    #: Set when a replayed step's tree differed from its recorded commit.
    diverged: str = ""
    matched: int = 0
    _running: dict[str, int] = field(default_factory=dict)
    _finished: list[tuple[str, str]] = field(default_factory=list)
    _fix_rounds: int = 0

    # -- plumbing ----------------------------------------------------------------------------

    def git(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        base = [
            "git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "commit.gpgSign=false",
            "-c", "tag.gpgSign=false", "-c", "core.autocrlf=false", "-c", "init.defaultBranch=main",
            "-c", "user.name=mgpt", "-c", f"user.email={EMAIL}",
        ]
        full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_CONFIG_GLOBAL": os.devnull, **(env or {})}
        try:
            proc = subprocess.run(
                [*base, *args], cwd=self.root, env=full_env, capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GitError(f"git {' '.join(args)}: {exc}") from None
        if check and proc.returncode != 0:
            raise GitError(f"git {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout.strip()

    def head(self) -> str | None:
        out = self.git("rev-parse", "--verify", "-q", "HEAD", check=False)
        return out or None

    # -- the run's life ----------------------------------------------------------------------

    def start(self, idea: str) -> str:
        """Make the workspace a repository (if it is not one) and commit the starting point:
        what was there before the run. Returns that commit, the run's base."""
        if not (self.root / ".git").exists():
            self.git("init", "-q")
        exclude = self.root / ".git" / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        present = exclude.read_text(encoding="utf-8").splitlines() if exclude.is_file() else []
        missing = [p for p in EXCLUDE if p not in present]
        if missing:
            with exclude.open("a", encoding="utf-8") as f:
                f.write("\n".join(["# mgpt", *missing]) + "\n")
        self.git("add", "-A")
        first = idea.strip().splitlines()[0][:72] if idea.strip() else "a run"
        self._commit("mgpt", f"Start run: {first}", allow_empty=True)
        return self.head() or ""

    def save_leftovers(self) -> str | None:
        """Keep what the interrupted run (or a person) left uncommitted as a stash before
        the reset, so nothing in the working tree is lost (``git stash list``)."""
        lock = self.root / ".git" / "index.lock"
        if lock.exists():  # left by a git command the kill interrupted
            lock.unlink()
        if not self.head() or not self.git("status", "--porcelain", check=False):
            return None
        self.git("stash", "push", "-q", "--include-untracked", "-m",
                 "mgpt resume: the workspace as the interrupted run left it",
                 env={"GIT_AUTHOR_NAME": "mgpt", "GIT_AUTHOR_EMAIL": EMAIL,
                      "GIT_COMMITTER_NAME": "mgpt", "GIT_COMMITTER_EMAIL": EMAIL})
        return self.git("rev-parse", "-q", "--verify", "refs/stash", check=False) or None

    def restore(self, base: str, *, stopped: bool = False) -> None:
        """Resume: remember the commits made since ``base``, then put the branch and the
        working tree back to ``base`` (mgpt's ignored records are kept). ``stopped``: the
        run ended at a bound (budget, rounds); its closing README commit is not a step the
        continued run will make at that point, so it is not expected again."""
        lock = self.root / ".git" / "index.lock"
        if lock.exists():  # left by a git command the kill interrupted
            lock.unlink()
        self.git("cat-file", "-e", f"{base}^{{commit}}")
        head = self.head()
        self.pending = self.git("rev-list", "--reverse", f"{base}..{head}").split() if head else []
        if stopped and self.pending and self.git("log", "-1", "--format=%s", self.pending[-1]).startswith("README:"):
            self.pending.pop()
        self.git("reset", "-q", "--hard", base)
        self.git("clean", "-q", "-fd")

    def on_event(self, event: Event) -> None:
        """Bus listener: commit when no action is in progress, authored by the roles whose
        actions ended since the last commit."""
        if event.kind == "action_start":
            self._running[event.role] = self._running.get(event.role, 0) + 1
        elif event.kind == "action_end":
            self._running[event.role] = max(0, self._running.get(event.role, 0) - 1)
            self._finished.append((event.role, event.detail))
            if not any(self._running.values()):
                self.commit_step()

    def commit_step(self) -> str | None:
        finished, self._finished = self._finished, []
        if not finished:
            return None
        role, action = finished[0]
        if action == "FixBug":
            self._fix_rounds += 1
        return self.commit(role, _message(finished, self._fix_rounds))

    def commit(self, author: str, message: str) -> str | None:
        """Commit every change as ``author``; ``None`` when nothing changed, else the
        commit (its hash when resuming, ``"HEAD"`` otherwise: one git call fewer)."""
        self.git("add", "-A")
        if self.pending and not self.diverged:
            if not self.git("status", "--porcelain", check=False):
                return None
            # Resuming: this step was committed before the kill; check the replay made the
            # same tree, and if so take the recorded commit back.
            expected = self.pending[0]
            tree = self.git("write-tree")
            if tree == self.git("rev-parse", f"{expected}^{{tree}}"):
                self.pending.pop(0)
                self.git("reset", "-q", "--soft", expected)
                self.matched += 1
                return expected
            self.diverged = (
                f"the replayed step {message.splitlines()[0]!r} made a different tree from the "
                f"recorded commit {expected[:10]}"
            )
        return self._commit(author, message)

    def _commit(self, author: str, message: str, *, allow_empty: bool = False) -> str | None:
        env = {
            "GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": EMAIL,
            "GIT_COMMITTER_NAME": "mgpt", "GIT_COMMITTER_EMAIL": EMAIL,
        }
        args = ["commit", "-q", "--no-verify", "--no-gpg-sign", "-m", message]
        if allow_empty:
            args.insert(1, "--allow-empty")
        try:
            self.git(*args, env=env)
        except GitError as exc:
            if "nothing to commit" in str(exc) or "nothing added to commit" in str(exc):
                return None
            raise
        return "HEAD"


def _message(finished: list[tuple[str, str]], fix_round: int) -> str:
    role, action = finished[0]
    subject = {
        "WritePRD": "WritePRD: the product requirements",
        "WriteDesign": "WriteDesign: the system design",
        "WriteTasks": "WriteTasks: the task list",
        "WriteCode": "WriteCode: the code",
        "WriteTests": "WriteTests: the tests",
        "RunTests": "RunTests: the QA report",
        "FixBug": f"FixBug: fix round {fix_round}",
    }.get(action, action)
    others = [f"{r}: {a}" for r, a in finished[1:]]
    body = ("\n\nAlso in this step:\n" + "\n".join(f"- {o}" for o in others)) if others else ""
    coauthors = sorted({r for r, _ in finished[1:] if r != role})
    trailers = "".join(f"\nCo-authored-by: {r} <{EMAIL}>" for r in coauthors)
    return subject + body + (("\n" + trailers) if trailers else "")

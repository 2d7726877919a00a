"""The workspace a run writes into, and the checks on paths a model proposes.

A path from a model is untrusted. It is refused — with nothing written — if it is absolute,
climbs out with ``..``, passes through a link that leads out of the workspace, or points
into mgpt's own ``.mgpt/`` folder.

Files are written as a normal ``open`` would create them (mode ``0666`` less the umask:
``0644`` typically; an overwritten file keeps its mode), atomically, and each write is noted
in ``.mgpt/files.jsonl`` with a hash of what was written. That list is how a later run knows
that a workspace holds only the files of a failed attempt (:meth:`Workspace.failed_attempt`)
and may start again there without ``--force``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mgpt.agents.errors import MgptError

RESERVED = (".mgpt", ".git")
#: The most :meth:`Workspace.read` reads of one file (a generated file is far smaller).
READ_LIMIT = 8 * 1024 * 1024
#: Where each file an mgpt run wrote is noted, one JSON object a line: {"path", "sha256"}.
MANIFEST = ".mgpt/files.jsonl"
RUN_LOG = ".mgpt/run.jsonl"
#: Attempts at a fresh temporary name before giving up (a name clash is astronomically rare).
_TEMP_ATTEMPTS = 100


class UnsafePathError(MgptError):
    """A proposed file path would write outside the workspace (or into its reserved parts)."""


@dataclass
class FailedAttempt:
    """A workspace's record of a run that failed: the error it logged and the files it wrote."""

    error: str
    files: list[str]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _create_temp(directory: Path, suffix: str, mode: int) -> tuple[int, Path]:
    """A new file next to the target, opened for writing with ``mode`` (the umask applies)."""
    for _ in range(_TEMP_ATTEMPTS):
        tmp = directory / f".tmp-{secrets.token_hex(6)}{suffix}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {directory}")


class Workspace:
    """A folder the run owns. All writes go through :meth:`write`."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def check(self, rel: str) -> Path:
        """The absolute path for ``rel`` inside the workspace, or :class:`UnsafePathError`."""
        if not isinstance(rel, str) or not rel.strip():
            raise UnsafePathError("refused an empty file path")
        if "\x00" in rel:
            raise UnsafePathError(f"refused file path {rel!r}: it contains a NUL byte")
        text = rel.strip().replace("\\", "/")
        if text.startswith("/") or re.match(r"^[A-Za-z]:", text) or text.startswith("~"):
            raise UnsafePathError(f"refused file path {rel!r}: it is absolute; paths must be relative to the workspace")
        parts = PurePosixPath(text).parts
        if any(p == ".." for p in parts):
            raise UnsafePathError(f"refused file path {rel!r}: it climbs out of the workspace with '..'")
        parts = tuple(p for p in parts if p != ".")
        if not parts:
            raise UnsafePathError(f"refused file path {rel!r}: it names no file")
        if parts[0] in RESERVED:
            raise UnsafePathError(f"refused file path {rel!r}: {parts[0]}/ is reserved for mgpt")
        # Walk the components: any link on the way must stay inside the workspace.
        current = self.root
        for part in parts:
            current = current / part
            if current.is_symlink():
                target = current.resolve()
                if target != self.root and self.root not in target.parents:
                    raise UnsafePathError(
                        f"refused file path {rel!r}: {current.relative_to(self.root)} is a link "
                        "that leads out of the workspace"
                    )
        final = self.root.joinpath(*parts)
        resolved = final.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise UnsafePathError(f"refused file path {rel!r}: it resolves outside the workspace")
        return final

    def write(self, rel: str, text: str) -> Path:
        """Write ``text`` to ``rel`` atomically (a temp file, then a rename), with the
        permissions a plain ``open`` gives, and note it in the manifest."""
        path = self.check(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        try:
            mode = path.stat().st_mode & 0o7777  # overwriting keeps the file's mode, as open() does
        except FileNotFoundError:
            mode = 0o666
        fd, tmp = _create_temp(path.parent, path.suffix, mode)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            if mode != 0o666:
                os.chmod(tmp, mode)  # the umask applied to it; an existing file's mode is exact
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._note(path, data)
        return path

    def _note(self, path: Path, data: bytes) -> None:
        manifest = self.root / MANIFEST
        manifest.parent.mkdir(parents=True, exist_ok=True)
        entry = {"path": path.relative_to(self.root).as_posix(), "sha256": _sha256(data)}
        with manifest.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def written(self) -> dict[str, str]:
        """The files mgpt runs wrote here, with the hash of their last content."""
        manifest = self.root / MANIFEST
        out: dict[str, str] = {}
        try:
            lines = manifest.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return out
        for line in lines:
            try:
                entry = json.loads(line)
                out[str(entry["path"])] = str(entry["sha256"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line from a killed run
        return out

    def failed_attempt(self) -> FailedAttempt | None:
        """The failed run this workspace holds nothing but the files of, or None.

        True when the run log's last event is an ``error`` and every project file here is
        one that run wrote, unchanged since (so clearing them loses nothing of the user's).
        """
        from mgpt.agents.runlog import read_log

        log = self.root / RUN_LOG
        try:
            events = list(read_log(log))
        except (OSError, ValueError):
            return None
        if not events or events[-1].kind != "error":
            return None
        written = self.written()
        files = self.files()
        for rel in files:
            try:
                same = written.get(rel) == _sha256((self.root / rel).read_bytes())
            except OSError:
                same = False
            if not same:
                return None
        return FailedAttempt(error=events[-1].detail, files=files)

    def clear(self, files: list[str]) -> None:
        """Remove ``files`` (relative paths), the folders they leave empty, and ``.mgpt/``."""
        import shutil

        for rel in files:
            (self.root / rel).unlink(missing_ok=True)
        folders = {p for rel in files for p in (self.root / rel).parents if self.root in p.parents}
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            for cache in ("__pycache__", ".pytest_cache"):
                shutil.rmtree(folder / cache, ignore_errors=True)
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty: something of the user's, or a cache; leave it
        for cache in ("__pycache__", ".pytest_cache"):
            shutil.rmtree(self.root / cache, ignore_errors=True)
        shutil.rmtree(self.root / ".mgpt", ignore_errors=True)

    def read(self, rel: str, *, limit: int = READ_LIMIT) -> str:
        """The text of the regular file ``rel``. Generated code may have replaced any file
        with a link, a FIFO or a device while it ran: a link out of the workspace is
        refused by :meth:`check`, anything but a regular file (which could block or never
        end) and anything over ``limit`` bytes by :class:`UnsafePathError`."""
        path = self.check(rel)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UnsafePathError(f"refused to read {rel!r}: it is not a regular file")
            if info.st_size > limit:
                raise UnsafePathError(f"refused to read {rel!r}: {info.st_size} bytes, over the {limit}-byte limit")
            data = f.read(limit + 1)
        if len(data) > limit:
            raise UnsafePathError(f"refused to read {rel!r}: over the {limit}-byte limit")
        return data.decode("utf-8", errors="replace")

    def exists(self, rel: str) -> bool:
        try:
            return self.check(rel).is_file()
        except UnsafePathError:
            return False

    def files(self) -> list[str]:
        """Relative paths of the project's files (mgpt's own folders and caches left out)."""
        out = []
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root)
            if rel.parts[0] in RESERVED or "__pycache__" in rel.parts or ".pytest_cache" in rel.parts:
                continue
            if path.is_file():
                out.append(rel.as_posix())
        return out

"""The workspace a run writes into, and the checks on paths a model proposes.

A path from a model is untrusted. It is refused — with nothing written — if it is absolute,
climbs out with ``..``, passes through a link that leads out of the workspace, or points
into mgpt's own ``.mgpt/`` folder.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path, PurePosixPath

from mgpt.agents.errors import MgptError

RESERVED = (".mgpt", ".git")


class UnsafePathError(MgptError):
    """A proposed file path would write outside the workspace (or into its reserved parts)."""


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
        """Write ``text`` to ``rel`` atomically (a temp file, then a rename)."""
        path = self.check(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def read(self, rel: str) -> str:
        return self.check(rel).read_text(encoding="utf-8")

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

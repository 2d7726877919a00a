"""The docs site's build hooks (`mkdocs.yml` names this file twice).

1. An MkDocs hook, ``on_config``: the API reference documents *this* checkout. The package
   `mgpt` is the repository root itself (``package-dir = {"mgpt" = "."}``), and a folder
   named ``mgpt`` is what griffe looks for, so the hook links a temporary ``mgpt`` to the
   root and puts its folder first in mkdocstrings' search paths. Without it, griffe would
   find whichever ``mgpt`` is installed (an editable install may point at another
   checkout). The link lives outside the repository: griffe walks packages following
   links, and a link to the root inside the root would be a loop.
2. A griffe extension, :class:`SphinxRoles`: an attribute's ``#:`` comment becomes its
   docstring, as Sphinx reads it; and mgpt's docstrings use Sphinx roles
   (``:class:`~mgpt.llm.Model```) and reST literal blocks (``Example::``), which Markdown
   would print as they are. Roles become code spans that link where the target is
   documented (an *optional* cross-reference: no warning where it is not), ``::`` a
   colon, and reST simple tables (``====  ====`` rules) a preformatted block.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from pathlib import Path

from mkdocs.plugins import event_priority

try:  # griffe is there whenever mkdocstrings-python is (the [docs] extra)
    from griffe import Docstring, Extension, NameResolutionError
except ImportError:  # pragma: no cover - imported as an MkDocs hook without griffe
    Docstring, Extension, NameResolutionError = None, object, LookupError


@event_priority(100)  # before mkdocstrings' own on_config, which creates the handler
def on_config(config):
    """Point mkdocstrings' python handler at this checkout (see the module docstring)."""
    root = Path(config.config_file_path).resolve().parent
    link_dir = Path(tempfile.mkdtemp(prefix="mgpt-docs-"))
    atexit.register(shutil.rmtree, link_dir, ignore_errors=True)
    (link_dir / "mgpt").symlink_to(root, target_is_directory=True)
    handlers = config.plugins["mkdocstrings"].config.handlers
    python = handlers.setdefault("python", {})
    python["paths"] = [str(link_dir), *python.get("paths", [])]
    return config


_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj):`(~?)([\w.]+)(\(\))?`")
_RULE = re.compile(r"^\s*=+(?: +=+)+\s*$")


class SphinxRoles(Extension):
    """Rewrite reST markup in docstrings into Markdown mkdocstrings renders."""

    def on_object(self, *, obj, **kwargs) -> None:
        if obj.docstring is None and obj.is_attribute:
            obj.docstring = _comment_docstring(obj)
        if obj.docstring is None:
            return
        parts = re.split(r"(^```.*?^```$)", _fence_simple_tables(obj.docstring.value), flags=re.M | re.S)
        for k in range(0, len(parts), 2):  # even parts: prose outside the fenced blocks
            text = _ROLE.sub(lambda m: self._role(obj, m), parts[k])
            parts[k] = re.sub(r"(\S)::$", r"\1:", text, flags=re.MULTILINE)
        obj.docstring.value = "".join(parts)

    @staticmethod
    def _role(obj, match: re.Match) -> str:
        short, target, call = match.group(1), match.group(2), match.group(3) or ""
        label = (target.rsplit(".", 1)[-1] if short else target) + call
        full = target if target.startswith("mgpt.") else _resolve(obj, target)
        if full is None:
            return f"`{label}`"
        return f'<autoref identifier="{full}" optional><code>{label}</code></autoref>'


def _comment_docstring(attr):
    """An attribute's ``#:`` comment lines (Sphinx's way to document a constant or field)
    as its docstring, or None."""
    try:
        lines = attr.lines_collection[attr.filepath]
    except (KeyError, AttributeError, TypeError):
        return None
    comment, n = [], (attr.lineno or 0) - 2  # the line above the assignment, 0-based
    while n >= 0 and lines[n].strip().startswith("#:"):
        comment.insert(0, lines[n].strip()[2:].strip())
        n -= 1
    return Docstring("\n".join(comment), parent=attr) if comment else None


def _resolve(obj, name: str) -> str | None:
    """The full path of ``name`` seen from ``obj``'s scope, or None."""
    head, _, rest = name.partition(".")
    scope = obj
    while scope is not None:
        try:
            base = scope.resolve(head)
        except (NameResolutionError, AttributeError, KeyError, ValueError):
            scope = scope.parent
            continue
        return f"{base}.{rest}" if rest else base
    return None


def _fence_simple_tables(text: str) -> str:
    """Put each reST simple table (``====  ====`` rules above, maybe under its header, and
    below) in a preformatted block, without its reST markup."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        end = _table_end(lines, i) if _RULE.match(lines[i]) else None
        if end is None:
            out.append(lines[i])
            i += 1
        else:
            second = re.search(r"=+ +(=)", lines[i]).start(1)  # where the second column starts
            out += ["```text", *(_plain(line, second) for line in lines[i:end + 1]), "```"]
            i = end + 1
    return "\n".join(out)


def _plain(line: str, second: int) -> str:
    """A table line without markup: ````x```` -> ``x``, ``:class:`~a.B``` -> ``B``, its
    second column still starting at ``second``."""
    def strip(text: str) -> str:
        text = _ROLE.sub(lambda m: (m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2)) + (m.group(3) or ""), text)
        return re.sub(r"``([^`]+)``", r"\1", text)

    if _RULE.match(line) or len(line) <= second:
        return strip(line)
    return strip(line[:second]).rstrip().ljust(second) + strip(line[second:])


def _table_end(lines: list[str], start: int) -> int | None:
    """The closing rule of the table opened at ``start``: a rule followed by a blank line
    or the end; None if there is none."""
    for j in range(start + 1, len(lines)):
        if _RULE.match(lines[j]) and (j + 1 == len(lines) or not lines[j + 1].strip()):
            return j
        if not lines[j].strip():
            return None
    return None

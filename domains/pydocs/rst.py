"""reStructuredText as the reader sees it: roles, directives and markup turned into plain text.

Sphinx renders ``:func:`sorted``` as "sorted()", ``.. versionadded:: 3.2`` as "New in
version 3.2.", and drops index entries, labels and comments. :func:`rst_to_text` does the
same, closely enough that a sentence a writer quotes from a passage can be found again in
it, and that a HOWTO can be scored against a Markdown text (ROUGE, METEOR) without its
markup counting as words. It is not a full reST parser: it reads what the Python docs use.
"""

from __future__ import annotations

import re

__all__ = ["API_DIRECTIVES", "clean_inline", "is_underline", "rst_to_text"]

#: Directives that document one API object (``.. function:: sorted(iterable, ...)``).
API_DIRECTIVES = (
    "function", "method", "class", "attribute", "data", "exception", "decorator", "classmethod",
    "staticmethod", "coroutinefunction", "coroutinemethod", "abstractmethod", "decoratormethod", "property",
)
#: Directives whose line and indented body say nothing to a reader.
_DROPPED = {
    "index", "testsetup", "testcleanup", "toctree", "highlight", "tabularcolumns", "include", "literalinclude",
    "contents", "moduleauthor", "sectionauthor", "module", "currentmodule", "only", "raw", "audit-event",
    "impl-detail", "productionlist", "opcode", "cmdoption", "pdbcommand", "program", "option", "envvar",
    "describe", "rubric", "sidebar", "figure", "image", "csv-table", "list-table", "table", "glossary",
}
#: Directives shown as a label before their body.
_LABELLED = {"note": "Note:", "warning": "Warning:", "seealso": "See also:", "important": "Important:",
             "tip": "Tip:", "caution": "Caution:", "attention": "Attention:", "hint": "Hint:"}
_VERSIONED = {"versionadded": "New in version {}.", "versionchanged": "Changed in version {}.",
              "deprecated": "Deprecated since version {}.", "deprecated-removed": "Deprecated since version {}."}

_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+(?:py:)?([\w-]+)::\s*(.*)$")
_COMMENT = re.compile(r"^(\s*)\.\.(\s|$)")
_OPTION = re.compile(r"^\s+:[\w-]+:")
_ROLE = re.compile(r":(?:py:)?([\w-]+):`([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")
_LINK = re.compile(r"`([^`<]+?)\s*<[^`>]+>`__?")
_REF = re.compile(r"`([^`]+)`_{1,2}")
_EMPHASIS = re.compile(r"(?<![\w*])\*{1,2}([^*\s][^*]*?)\*{1,2}(?![\w*])")
_DOCINFO = re.compile(r"^:[A-Z][\w ]*:")
_UNDERLINE = re.compile(r"^([=\-*^~#\"+`'.:_])\1{2,}\s*$")


def is_underline(line: str) -> bool:
    """A heading's underline or overline (``=====``, ``-----``...)."""
    return bool(_UNDERLINE.match(line))


def _role(match: re.Match[str]) -> str:
    kind, inner = match.group(1), match.group(2)
    if "<" in inner and inner.endswith(">"):  # :ref:`the text <target>`: the text is shown
        return inner[: inner.index("<")].strip()
    target = inner.lstrip("!")
    if target.startswith("~"):  # :func:`~functools.cmp_to_key` is shown as cmp_to_key()
        target = target[1:].rsplit(".", 1)[-1]
    if kind in ("func", "meth") and not target.endswith(")"):
        target += "()"
    return target


def clean_inline(text: str) -> str:
    """Inline markup as shown: roles, literals, links and emphasis become their text."""
    text = _ROLE.sub(_role, text)
    text = _LITERAL.sub(lambda m: f"`{m.group(1)}`", text)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _REF.sub(lambda m: m.group(1), text)
    text = _EMPHASIS.sub(lambda m: m.group(1), text)
    text = text.replace("\\ ", "").replace("|version|", "3.11").replace("|release|", "3.11")
    if text.rstrip().endswith("::"):  # "For example::" introduces a literal block
        stripped = text.rstrip()[:-2].rstrip()
        text = stripped + ":" if stripped else ""
    return text


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _skip_body(lines: list[str], i: int, indent: int) -> int:
    """The index after the indented body that starts at ``i`` (blank lines included)."""
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
        i += 1
    return i


def _directive(lines: list[str], i: int, match: re.Match[str], out: list[str]) -> int:
    """Render the directive at line ``i``; returns the next line to read."""
    pad, name, arg = match.group(1), match.group(2), match.group(3).strip()
    indent = len(pad)
    if name in _DROPPED:
        return _skip_body(lines, i + 1, indent)
    if name in _VERSIONED:
        version = arg.split()[0] if arg else ""
        out.append(pad + _VERSIONED[name].format(version))
    elif name in _LABELLED:
        out.append(pad + _LABELLED[name] + (" " + clean_inline(arg) if arg else ""))
    elif name in API_DIRECTIVES:
        out.append(pad + arg)
        while i + 1 < len(lines) and lines[i + 1].strip() and not _OPTION.match(lines[i + 1]) \
                and _indent(lines[i + 1]) > indent and "(" in lines[i + 1]:  # more signatures
            i += 1
            out.append(pad + lines[i].strip())
    i += 1
    while i < len(lines) and _OPTION.match(lines[i]):  # :noindex:, :synopsis:, :options: lines
        i += 1
    return i


def rst_to_text(text: str) -> str:
    """``text`` (reStructuredText) as plain text: headings without their underlines,
    directives rendered or dropped, inline markup reduced to its words, code kept."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if is_underline(line):  # a heading's underline or overline, or a transition
            i += 1
            continue
        match = _DIRECTIVE.match(line)
        if match:
            i = _directive(lines, i, match, out)
            continue
        comment = _COMMENT.match(line)
        if comment:  # a comment or a label (.. _sortinghowto:): dropped with its body
            i = _skip_body(lines, i + 1, len(comment.group(1)))
            continue
        if _DOCINFO.match(line):  # ":Author: ..." at the top of a page: metadata, not text
            i += 1
            continue
        out.append(clean_inline(line.rstrip()))
        i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"

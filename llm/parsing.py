"""Pull structured data out of what real models write.

Models wrap JSON in code fences, put prose around it, leave trailing commas, use Python's
``True``/``None`` or single quotes. :func:`extract_json` tries the likely candidates in
order and repairs those small slips; it never guesses at content.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

_FENCE = re.compile(r"```[ \t]*([\w.+#-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


class ParseError(ValueError):
    """No usable JSON (or code) in a model's answer."""


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` for each fenced code block, in order. An unclosed last fence
    (an answer cut off) still counts."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


def _balanced_spans(text: str) -> list[str]:
    """Top-level ``{...}`` / ``[...]`` spans, respecting strings."""
    spans: list[str] = []
    depth = 0
    start = -1
    quote = ""
    escape = False
    for i, ch in enumerate(text):
        if quote:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "\"'" and depth:
            quote = ch
        elif ch in "{[":
            if depth == 0:
                start = i
            depth += 1
        elif ch in "}]" and depth:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    return spans


def _segments(text: str) -> list[tuple[str, str]]:
    """Split JSON-ish text into ``("code" | "string" | "comment", piece)`` runs.

    One scanner serves both repairs below: a string keeps its quotes and escapes, a
    ``//`` or ``#`` comment runs to the end of its line (an apostrophe in a comment does not
    open a string)."""
    out: list[tuple[str, str]] = []
    i = start = 0
    kind = "code"
    quote = ""
    while i < len(text):
        ch = text[i]
        if kind == "string":
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                out.append(("string", text[start : i + 1]))
                start, kind = i + 1, "code"
        elif kind == "comment":
            if ch == "\n":
                out.append(("comment", text[start:i]))
                start, kind = i, "code"
        elif ch in "\"'" or ch == "#" or text.startswith("//", i):
            if start < i:
                out.append(("code", text[start:i]))
            start, quote = i, ch
            kind = "string" if ch in "\"'" else "comment"
        i += 1
    if start < len(text):
        out.append((kind, text[start:]))
    return out


def _replace_bare_words(text: str, mapping: dict[str, str]) -> str:
    """Replace bare words (``true``, ``null``...) outside string literals."""
    word = re.compile(r"[A-Za-z_]\w*")
    return "".join(
        word.sub(lambda m: mapping.get(m.group(0), m.group(0)), piece) if kind == "code" else piece
        for kind, piece in _segments(text)
    )


def _strip_comments(text: str) -> str:
    """Drop ``//`` and ``#`` comments that stand outside string literals."""
    return "".join(piece for kind, piece in _segments(text) if kind != "comment")


def _loads_lenient(candidate: str) -> Any:
    try:
        return json.loads(candidate)
    except ValueError:
        pass
    text = candidate.replace("\u201c", '"').replace("\u201d", '"').replace("\u2019", "'")
    text = _strip_comments(text)
    no_trailing = re.sub(r",(\s*[}\]])", r"\1", text)
    try:
        return json.loads(no_trailing)
    except ValueError:
        pass
    # Python-style literals: single quotes, True/False/None (and JSON's true/false/null).
    pythonish = _replace_bare_words(text, {"true": "True", "false": "False", "null": "None"})
    try:
        value = ast.literal_eval(pythonish)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ParseError("not valid JSON") from None
    if not isinstance(value, (dict, list)):
        raise ParseError("not a JSON object")
    return value


def extract_json(text: str) -> Any:
    """The first JSON object (or array) in ``text`` that parses, after small repairs.

    Candidates in order: fenced ``json`` blocks, other fenced blocks, the whole text, then
    each balanced ``{...}``/``[...]`` span in the prose.
    """
    blocks = fenced_blocks(text)
    candidates = [b for lang, b in blocks if lang in ("json", "json5", "javascript", "js")]
    candidates += [b for lang, b in blocks if lang not in ("json", "json5", "javascript", "js")]
    candidates.append(text)
    for source in list(candidates):
        candidates.extend(_balanced_spans(source))
    last_error = "no JSON object found"
    seen: set[str] = set()
    for candidate in candidates:
        candidate = candidate.strip()
        if not candidate or candidate in seen or candidate[0] not in "{[":
            continue
        seen.add(candidate)
        try:
            return _loads_lenient(candidate)
        except ParseError as exc:
            last_error = str(exc)
    raise ParseError(last_error)


def extract_code(text: str, language: str = "python") -> str:
    """The body of the first fenced block (preferring ``language``); the whole answer if
    it has no fence at all."""
    blocks = fenced_blocks(text)
    for lang, body in blocks:
        if lang in (language, language[:2]):
            return body.rstrip() + "\n"
    if blocks:
        return blocks[0][1].rstrip() + "\n"
    if text.strip():
        return text.strip() + "\n"
    raise ParseError("the answer is empty")


_OPENER = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[ \t]*([\w.+#-]*)[^\n`]*$", re.MULTILINE)


def extract_file(text: str, language: str = "text") -> str:
    """The whole content of a file given as one fenced block, even when the file holds
    fences of its own (a README with ```bash examples).

    The block runs from the first opening fence to the *last* closing fence of the same
    kind and at least its length in the answer (to the end when the answer was cut off);
    a bare answer without any fence is the file itself."""
    m = _OPENER.search(text)
    if m is None:
        if text.strip():
            return text.strip() + "\n"
        raise ParseError("the answer is empty")
    fence = m.group(1)
    body = text[m.end() + 1 :]
    closers = list(re.finditer(rf"^[ \t]{{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", body, re.MULTILINE))
    if closers:
        body = body[: closers[-1].start()]
    return body.rstrip() + "\n"


_PATH_LIKE = re.compile(r".*[A-Za-z_].*\.[A-Za-z][A-Za-z0-9]{0,7}")


def heading_path(line: str) -> str | None:
    """The file path a line before a code block announces: ``## pkg/mod.py``,
    ``**pkg/mod.py**``, ``File: pkg/mod.py``, ``Here is the corrected `pkg/mod.py`:``.
    The path is taken whole (``../x.py`` stays ``../x.py``, for the workspace to refuse)."""
    line = line.strip()
    if not line or len(line) > 160:
        return None
    tokens = [t.rstrip(".,;!?)") for t in re.findall(r"[^\s`*'\"]+", line)]
    paths = [t.rstrip(":") for t in tokens if _PATH_LIKE.fullmatch(t.rstrip(":"))]
    return paths[-1] if paths else None


_FENCE_LINE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)[^`]*$")


def _file_blocks(text: str) -> list[tuple[int, str, str]]:
    """``(start offset, language, body)`` of each top-level fenced block, line by line.

    Inside a non-Python block, a fence line with a language (```bash) opens a nested block
    and a bare fence closes it, so a README's own examples stay inside the README. (A
    Python block ends at its first bare fence, as it always did.) A block still open at
    the end (an answer cut off) runs to the end."""
    blocks: list[tuple[int, str, str]] = []
    lines = text.splitlines(keepends=True)
    offset = 0
    i = 0
    while i < len(lines):
        m = _FENCE_LINE.match(lines[i].rstrip("\n"))
        if not m:
            offset += len(lines[i])
            i += 1
            continue
        start, fence, lang = offset, m.group(1), m.group(2).lower()
        nests = lang not in ("python", "py")
        depth, body = 1, []
        offset += len(lines[i])
        i += 1
        while i < len(lines):
            line = lines[i].rstrip("\n")
            inner = _FENCE_LINE.match(line)
            offset += len(lines[i])
            i += 1
            if inner and inner.group(1)[0] == fence[0] and len(inner.group(1)) >= len(fence):
                if not inner.group(2) and line.strip() == inner.group(1):
                    depth -= 1
                    if depth == 0:
                        break
                elif nests:
                    depth += 1
            elif depth == 1 and line.rstrip().endswith(fence[0] * 3):
                body.append(line.rstrip()[: -len(fence)].rstrip("`~") + "\n")  # `code```` closes too
                break
            body.append(lines[i - 1])
        blocks.append((start, lang, "".join(body)))
    return blocks


def extract_files(text: str) -> list[tuple[str, str]]:
    """``(path, content)`` pairs from answers shaped as a line naming a path followed by a
    fenced block, e.g. ``## src/app.py`` then a python fence. Raises if there are none.
    A Markdown file with its own fenced examples comes back whole (see :func:`_file_blocks`)."""
    files: list[tuple[str, str]] = []
    blocks = _file_blocks(text)
    if not blocks:  # fences not on lines of their own: the plain pattern still finds them
        blocks = [(m.start(), m.group(1), m.group(2)) for m in _FENCE.finditer(text)]
    for start, _lang, body in blocks:
        before = [line for line in text[:start].splitlines() if line.strip()]
        path = heading_path(before[-1]) if before else None
        if path:
            files.append((path, body.rstrip() + "\n"))
    if not files:
        raise ParseError("no file found: expected a path line followed by a fenced code block")
    return files

"""What the writers' room checks in a document: its code examples run, its citations quote.

**Examples.** A fenced block tagged ``python`` (``py``, ``python3``, ``pycon``), or an
untagged one holding ``>>>`` prompts, is an example. One with ``>>>`` prompts is a doctest:
it passes when every shown output matches (``python -m doctest``); any other is a script
that passes when it exits with 0. Each runs on its own in mgpt's sandbox
(:func:`mgpt.sandbox.isolation.run_sandboxed`), written to ``examples/`` in the workspace.

**Citations.** A citation is a quotation copied from a source followed by the source's
number: ``"returns a new list" [3]``. It matches when the quoted words appear in source 3
(case, runs of spaces and backticks aside). A number alone (``[3]``) quotes nothing and
is flagged, as is a quotation shorter than :data:`MIN_QUOTE_WORDS` words (any page has
"the list"), a number no source has, and a quotation the source does not hold.
"""

from __future__ import annotations

import ast
import re
import sys
import threading
from pathlib import Path
from typing import Iterable, Mapping

from pydantic import BaseModel

from mgpt.sandbox.isolation import Limits, run_sandboxed

__all__ = ["MIN_QUOTE_WORDS", "Citation", "Example", "ExampleRun", "check_citations", "close_fences",
           "extract_examples", "find_citations", "run_example", "run_examples", "share", "strip_code"]

#: A quotation this short proves nothing about its source.
MIN_QUOTE_WORDS = 3
#: Characters of an example's output kept in its report (the tail: where the error is).
OUTPUT_CHARS = 1500

_FENCE = re.compile(r"^```[ \t]*([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_PYTHON_TAGS = {"python", "py", "python3", "pycon"}
_CITATION = re.compile(r"(?:[\"“]([^\"“”\n]{1,400})[\"”][\s,.;:)]{0,3})?\[(\d{1,3})\](?!\()")


class Example(BaseModel):
    """A code example of a document."""

    code: str
    #: it shows an interactive session (``>>>``): run as a doctest, outputs compared
    doctest: bool


class ExampleRun(BaseModel):
    """An example as it ran in the sandbox."""

    #: the section it is in (1-based; 0 for a whole document) and its place there
    section: int
    number: int
    code: str
    doctest: bool
    ok: bool
    #: the tail of what it printed (the error, when it failed)
    output: str = ""
    #: the file it ran from, relative to the workspace
    path: str = ""
    timed_out: bool = False


class Citation(BaseModel):
    """One citation of a document, checked against its source."""

    section: int
    source: int
    #: the quoted words ("" when the citation quotes nothing)
    quote: str
    ok: bool
    #: why it does not match ("" when it does)
    problem: str = ""


def strip_code(markdown: str) -> str:
    """``markdown`` without its fenced blocks and inline code (where ``[1]`` is an index)."""
    text = _FENCE.sub(" ", close_fences(markdown))
    return re.sub(r"`[^`\n]*`", " ", text)


def close_fences(markdown: str) -> str:
    """``markdown`` with a code block left open at its end (an answer cut at its token
    limit) closed, so that it is read as a block and not as the rest of the document."""
    fences = sum(1 for line in markdown.splitlines() if line.lstrip().startswith("```"))
    return markdown if fences % 2 == 0 else markdown.rstrip("\n") + "\n```\n"


def _shows_something(code: str) -> bool:
    """A script with at least one statement (only comments show nothing; one that does not
    parse is an example, and fails)."""
    try:
        return bool(ast.parse(code).body)
    except (SyntaxError, ValueError):
        return True


def extract_examples(markdown: str) -> list[Example]:
    """The code examples of a Markdown text, in order (a block left open at the end included)."""
    out = []
    for tag, body in _FENCE.findall(close_fences(markdown)):
        tag = tag.lower()
        doctest = any(line.lstrip().startswith(">>>") for line in body.splitlines())
        if (tag in _PYTHON_TAGS or (not tag and doctest)) and (doctest or _shows_something(body)):
            out.append(Example(code=body, doctest=doctest))
    return out


def find_citations(markdown: str) -> list[tuple[int, str]]:
    """(source number, quoted words) of each citation, in order (quote "" for a bare number)."""
    return [(int(num), (quote or "").strip()) for quote, num in _CITATION.findall(strip_code(markdown))]


def _normal(text: str) -> str:
    text = text.replace("`", "").replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return " ".join(text.lower().split())


def check_citations(markdown: str, sources: Mapping[int, str], *, section: int = 0) -> list[Citation]:
    """Every citation of ``markdown`` checked against ``sources`` (number -> the source's text)."""
    out = []
    for number, quote in find_citations(markdown):
        words = quote.strip(" .,;:").split()
        if number not in sources:
            problem = f"there is no source [{number}]"
        elif not quote:
            problem = "it quotes nothing: put the words it rests on in double quotes before the number"
        elif len(words) < MIN_QUOTE_WORDS:
            problem = f"the quotation has fewer than {MIN_QUOTE_WORDS} words"
        elif _normal(" ".join(words)) not in _normal(sources[number]):
            problem = f"source [{number}] does not contain these words"
        else:
            problem = ""
        out.append(Citation(section=section, source=number, quote=quote, ok=not problem, problem=problem))
    return out


def _doctest_text(code: str) -> str:
    """A doctest file of an interactive session: the prompts and outputs, dedented."""
    lines = code.splitlines()
    indent = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()), default=0)
    return "\n".join(ln[indent:] for ln in lines) + "\n"


def run_example(example: Example, workspace: Path, *, section: int, number: int, limits: Limits | None = None,
                cancel: threading.Event | None = None) -> ExampleRun:
    """Run ``example`` in the sandbox from ``examples/s<section>_<number>.(py|txt)`` in ``workspace``."""
    folder = Path(workspace) / "examples"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"s{section}_{number}.{'txt' if example.doctest else 'py'}"
    path = folder / name
    if example.doctest:
        path.write_text(_doctest_text(example.code), encoding="utf-8")
        args = [sys.executable, "-m", "doctest", "-o", "NORMALIZE_WHITESPACE", "-o", "ELLIPSIS", f"examples/{name}"]
    else:
        path.write_text(example.code, encoding="utf-8")
        args = [sys.executable, f"examples/{name}"]
    result = run_sandboxed(args, Path(workspace), limits or Limits(timeout=10), cancel=cancel)
    output = result.output.replace(str(Path(workspace).resolve()) + "/", "")
    return ExampleRun(section=section, number=number, code=example.code, doctest=example.doctest,
                      ok=result.exit_code == 0 and not result.timed_out, output=output[-OUTPUT_CHARS:],
                      path=f"examples/{name}", timed_out=result.timed_out)


def run_examples(markdown: str, workspace: Path, *, section: int, limits: Limits | None = None,
                 cancel: threading.Event | None = None) -> list[ExampleRun]:
    """Every example of ``markdown``, each run on its own."""
    return [run_example(e, workspace, section=section, number=i, limits=limits, cancel=cancel)
            for i, e in enumerate(extract_examples(markdown), 1)]


def share(flags: Iterable[bool]) -> tuple[int, int]:
    """(true, all) of ``flags``."""
    values = list(flags)
    return sum(values), len(values)

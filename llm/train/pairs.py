"""Training pairs for a text embedder, mined from text every install has offline.

- the standard library's own sources (:func:`mine_stdlib_pairs`): docstring <-> function
  body (``doc2code``), ``module.Class.name`` <-> docstring (``name2doc``), with ``ast``;
- recorded company runs (:func:`mine_transcript_pairs`): requirement <-> code
  (``req2code``), test failure <-> the fix's diff (``error2fix``).

Each is a :class:`mgpt.llm.eval.retrieval.RetrievalPair`; :func:`split_by_source` holds
whole modules out, so the retrieval eval ranks documents the embedder never saw.
"""

from __future__ import annotations

import ast
import random
import re
import sysconfig
from pathlib import Path
from typing import Iterable, Sequence

from mgpt.llm.eval.retrieval import RetrievalPair
from mgpt.llm.train.errors import TrainError

__all__ = ["MAX_DOC_CHARS", "mine_stdlib_pairs", "mine_transcript_pairs", "split_by_source"]

#: Characters kept of a mined document (a long function is cut; the model sees max_length tokens anyway).
MAX_DOC_CHARS = 800
#: Stdlib folders that are tests, demos or vendored code rather than the library itself.
_SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "turtledemo", "__pycache__",
              "ensurepip", "pydoc_data", "tkinter", "config-3"}


def _first_paragraph(doc: str) -> str:
    return " ".join(doc.strip().split("\n\n")[0].split())


def _body_without_docstring(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    body = fn.body[1:] if fn.body and isinstance(fn.body[0], ast.Expr) and isinstance(
        getattr(fn.body[0], "value", None), ast.Constant) else fn.body
    stripped = type(fn)(**{**{f: getattr(fn, f) for f in fn._fields}, "body": body or [ast.Pass()]})
    try:
        return ast.unparse(ast.fix_missing_locations(stripped))[:MAX_DOC_CHARS]
    except (ValueError, TypeError, RecursionError):
        return ""


def _module_files(root: Path) -> list[tuple[str, Path]]:
    """(dotted module name, file) for the stdlib's Python sources, tests and vendored code left out."""
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part in _SKIP_DIRS or part.startswith(("test_", "config-")) for part in rel.parts):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts and all(p.isidentifier() for p in parts):
            out.append((".".join(parts), path))
    return out


def mine_stdlib_pairs(*, max_modules: int | None = None, seed: int = 0, root: str | Path | None = None,
                      per_module: int = 40) -> list[RetrievalPair]:
    """Pairs from the standard library's sources: for each documented function,
    ``doc2code`` (first docstring paragraph -> the function without its docstring) and
    ``name2doc`` (``module.Class.name`` -> the docstring's first paragraph).

    ``max_modules`` samples that many modules (with ``seed``); ``per_module`` caps the
    functions taken from one module so a few huge modules do not dominate.
    """
    base = Path(root) if root is not None else Path(sysconfig.get_paths()["stdlib"])
    files = _module_files(base)
    if not files:
        raise TrainError(f"no Python sources found under {base}: pass root= the stdlib folder")
    if max_modules is not None and max_modules < len(files):
        files = sorted(random.Random(seed).sample(files, max_modules))
    pairs: list[RetrievalPair] = []
    for module, path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError, ValueError, RecursionError):
            continue
        taken = 0
        for node, owner in _functions(tree):
            if taken >= per_module:
                break
            doc = ast.get_docstring(node)
            if not doc or node.name.startswith("__"):
                continue
            summary = _first_paragraph(doc)
            if len(summary) < 20:
                continue
            code = _body_without_docstring(node)
            if not code:
                continue
            name = ".".join(p for p in (module, owner, node.name) if p)
            pairs.append(RetrievalPair(summary, code, "doc2code", module))
            pairs.append(RetrievalPair(name, summary, "name2doc", module))
            taken += 1
    return pairs


def _functions(tree: ast.Module) -> Iterable[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]]:
    """Top-level functions and methods of top-level classes, with the class name ('' for none)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node, ""
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield item, node.name


_CODE_BLOCK = re.compile(r"```(?:python)?\n(.*?)```", re.S)


def mine_transcript_pairs(paths: Sequence[str | Path]) -> list[RetrievalPair]:
    """Pairs from recorded company runs: ``req2code`` (a WriteCode task and purpose -> the
    code written) and ``error2fix`` (a FixBug prompt's pytest output -> the fix's code)."""
    from mgpt.llm.backends.replay import Transcript

    pairs: list[RetrievalPair] = []
    for p in paths:
        t = Transcript.load(p)
        source = f"golden:{Path(p).stem}"
        for call in t.calls:
            prompt = call.request[-1].content if call.request else ""
            blocks = _CODE_BLOCK.findall(call.response.text)
            if not blocks:
                continue
            if call.action == "WriteCode":
                lines = [ln for ln in prompt.splitlines() if ln.startswith(("Write the file", "Purpose:", "Task:"))]
                pairs.append(RetrievalPair(" ".join(lines), blocks[0][:MAX_DOC_CHARS], "req2code", source))
            elif call.action == "FixBug":
                m = re.search(r"pytest output \(tail\):\n```\n(.*?)\n```", prompt, re.S)
                failure = m.group(1) if m else prompt
                errors = [ln for ln in failure.splitlines() if ln.startswith(("E ", "FAILED", "ERROR"))]
                query = "\n".join(errors) or failure[-MAX_DOC_CHARS:]
                fix = _fix_diff(prompt, call.response.text) or "\n".join(blocks)
                pairs.append(RetrievalPair(query[:MAX_DOC_CHARS], fix[:MAX_DOC_CHARS], "error2fix", source))
    return pairs


_FILE_IN_PROMPT = re.compile(r"^## (\S+)\n```python\n(.*?)```", re.S | re.M)
_FILE_IN_ANSWER = re.compile(r"`?([\w./-]+\.py)`?\s*:?\s*\n```(?:python)?\n(.*?)```", re.S)


def _fix_diff(prompt: str, answer: str) -> str:
    """The lines a FixBug answer changed (a unified diff against the files in its prompt)."""
    import difflib

    old = dict(_FILE_IN_PROMPT.findall(prompt))
    parts = []
    for path, new in _FILE_IN_ANSWER.findall(answer):
        parts.extend(difflib.unified_diff(old.get(path, "").splitlines(), new.splitlines(), f"a/{path}", f"b/{path}",
                                          n=1, lineterm=""))
    return "\n".join(parts)


def split_by_source(pairs: Sequence[RetrievalPair], val_fraction: float, seed: int = 0) -> tuple[list[RetrievalPair], list[RetrievalPair]]:
    """Train and held-out pairs, split by ``source`` so no module is on both sides."""
    sources = sorted({p.source for p in pairs})
    random.Random(seed).shuffle(sources)
    n_val = max(1, round(len(sources) * val_fraction)) if val_fraction > 0 and len(sources) > 1 else 0
    held = set(sources[:n_val])
    return [p for p in pairs if p.source not in held], [p for p in pairs if p.source in held]

"""Text embeddings: load a trained embedder, and mine (query, document) pairs to train one.

An embedder folder (written by ``mgpt train embed``) is a standard HF causal-LM folder
(``config.json``, ``model.safetensors``, tokenizer files) plus ``embed_config.json``
(pooling, max length, the base it started from). A text's vector is the mean of the last
hidden layer over its tokens, normalised to unit length, so cosine similarity is a dot
product::

    from mgpt.llm.local.embedder import load_embedder
    embedder = load_embedder("runs/embed")
    vectors = embedder.embed(["parse a date", "def parse(s): ..."])   # lists of floats

An :class:`Embedder` is itself the ``embed(texts) -> vectors`` callable that
:class:`mgpt.memory.retrieval.RetrievalMemory` takes.

Pairs come from text every install has offline: the standard library's own sources
(docstring <-> function body, function name <-> docstring, mined with ``ast``) and the
recorded company runs (requirement <-> code, test failure <-> fix).
"""

from __future__ import annotations

import ast
import json
import random
import re
import sysconfig
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from mgpt.memory.retrieval import tokenize

from mgpt.llm.errors import ModelConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["EMBED_CONFIG", "Embedder", "Pair", "load_embedder", "mine_stdlib_pairs", "mine_transcript_pairs",
           "normalize_text", "read_pairs", "split_by_source", "write_pairs"]

EMBED_CONFIG = "embed_config.json"
#: Characters kept of a mined document (a long function is cut; the model sees max_length tokens anyway).
MAX_DOC_CHARS = 800
#: Stdlib folders that are tests, demos or vendored code rather than the library itself.
_SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "turtledemo", "__pycache__",
              "ensurepip", "pydoc_data", "tkinter", "config-3"}


@dataclass(frozen=True)
class Pair:
    """A query and the document it should retrieve; ``source`` (a module or transcript) groups
    pairs for the train/held-out split; ``kind`` says what the pair pairs."""

    query: str
    doc: str
    kind: str
    source: str


# -- mining ----------------------------------------------------------------------------------


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
                      per_module: int = 40) -> list[Pair]:
    """Pairs from the standard library's sources: for each documented function,
    ``doc2code`` (first docstring paragraph -> the function without its docstring) and
    ``name2doc`` (``module.Class.name`` -> the docstring's first paragraph).

    ``max_modules`` samples that many modules (with ``seed``); ``per_module`` caps the
    functions taken from one module so a few huge modules do not dominate.
    """
    base = Path(root) if root is not None else Path(sysconfig.get_paths()["stdlib"])
    files = _module_files(base)
    if not files:
        raise ModelConfigError(f"no Python sources found under {base}: pass root= the stdlib folder")
    if max_modules is not None and max_modules < len(files):
        files = sorted(random.Random(seed).sample(files, max_modules))
    pairs: list[Pair] = []
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
            pairs.append(Pair(summary, code, "doc2code", module))
            pairs.append(Pair(name, summary, "name2doc", module))
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


def mine_transcript_pairs(paths: Sequence[str | Path]) -> list[Pair]:
    """Pairs from recorded company runs: ``req2code`` (a WriteCode task and purpose -> the
    code written) and ``error2fix`` (a FixBug prompt's pytest output -> the fix's code)."""
    from mgpt.llm.backends.replay import Transcript

    pairs: list[Pair] = []
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
                pairs.append(Pair(" ".join(lines), blocks[0][:MAX_DOC_CHARS], "req2code", source))
            elif call.action == "FixBug":
                m = re.search(r"pytest output \(tail\):\n```\n(.*?)\n```", prompt, re.S)
                failure = m.group(1) if m else prompt
                errors = [ln for ln in failure.splitlines() if ln.startswith(("E ", "FAILED", "ERROR"))]
                query = "\n".join(errors) or failure[-MAX_DOC_CHARS:]
                fix = _fix_diff(prompt, call.response.text) or "\n".join(blocks)
                pairs.append(Pair(query[:MAX_DOC_CHARS], fix[:MAX_DOC_CHARS], "error2fix", source))
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


def split_by_source(pairs: Sequence[Pair], val_fraction: float, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """Train and held-out pairs, split by ``source`` so no module is on both sides."""
    sources = sorted({p.source for p in pairs})
    random.Random(seed).shuffle(sources)
    n_val = max(1, round(len(sources) * val_fraction)) if val_fraction > 0 and len(sources) > 1 else 0
    held = set(sources[:n_val])
    return [p for p in pairs if p.source not in held], [p for p in pairs if p.source in held]


def write_pairs(pairs: Iterable[Pair], path: str | Path) -> None:
    Path(path).write_text("".join(json.dumps(asdict(p)) + "\n" for p in pairs), encoding="utf-8")


def read_pairs(path: str | Path) -> list[Pair]:
    """Pairs from JSONL (``query``, ``doc``, optional ``kind`` and ``source``)."""
    p = Path(path)
    if not p.is_file():
        raise ModelConfigError(f"pairs file {p} does not exist")
    out = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(Pair(str(d["query"]), str(d["doc"]), str(d.get("kind", "pair")), str(d.get("source", ""))))
        except (ValueError, KeyError, TypeError) as e:
            raise ModelConfigError(f"{p}:{i}: not a pair (need JSON with query and doc): {e}") from None
    return out


# -- the embedder ----------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """Lower-cased words with identifiers split (``parseDate(s)`` -> ``parse date parsedate s``).

    Used with models trained from scratch: "date" in a docstring and ``_date`` in code are then
    the same token, which a byte-level BPE would otherwise keep apart (``Ġdate`` vs ``date``).
    """
    return " ".join(tokenize(text))


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, C) hidden states, (B, T) mask -> (B, C) mean over the real tokens, unit length."""
    import torch.nn.functional as F

    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
    return F.normalize(pooled, dim=-1)


def encode(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int) -> torch.Tensor:
    """Unit vectors (B, C) for ``texts``; gradients flow when the caller allows them."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    device = next(model.parameters()).device
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    out = backbone(model)(input_ids=ids, attention_mask=mask)
    return mean_pool(out.last_hidden_state, mask)


def backbone(model: Any) -> Any:
    """The transformer under a causal LM (or under its peft wrapper): hidden states without
    the LM head, whose vocabulary-sized logits would cost more than the rest of a small model."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(inner, "base_model", inner)


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Pad on the right with a real pad token (a causal LM's tokenizer may have none: use eos)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


class Embedder:
    """``embed(texts)`` -> unit vectors, from a model folder. Call it like a function too."""

    def __init__(self, model: Any, tokenizer: Any, *, max_length: int = 128, name: str = "embedder",
                 batch_size: int = 32, normalize: bool = False):
        self.model = model.eval()
        self.tokenizer = prepare_tokenizer(tokenizer)
        self.max_length = max_length
        self.batch_size = batch_size
        self.normalize = normalize
        #: Names the vectors' space: a retrieval store re-embeds when it changes.
        self.name = name

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, C) float tensor of unit vectors."""
        import torch

        if not texts:
            hidden = getattr(self.model.config, "hidden_size", None) or self.model.config.n_embd
            return torch.zeros(0, hidden)
        if self.normalize:
            texts = [normalize_text(t) for t in texts]
        with torch.no_grad():
            parts = [encode(self.model, self.tokenizer, texts[i:i + self.batch_size], self.max_length)
                     for i in range(0, len(texts), self.batch_size)]
        return torch.cat(parts).float().cpu()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector (a list of floats) per text; an empty text gets the zero vector."""
        return self.encode(list(texts)).tolist()

    __call__ = embed


def load_embedder(path: str | Path, *, max_length: int | None = None) -> Embedder:
    """The embedder saved in ``path`` (by ``mgpt train embed``), or any HF causal-LM folder
    used as an untrained embedder (mean pooling, no ``embed_config.json`` needed)."""
    from mgpt.llm.local.generate import load_model

    p = Path(path)
    if not (p / "config.json").is_file():
        raise ModelConfigError(f"{p} is not a model folder (no config.json); train one with `mgpt train embed`")
    meta = json.loads((p / EMBED_CONFIG).read_text(encoding="utf-8")) if (p / EMBED_CONFIG).is_file() else {}
    loaded = load_model(p)
    length = max_length or int(meta.get("max_length", 128))
    cfg = loaded.model.config
    n_pos = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)
    length = min(length, n_pos) if n_pos else length  # a longer text is cut, never indexed past the positions
    return Embedder(loaded.model, loaded.tokenizer, max_length=length, normalize=bool(meta.get("normalize", False)),
                    name=f"{p.resolve()}@{meta.get('trained_at', '')}")

"""Retrieval memory: messages found by meaning (or by words), not only by order.

:class:`BM25` is Okapi BM25 in plain Python: no torch, no numpy, so it works in every
install and is the default scorer. :class:`RetrievalMemory` keeps messages like
:class:`~mgpt.memory.InMemory` and also a vector (or BM25 index) per message, so
``await memory.search(query, k)`` returns the ``k`` most similar ones. Given a ``store``
folder it persists both and loads them back, so what one run learnt (a fix, say) can be
recalled by the next.

memory/ sits below llm/ in the layering, so a trained embedder is *injected* as a plain
callable ``embed(texts) -> list of unit vectors`` (``mgpt.llm.local.embedder.load_embedder(dir)``
returns one); without it, search is BM25. With one, ``ranking`` says how it is used:
``"dense"`` (cosine alone), or ``"hybrid"`` (BM25 and cosine fused by
:func:`reciprocal_rank_fusion`), the default: it is the one that beat BM25 in the retrieval
benchmark (docs/benchmarks.md).

:func:`select_blocks` picks, under a character budget, the context blocks most relevant to
a query: the hook prompts use to stay small as a run grows.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Callable, Sequence

from mgpt.agents.errors import MgptError
from mgpt.agents.message import Message

from mgpt.memory.base import InMemory

__all__ = ["BM25", "DEFAULT_RANKING", "HYBRID_K", "HYBRID_WEIGHTS", "RANKINGS", "RRF_K", "Embed", "RetrievalError", "RetrievalMemory",
           "failure_summary", "recall_fixes", "reciprocal_rank_fusion", "remember_fix", "select_blocks", "tokenize"]

#: ``embed(texts) -> vectors``: one unit-length vector (a list of floats) per text.
Embed = Callable[[list[str]], Sequence[Sequence[float]]]

_WORD = re.compile(r"[A-Za-z]+|\d+")
_CAMEL = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


#: How a memory with an embedder ranks: cosine alone, or fused with BM25.
RANKINGS = ("bm25", "dense", "hybrid")
#: The ranking a memory given an embedder uses unless told otherwise (without one: BM25).
#: The hybrid won (docs/benchmarks.md, "Retrieval for the writers' room"): above BM25 on
#: recall@10 and MRR of the 244 held-out queries, where the embedder alone was below.
DEFAULT_RANKING = "hybrid"
#: The constant of plain reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009).
RRF_K = 60
#: The hybrid's k and weights (BM25's ranks, the embedder's), chosen by
#: benchmarks/bench_write_retrieval.py on stdlib modules used by neither the embedder's
#: training nor its held-out pairs: a smaller k and half weight for the embedder keep BM25's
#: first places, which the embedder alone gets wrong more often.
HYBRID_K = 10
HYBRID_WEIGHTS = (1.0, 0.5)


class RetrievalError(MgptError):
    """A retrieval store that cannot be read or does not match its embedder."""


def _ranks(scores: Sequence[float], *, positive_only: bool) -> list[int | None]:
    """1-based competition ranks (equal scores share a rank); None for an item left out."""
    order = sorted((s, i) for i, s in enumerate(scores) if not positive_only or s > 0)
    order.reverse()
    ranks: list[int | None] = [None] * len(scores)
    rank, last = 0, None
    for pos, (score, i) in enumerate(order, 1):
        if score != last:
            rank, last = pos, score
        ranks[i] = rank
    return ranks


def reciprocal_rank_fusion(bm25: Sequence[float], dense: Sequence[float], *, k: int = HYBRID_K,
                           weights: tuple[float, float] = HYBRID_WEIGHTS) -> list[float]:
    """One fused score per item: ``weight / (k + rank)`` summed over the two rankings.

    Ranks, not scores, are fused, so BM25's unbounded scores and cosine's [-1, 1] need no
    calibration. An item sharing no word with the query (BM25 score 0) is not in BM25's
    ranking and gets only its dense share. ``weights``: (BM25's, the embedder's); plain RRF
    is ``k=RRF_K, weights=(1, 1)``, the defaults are the hybrid's.
    """
    if len(bm25) != len(dense):
        raise ValueError(f"{len(bm25)} BM25 scores for {len(dense)} dense scores")
    wb, wd = weights
    out = []
    for a, b in zip(_ranks(bm25, positive_only=True), _ranks(dense, positive_only=False)):
        out.append((wb / (k + a) if a is not None else 0.0) + (wd / (k + b) if b is not None else 0.0))
    return out


def tokenize(text: str) -> list[str]:
    """Lower-cased words; identifiers are split too (``read_file`` and ``readFile`` -> read, file).

    The whole identifier is kept as well, so an exact name still outweighs its parts.
    """
    out: list[str] = []
    for raw in re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\d+", text):
        parts = [p.lower() for chunk in raw.split("_") for p in _CAMEL.findall(chunk)]
        out.extend(parts)
        if len(parts) > 1:
            out.append(raw.lower())
    return out


class BM25:
    """Okapi BM25 over a growing list of documents (``k1``, ``b`` as in Robertson et al.).

    Scores use the IDF ``log(1 + (N - df + 0.5) / (df + 0.5))``, which is never negative, so
    a word in every document adds nothing instead of pushing a match below a non-match.
    """

    def __init__(self, docs: Sequence[str] = (), *, k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self._tf: list[Counter[str]] = []
        self._len: list[int] = []
        self._df: Counter[str] = Counter()
        for doc in docs:
            self.add(doc)

    def __len__(self) -> int:
        return len(self._tf)

    def add(self, doc: str) -> None:
        tf = Counter(tokenize(doc))
        self._tf.append(tf)
        self._len.append(sum(tf.values()))
        self._df.update(tf.keys())

    def scores(self, query: str) -> list[float]:
        """One score per document, in the order they were added."""
        n = len(self._tf)
        if n == 0:
            return []
        avg = sum(self._len) / n or 1.0
        terms = Counter(tokenize(query))
        idf = {t: math.log(1.0 + (n - self._df[t] + 0.5) / (self._df[t] + 0.5)) for t in terms if self._df[t]}
        out = []
        for tf, length in zip(self._tf, self._len):
            s = 0.0
            norm = self.k1 * (1.0 - self.b + self.b * length / avg)
            for t, w in idf.items():
                f = tf.get(t, 0)
                if f:
                    s += terms[t] * w * f * (self.k1 + 1.0) / (f + norm)
            out.append(s)
        return out

    def search(self, query: str, k: int = 5) -> list[tuple[int, float]]:
        """The ``k`` best (index, score) pairs, best first; ties keep insertion order."""
        ranked = sorted(enumerate(self.scores(query)), key=lambda p: (-p[1], p[0]))
        return ranked[: max(k, 0)]


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def _unit(vectors: Sequence[Sequence[float]], count: int) -> list[list[float]]:
    """The embedder's answer as lists of floats, checked: one finite vector per text."""
    out = [[float(x) for x in v] for v in vectors]
    if len(out) != count:
        raise RetrievalError(f"the embedder returned {len(out)} vectors for {count} texts")
    for v in out:
        norm = math.sqrt(_dot(v, v))
        if not math.isfinite(norm):
            raise RetrievalError("the embedder returned a vector with NaN or infinite values")
        if norm > 0:
            v[:] = [x / norm for x in v]
    return out


def _embedder_name(embed: Embed | None) -> str:
    return "bm25" if embed is None else str(getattr(embed, "name", None) or getattr(embed, "__qualname__", "embed"))


class RetrievalMemory(InMemory):
    """A role memory that can also ``search(query, k)`` by similarity.

    ``store``: a folder to persist in (``messages.jsonl``, ``vectors.jsonl``, ``meta.json``);
    it is loaded back when it exists, so it outlives a run. ``embed``: the embedder (default:
    BM25 on the text). ``ranking``: with an embedder, ``"dense"`` or ``"hybrid"`` (default
    :data:`DEFAULT_RANKING`); without one, ``"bm25"``. ``text``: what of a message is
    indexed (default: its content).
    A store written by a different embedder is re-embedded on load, not silently mixed.
    Payload and ``cause_by`` types must be imported before loading, as for JsonlMemory.
    """

    def __init__(self, store: str | Path | None = None, *, embed: Embed | None = None,
                 text: Callable[[Message], str] | None = None, ranking: str | None = None):
        super().__init__()
        ranking = ranking or (DEFAULT_RANKING if embed is not None else "bm25")
        if ranking not in RANKINGS:
            raise RetrievalError(f"ranking {ranking!r} is not one of {', '.join(RANKINGS)}")
        if ranking != "bm25" and embed is None:
            raise RetrievalError(f"ranking {ranking!r} needs an embedder: pass embed= (an embedder folder's "
                                 "load_embedder), or ranking='bm25'")
        self.ranking = ranking
        self.store = Path(store) if store is not None else None
        self.embed = embed
        self.text = text or (lambda m: m.content)
        self._bm25 = BM25()
        self._vectors: list[list[float]] = []
        if self.store is not None and (self.store / "messages.jsonl").exists():
            self._load()

    # -- persistence -------------------------------------------------------------------------

    def _load(self) -> None:
        assert self.store is not None
        try:
            lines = (self.store / "messages.jsonl").read_text(encoding="utf-8").splitlines()
            messages = [Message.model_validate(json.loads(line)) for line in lines if line.strip()]
            meta_path = self.store / "meta.json"
            meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
            vec_path = self.store / "vectors.jsonl"
            vectors = ([json.loads(line) for line in vec_path.read_text(encoding="utf-8").splitlines() if line.strip()]
                       if vec_path.exists() else [])
        except (OSError, ValueError) as e:
            raise RetrievalError(f"cannot read the retrieval store {self.store}: {e}; "
                                 "move the folder away to start a new one") from None
        for m in messages:
            if m.id not in self._ids:
                self._ids.add(m.id)
                self._messages.append(m)
        texts = [self.text(m) for m in self._messages]
        for t in texts:
            self._bm25.add(t)
        if self.embed is None:
            return
        if meta.get("embedder") == _embedder_name(self.embed) and len(vectors) == len(self._messages):
            self._vectors = vectors
        else:  # another embedder wrote this store: its vectors mean nothing to ours
            self._vectors = _unit(self.embed(texts), len(texts)) if texts else []
            self._rewrite()

    def _write_meta(self) -> None:
        assert self.store is not None
        (self.store / "meta.json").write_text(
            json.dumps({"embedder": _embedder_name(self.embed), "count": len(self._messages)}), encoding="utf-8")

    def _rewrite(self) -> None:
        if self.store is None:
            return
        self.store.mkdir(parents=True, exist_ok=True)
        (self.store / "messages.jsonl").write_text(
            "".join(m.model_dump_json() + "\n" for m in self._messages), encoding="utf-8")
        vec = self.store / "vectors.jsonl"
        if self.embed is not None:
            vec.write_text("".join(json.dumps(v) + "\n" for v in self._vectors), encoding="utf-8")
        else:
            vec.unlink(missing_ok=True)
        self._write_meta()

    # -- the Memory protocol -----------------------------------------------------------------

    async def add(self, message: Message) -> None:
        if message.id in self._ids:
            return
        text = self.text(message)
        vector = _unit(self.embed([text]), 1)[0] if self.embed is not None else None  # before any change
        await super().add(message)
        self._bm25.add(text)
        if vector is not None:
            self._vectors.append(vector)
        if self.store is not None:
            self.store.mkdir(parents=True, exist_ok=True)
            with (self.store / "messages.jsonl").open("a", encoding="utf-8") as f:
                f.write(message.model_dump_json() + "\n")
            if vector is not None:
                with (self.store / "vectors.jsonl").open("a", encoding="utf-8") as f:
                    f.write(json.dumps(vector) + "\n")
            self._write_meta()

    async def extend(self, messages: Sequence[Message], *, batch: int = 64) -> None:
        """Add many messages at once: embedded in batches, the store written once."""
        fresh = [m for m in dict((m.id, m) for m in messages).values() if m.id not in self._ids]
        texts = [self.text(m) for m in fresh]
        vectors: list[list[float]] = []
        if self.embed is not None:
            for i in range(0, len(texts), batch):  # embed all before any change
                vectors += _unit(self.embed(texts[i:i + batch]), len(texts[i:i + batch]))
        for m, t in zip(fresh, texts):
            self._ids.add(m.id)
            self._messages.append(m)
            self._bm25.add(t)
        self._vectors += vectors
        if fresh:
            self._rewrite()

    async def clear(self) -> None:
        await super().clear()
        self._bm25 = BM25()
        self._vectors = []
        if self.store is not None:
            for name in ("messages.jsonl", "vectors.jsonl", "meta.json"):
                (self.store / name).unlink(missing_ok=True)

    # -- search ------------------------------------------------------------------------------

    def scores(self, query: str) -> list[float]:
        """Similarity of ``query`` to every message, oldest first: BM25, cosine, or their
        reciprocal rank fusion (``ranking``)."""
        if not self._messages:
            return []
        if self.ranking == "bm25":
            return self._bm25.scores(query)
        q = _unit(self.embed([query]), 1)[0]  # type: ignore[misc]
        dense = [_dot(q, v) for v in self._vectors]
        return dense if self.ranking == "dense" else reciprocal_rank_fusion(self._bm25.scores(query), dense)

    async def search(self, query: str, k: int = 5) -> list[tuple[Message, float]]:
        """The ``k`` messages most similar to ``query``, best first, with their scores.

        Under BM25 a message sharing no word with the query scores 0 and is left out.
        """
        ranked = sorted(enumerate(self.scores(query)), key=lambda p: (-p[1], p[0]))
        if self.ranking == "bm25":
            ranked = [p for p in ranked if p[1] > 0]
        return [(self._messages[i], s) for i, s in ranked[: max(k, 0)]]


def select_blocks(query: str, blocks: Sequence[str], budget: int, *, embed: Embed | None = None,
                  keep: int = 0) -> list[str]:
    """The blocks most relevant to ``query`` whose total length fits in ``budget`` characters.

    Blocks are taken best first (BM25, or cosine with ``embed``), skipping any that would
    overflow, and returned in their original order so the prompt still reads top-down. The
    last ``keep`` blocks (the most recent context) are always taken first.
    """
    if budget < 0:
        raise ValueError("budget must be >= 0")
    if not blocks:
        return []
    if embed is None:
        scores = BM25(blocks).scores(query)
    else:
        vectors = _unit(embed([query, *blocks]), len(blocks) + 1)
        scores = [_dot(vectors[0], v) for v in vectors[1:]]
    recent = list(range(len(blocks)))[len(blocks) - keep:] if keep > 0 else []
    order = recent + sorted((i for i in range(len(blocks)) if i not in recent), key=lambda i: (-scores[i], i))
    chosen: set[int] = set()
    used = 0
    for i in order:
        if used + len(blocks[i]) <= budget:
            chosen.add(i)
            used += len(blocks[i])
    return [blocks[i] for i in sorted(chosen)]


# -- recalling past fixes (the engineer's FixBug prompt, behind the ``recall`` option) ----------

#: Characters of past fixes one FixBug prompt may carry.
RECALL_BUDGET = 1500
#: Characters of one remembered fix (failure lines + diff).
FIX_CHARS = 1200


def failure_summary(output: str) -> str:
    """The lines of pytest output that say what failed (``E ...``, ``FAILED ...``, errors);
    the output's tail when it has none. This is what a similar failure shares."""
    lines = [ln.strip() for ln in output.splitlines()
             if ln.startswith(("E ", "FAILED", "ERROR")) or re.search(r"\w+(Error|Exception):", ln)]
    return "\n".join(dict.fromkeys(lines)) or output[-600:]


async def recall_fixes(memory: RetrievalMemory | None, output: str, *, k: int = 2,
                       budget: int = RECALL_BUDGET) -> str:
    """A prompt section with the past fixes most similar to this failure (best first, whole
    fixes only, at most ``budget`` characters), or ``""`` when there is no memory or no match."""
    if memory is None:
        return ""
    blocks: list[str] = []
    used = 0
    for message, _ in await memory.search(failure_summary(output), k):
        if used + len(message.content) <= budget:
            blocks.append(message.content)
            used += len(message.content)
    if not blocks:
        return ""
    return ("Similar failures fixed in earlier runs (a hint; the code here may differ):\n"
            + "\n\n".join(blocks) + "\n\n")


async def remember_fix(memory: RetrievalMemory | None, output: str, diffs: dict[str, str], *,
                       cause_by: type | None = None) -> None:
    """Store a failure and the diffs that fixed it, for :func:`recall_fixes` in later runs."""
    if memory is None:
        return
    text = "Failure:\n" + failure_summary(output) + "\nFix:\n" + "".join(diffs.values())
    fields = {"cause_by": cause_by} if cause_by is not None else {}
    await memory.add(Message(content=text[:FIX_CHARS], sent_from="Engineer", **fields))

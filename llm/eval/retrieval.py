"""Retrieval evaluation: recall@1, recall@10 and MRR of held-out (query, doc) pairs.

Each query is ranked against every distinct document of its own kind in the held-out set
(docstring -> code against all held-out code, and so on); its own document is the one
right answer. Rankers compared side by side in one run: the trained embedder, the
untrained base it started from, BM25 (plain Python, :mod:`mgpt.memory.retrieval`), and the
hybrid of BM25 and the trained embedder (the retrieval memory's default with an embedder).

The pairs are :class:`RetrievalPair` rows in JSONL (:func:`read_retrieval_pairs`,
:func:`write_retrieval_pairs`); ``mgpt train embed`` mines them
(:mod:`mgpt.llm.train.pairs`) and writes its held-out ones next to the embedder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from mgpt.llm.eval.errors import EvalInputError

__all__ = ["RetrievalPair", "RetrievalScores", "bm25_ranker", "compare", "embed_ranker", "evaluate_retrieval",
           "hybrid_ranker", "read_retrieval_pairs", "write_retrieval_pairs"]

#: ranker(queries, docs) -> one score row per query (len(docs) scores, higher is better).
Ranker = Callable[[Sequence[str], Sequence[str]], list[list[float]]]


@dataclass(frozen=True)
class RetrievalPair:
    """A query and the document it should retrieve; ``source`` (a module or transcript) groups
    pairs for the train/held-out split; ``kind`` says what the pair pairs (``doc2code``,
    ``name2doc``, ``req2code``, ``error2fix``)."""

    query: str
    doc: str
    kind: str
    source: str


def write_retrieval_pairs(pairs: Iterable[RetrievalPair], path: str | Path) -> None:
    """One JSON object per pair (query, doc, kind, source)."""
    Path(path).write_text("".join(json.dumps(asdict(p)) + "\n" for p in pairs), encoding="utf-8")


def read_retrieval_pairs(path: str | Path) -> list[RetrievalPair]:
    """Pairs from JSONL (``query``, ``doc``, optional ``kind`` and ``source``); a bad line is
    an :class:`EvalInputError` naming it."""
    p = Path(path)
    if not p.is_file():
        raise EvalInputError(f"pairs file {p} does not exist")
    out = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(RetrievalPair(str(d["query"]), str(d["doc"]), str(d.get("kind", "pair")),
                                     str(d.get("source", ""))))
        except (ValueError, KeyError, TypeError) as e:
            raise EvalInputError(f"{p}:{i}: not a pair (need JSON with query and doc): {e}") from None
    return out


@dataclass
class RetrievalScores:
    recall_at_1: float
    recall_at_10: float
    mrr: float
    queries: int

    def row(self) -> str:
        return f"{self.recall_at_1:8.3f} {self.recall_at_10:9.3f} {self.mrr:7.3f} {self.queries:8d}"


def bm25_ranker(queries: Sequence[str], docs: Sequence[str]) -> list[list[float]]:
    from mgpt.memory.retrieval import BM25

    index = BM25(docs)
    return [index.scores(q) for q in queries]


def embed_ranker(embedder) -> Ranker:
    """Cosine similarity under an :class:`mgpt.llm.local.embedder.Embedder`."""

    def rank(queries: Sequence[str], docs: Sequence[str]) -> list[list[float]]:
        q, d = embedder.encode(list(queries)), embedder.encode(list(docs))
        return (q @ d.T).tolist()

    return rank


def hybrid_ranker(embedder, **fusion) -> Ranker:
    """BM25 and the embedder's cosine, fused by reciprocal rank
    (:func:`mgpt.memory.retrieval.reciprocal_rank_fusion`; ``fusion``: its ``k`` and
    ``weights``, by default the retrieval memory's)."""
    dense = embed_ranker(embedder)

    def rank(queries: Sequence[str], docs: Sequence[str]) -> list[list[float]]:
        from mgpt.memory.retrieval import reciprocal_rank_fusion

        return [reciprocal_rank_fusion(b, d, **fusion) for b, d in zip(bm25_ranker(queries, docs), dense(queries, docs))]

    return rank


def _rank_of(scores: list[float], gold: int) -> int:
    """1-based rank of ``gold``; ties count against it (a constant scorer earns nothing)."""
    return 1 + sum(1 for i, s in enumerate(scores) if s >= scores[gold] and i != gold)


def evaluate_retrieval(pairs: Sequence[RetrievalPair], ranker: Ranker) -> dict[str, RetrievalScores]:
    """Scores per pair kind and ``all`` (queries pooled), for one ranker."""
    ranks_by_kind: dict[str, list[int]] = {}
    for kind in sorted({p.kind for p in pairs}):
        group = [p for p in pairs if p.kind == kind]
        docs = list(dict.fromkeys(p.doc for p in group))
        where = {d: i for i, d in enumerate(docs)}
        rows = ranker([p.query for p in group], docs)
        ranks_by_kind[kind] = [_rank_of(row, where[p.doc]) for row, p in zip(rows, group)]
    ranks_by_kind["all"] = [r for rs in list(ranks_by_kind.values()) for r in rs]

    def score(ranks: list[int]) -> RetrievalScores:
        n = len(ranks) or 1
        return RetrievalScores(sum(r <= 1 for r in ranks) / n, sum(r <= 10 for r in ranks) / n,
                               sum(1.0 / r for r in ranks) / n, len(ranks))

    return {k: score(v) for k, v in ranks_by_kind.items()}


def compare(pairs: Sequence[RetrievalPair], model: Path | None,
            base: Path | None) -> dict[str, dict[str, RetrievalScores]]:
    """trained / base / bm25 / hybrid (BM25 and the trained embedder, fused) side by side
    (rankers whose folder is None are left out)."""
    results = {}
    trained = None
    for name, folder in (("trained", model), ("base", base)):
        if folder is not None:
            from mgpt.llm.local.embedder import load_embedder

            embedder = load_embedder(folder)
            trained = embedder if name == "trained" else trained
            results[name] = evaluate_retrieval(pairs, embed_ranker(embedder))
    results["bm25"] = evaluate_retrieval(pairs, bm25_ranker)
    if trained is not None:
        results["hybrid"] = evaluate_retrieval(pairs, hybrid_ranker(trained))
    return results

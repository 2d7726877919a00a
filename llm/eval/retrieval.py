"""Retrieval evaluation: recall@1, recall@10 and MRR of held-out (query, doc) pairs.

Each query is ranked against every distinct document of its own kind in the held-out set
(docstring -> code against all held-out code, and so on); its own document is the one
right answer. Rankers compared side by side in one run: the trained embedder, the
untrained base it started from, and BM25 (plain Python, :mod:`mgpt.memory.retrieval`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import typer

if TYPE_CHECKING:  # `mgpt --help` imports this module: keep it to typer
    from mgpt.llm.local.embedder import Pair

__all__ = ["RetrievalScores", "bm25_ranker", "embed_ranker", "evaluate_retrieval", "hybrid_ranker", "retrieval_command"]

#: ranker(queries, docs) -> one score row per query (len(docs) scores, higher is better).
Ranker = Callable[[Sequence[str], Sequence[str]], list[list[float]]]


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


def evaluate_retrieval(pairs: Sequence[Pair], ranker: Ranker) -> dict[str, RetrievalScores]:
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


def compare(pairs: Sequence[Pair], model: Path | None, base: Path | None) -> dict[str, dict[str, RetrievalScores]]:
    """trained / base / bm25 / hybrid (BM25 + trained, fused) side by side (rankers whose
    folder is None are left out)."""
    from mgpt.llm.local.embedder import load_embedder

    results = {}
    trained = None
    for name, folder in (("trained", model), ("base", base)):
        if folder is not None:
            embedder = load_embedder(folder)
            trained = embedder if name == "trained" else trained
            results[name] = evaluate_retrieval(pairs, embed_ranker(embedder))
    results["bm25"] = evaluate_retrieval(pairs, bm25_ranker)
    if trained is not None:
        results["hybrid"] = evaluate_retrieval(pairs, hybrid_ranker(trained))
    return results


def retrieval_command(
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Embedder folder written by `mgpt train embed`."),
    base: Optional[Path] = typer.Option(None, "--base", help="Untrained base to compare (default: the one the "
                                        "embedder records; 'none' to skip)."),
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="Held-out pairs JSONL (default: MODEL/heldout_pairs.jsonl)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results here as JSON."),
) -> None:
    """Retrieval recall@1, recall@10 and MRR on held-out pairs: trained embedder, its base, BM25."""
    from mgpt.agents.errors import MgptError

    try:
        from transformers.utils import logging

        logging.set_verbosity_error()  # no loading bars between the table's rows
        logging.disable_progress_bar()
    except ImportError:  # BM25 alone needs no transformers
        pass
    try:
        from mgpt.llm.local.embedder import EMBED_CONFIG, read_pairs

        if model is None and pairs is None:
            raise MgptError("give --model DIR (an embedder) or --pairs FILE (BM25 only)")
        pairs_path = pairs or (model / "heldout_pairs.jsonl")  # type: ignore[operator]
        held = read_pairs(pairs_path)
        if not held:
            raise MgptError(f"{pairs_path} holds no pairs")
        if base is None and model is not None and (model / EMBED_CONFIG).is_file():
            recorded = json.loads((model / EMBED_CONFIG).read_text(encoding="utf-8")).get("base")
            base = Path(recorded) if recorded and Path(recorded).is_dir() else None
        if base is not None and str(base) == "none":
            base = None
        results = compare(held, model, base)
    except MgptError as e:
        typer.echo(f"Error: {e}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"{'ranker':8} {'kind':10} {'recall@1':>8} {'recall@10':>9} {'MRR':>7} {'queries':>8}")
    for name, by_kind in results.items():
        for kind, s in by_kind.items():
            typer.echo(f"{name:8} {kind:10} {s.row()}")
    if json_out is not None:
        json_out.write_text(json.dumps({n: {k: asdict(s) for k, s in r.items()} for n, r in results.items()},
                                       indent=2), encoding="utf-8")

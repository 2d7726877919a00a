"""Retrieval for the writers' room: BM25, a fine-tuned embedder, and their hybrid (RRF).

    python benchmarks/bench_write_retrieval.py --model runs/embed-smollm2-lora

First the fusion's settings (RRF's k, and how much the embedder's ranks count against
BM25's) are chosen on validation pairs from stdlib modules that neither the training nor the
held-out pairs came from. Then two tables, every ranker side by side in one run (trained,
its untrained base, BM25, plain RRF, the tuned hybrid), each text cut at the same length:

1. The held-out pairs of ``mgpt train embed`` (``MODEL/heldout_pairs.jsonl``: 244 queries
   for the embed_tiny split, the same as docs/benchmarks.md's retrieval table).
2. The HOWTO task's source retrieval: for each section of each Python HOWTO, the query
   "<HOWTO title>: <section heading>" and, as the relevant documents, the library
   reference's passages documenting the API names that section uses
   (:func:`mgpt.domains.pydocs.howtos.retrieval_pairs`; the pages quoting the HOWTO are left
   out first). Each (query, relevant passage) pair is ranked against every relevant
   passage of every HOWTO, as in table 1.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from mgpt.domains.pydocs.corpus import DEBIAN_SOURCES, load_corpus
from mgpt.domains.pydocs.howtos import howtos, retrieval_pairs
from mgpt.llm.eval.retrieval import RetrievalPair as Pair
from mgpt.llm.eval.retrieval import bm25_ranker, embed_ranker, evaluate_retrieval
from mgpt.llm.eval.retrieval import read_retrieval_pairs as read_pairs
from mgpt.llm.local.embedder import load_embedder
from mgpt.llm.train.pairs import mine_stdlib_pairs
from mgpt.memory.retrieval import HYBRID_K, HYBRID_WEIGHTS, RRF_K, reciprocal_rank_fusion


def howto_pairs(sources: Path) -> list[Pair]:
    corpus = load_corpus(sources, under=["library", "howto"])
    library = corpus.without(p for p in list(corpus.pages) if not p.startswith("library/"))
    pairs = []
    for howto in howtos(corpus):
        allowed, _ = howto.sources(library)
        for query, passage in retrieval_pairs(howto, allowed.passages()):
            pairs.append(Pair(query, passage.text, "howto", howto.name))
    return pairs


def validation_pairs(model: Path, modules: int, seed: int = 0) -> list[Pair]:
    """Pairs from stdlib modules that neither the training nor the held-out pairs came from:
    where the fusion's settings are chosen, so the held-out queries are never tuned on."""
    used = {p.source for name in ("train_pairs.jsonl", "heldout_pairs.jsonl") for p in read_pairs(model / name)}
    pairs = [p for p in mine_stdlib_pairs(max_modules=None) if p.source not in used]
    chosen = set(random.Random(seed).sample(sorted({p.source for p in pairs}), modules))
    return [p for p in pairs if p.source in chosen]


def cached(ranker):
    """The ranker, each (queries, docs) scored once (the hybrid rows reuse the dense scores)."""
    memo: dict = {}

    def rank(queries, docs):
        key = (tuple(queries), tuple(docs))
        if key not in memo:
            memo[key] = ranker(queries, docs)
        return memo[key]

    return rank


def fused(bm25, dense, k: int, weights: tuple[float, float]):
    return lambda q, d: [reciprocal_rank_fusion(b, e, k=k, weights=weights) for b, e in zip(bm25(q, d), dense(q, d))]


def tune_fusion(pairs: list[Pair], bm25, dense) -> tuple[int, tuple[float, float], list[str]]:
    """The (k, weights) whose worse margin over BM25 (on R@10 and on MRR) is largest on ``pairs``."""
    base = evaluate_retrieval(pairs, bm25)["all"]
    best, lines = None, []
    for k in (10, 30, 60):
        for wd in (0.25, 0.5, 0.75, 1.0, 1.5):
            s = evaluate_retrieval(pairs, fused(bm25, dense, k, (1.0, wd)))["all"]
            margin = min(s.recall_at_10 - base.recall_at_10, s.mrr - base.mrr)
            lines.append(f"| {k} | 1 : {wd} | {s.recall_at_10:.3f} | {s.mrr:.3f} | {margin:+.3f} |")
            if best is None or margin > best[0]:
                best = (margin, k, (1.0, wd))
    lines.insert(0, f"| k | BM25 : dense | R@10 | MRR | worse margin over BM25 (R@10 {base.recall_at_10:.3f}, "
                    f"MRR {base.mrr:.3f}) |\n|---|---|---|---|---|")
    return best[1], best[2], lines


def table(results: dict, title: str) -> str:
    names = list(results)
    kinds = list(results[names[0]])
    lines = [f"\n{title}\n", "| kind | queries | " + " | ".join(f"{n} R@1 | {n} R@10 | {n} MRR" for n in names) + " |",
             "|---|---|" + "---|---|---|" * len(names)]
    for kind in kinds:
        cells = [f"{results[n][kind].recall_at_1:.3f} | {results[n][kind].recall_at_10:.3f} | "
                 f"{results[n][kind].mrr:.3f}" for n in names]
        lines.append(f"| {kind} | {results[names[0]][kind].queries} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="An embedder folder written by mgpt train embed.")
    ap.add_argument("--base", type=Path, help="Its untrained base (default: the one it records).")
    ap.add_argument("--sources", type=Path, default=DEBIAN_SOURCES, help="The docs' sources (howto/ and library/).")
    ap.add_argument("--max-length", type=int, help="Tokens per text (default: the trained embedder's, for both).")
    ap.add_argument("--validation-modules", type=int, default=40, help="Stdlib modules, used by neither the "
                    "training nor the held-out pairs, on which the fusion's k and weights are chosen (0: plain RRF).")
    ap.add_argument("--json", type=Path, help="Also write the figures here.")
    args = ap.parse_args()
    config = json.loads((args.model / "embed_config.json").read_text())
    base = args.base or Path(config["base"])
    length = args.max_length or int(config.get("max_length", 128))
    trained, untrained = load_embedder(args.model, max_length=length), load_embedder(base, max_length=length)
    bm25, dense, plain = cached(bm25_ranker), cached(embed_ranker(trained)), cached(embed_ranker(untrained))
    k, weights = RRF_K, (1.0, 1.0)
    if args.validation_modules:
        t0 = time.perf_counter()
        val = validation_pairs(args.model, args.validation_modules)
        k, weights, lines = tune_fusion(val, bm25, dense)
        print(f"\nFusion chosen on {len(val)} validation pairs ({args.validation_modules} other stdlib modules): "
              f"k={k}, weights={weights} ({time.perf_counter() - t0:.0f} s)\n" + "\n".join(lines))
        if (k, weights) != (HYBRID_K, HYBRID_WEIGHTS):
            print(f"note: the retrieval memory's hybrid uses k={HYBRID_K}, weights={HYBRID_WEIGHTS}")
    rankers = {"trained": dense, "base": plain, "bm25": bm25, "rrf": fused(bm25, dense, RRF_K, (1.0, 1.0)),
               "hybrid": fused(bm25, dense, k, weights)}
    out = {}
    for name, pairs, title in (("heldout", read_pairs(args.model / "heldout_pairs.jsonl"),
                                "Held-out pairs (mgpt train embed's split)"),
                               ("howto", howto_pairs(args.sources), "HOWTO source retrieval")):
        t0 = time.perf_counter()
        out[name] = {n: evaluate_retrieval(pairs, r) for n, r in rankers.items()}
        print(table(out[name], f"{title}: {len(pairs)} queries, {len({p.doc for p in pairs})} documents, "
                               f"{length} tokens a text"), f"\n({time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"k": k, "weights": weights, **{
            t: {n: {kind: vars(s) for kind, s in r.items()} for n, r in res.items()} for t, res in out.items()}},
            indent=2))


if __name__ == "__main__":
    main()

"""Retrieval for the writers' room: BM25, a fine-tuned embedder, and their hybrid (RRF).

    python benchmarks/bench_write_retrieval.py --model runs/embed-smollm2-lora

Two tables, every ranker side by side in one run:

1. The held-out pairs of ``mgpt train embed`` (``MODEL/heldout_pairs.jsonl``: 244 queries
   for the embed_tiny split, the same as docs/benchmarks.md's retrieval table), through
   :func:`mgpt.llm.eval.retrieval.compare`: trained, its base, BM25, hybrid.
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
import time
from pathlib import Path

from mgpt.domains.pydocs.corpus import DEBIAN_SOURCES, load_corpus
from mgpt.domains.pydocs.howtos import howtos, retrieval_pairs
from mgpt.llm.eval.retrieval import bm25_ranker, compare, embed_ranker, evaluate_retrieval, hybrid_ranker
from mgpt.llm.local.embedder import Pair, load_embedder, read_pairs


def howto_pairs(sources: Path) -> list[Pair]:
    corpus = load_corpus(sources, under=["library", "howto"])
    library = corpus.without(p for p in list(corpus.pages) if not p.startswith("library/"))
    pairs = []
    for howto in howtos(corpus):
        allowed, _ = howto.sources(library)
        for query, passage in retrieval_pairs(howto, allowed.passages()):
            pairs.append(Pair(query, passage.text, "howto", howto.name))
    return pairs


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
    ap.add_argument("--max-length", type=int, help="Tokens per text at evaluation (default: the embedder's).")
    ap.add_argument("--json", type=Path, help="Also write the figures here.")
    args = ap.parse_args()
    base = args.base or Path(json.loads((args.model / "embed_config.json").read_text())["base"])
    t0 = time.perf_counter()
    held = compare(read_pairs(args.model / "heldout_pairs.jsonl"), args.model, base)
    print(table(held, "Held-out pairs (mgpt train embed's split)"), f"\n({time.perf_counter() - t0:.0f} s)")
    t0 = time.perf_counter()
    pairs = howto_pairs(args.sources)
    trained, untrained = load_embedder(args.model, max_length=args.max_length), load_embedder(base, max_length=args.max_length)
    found = {"trained": evaluate_retrieval(pairs, embed_ranker(trained)),
             "base": evaluate_retrieval(pairs, embed_ranker(untrained)),
             "bm25": evaluate_retrieval(pairs, bm25_ranker),
             "hybrid": evaluate_retrieval(pairs, hybrid_ranker(trained))}
    print(table(found, f"HOWTO source retrieval ({len({p.source for p in pairs})} HOWTOs, "
                       f"{len({p.doc for p in pairs})} passages)"), f"\n({time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({t: {n: {k: vars(s) for k, s in r.items()} for n, r in res.items()}
                                         for t, res in (("heldout", held), ("howto", found))}, indent=2))


if __name__ == "__main__":
    main()

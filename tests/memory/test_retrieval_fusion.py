"""Reciprocal rank fusion, the memory's rankings, and adding many messages at once."""

from __future__ import annotations

import asyncio

import pytest

from mgpt.agents.message import Message
from mgpt.memory.retrieval import RetrievalError, RetrievalMemory, reciprocal_rank_fusion


def _embed(texts):  # one dimension per word of a tiny vocabulary: "meaning" without shared words
    vocab = [("sort", "order", "arrange"), ("file", "disk", "save"), ("date", "time", "clock")]
    return [[float(sum(w in t.lower() for w in group)) for group in vocab] for t in texts]


def test_rrf_fuses_ranks_and_leaves_bm25_zeros_out_of_its_ranking():
    fused = reciprocal_rank_fusion([2.0, 0.0, 1.0], [0.1, 0.9, 0.5], k=1, weights=(1.0, 1.0))
    assert fused == pytest.approx([1 / 2 + 1 / 4, 1 / 2, 1 / 3 + 1 / 3])
    assert reciprocal_rank_fusion([1.0, 1.0], [0.0, 0.0], k=1, weights=(1.0, 1.0)) == [1.0, 1.0]  # ties share a rank
    # The hybrid's own settings: k=10, the embedder's ranks at half weight.
    assert reciprocal_rank_fusion([2.0, 1.0], [0.1, 0.9]) == pytest.approx([1 / 11 + 0.5 / 12, 1 / 12 + 0.5 / 11])
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([1.0], [1.0, 2.0])


def test_the_memory_ranks_by_bm25_dense_or_both():
    texts = ["arrange the items in order", "sort the list", "save the file to disk", "what time is it"]
    messages = [Message(content=t) for t in texts]

    def top(ranking, query):
        memory = RetrievalMemory(embed=_embed if ranking != "bm25" else None, ranking=ranking)
        asyncio.run(memory.extend(messages))
        return [m.content for m, _ in asyncio.run(memory.search(query, 2))]

    assert top("bm25", "save sort") == ["sort the list", "save the file to disk"]  # shorter first on a tie
    assert top("dense", "arrange")[0] == "arrange the items in order"
    assert top("hybrid", "sort") == ["sort the list", "arrange the items in order"]  # words and meaning
    assert RetrievalMemory(embed=_embed).ranking == "hybrid"
    with pytest.raises(RetrievalError, match="needs an embedder"):
        RetrievalMemory(ranking="dense")
    with pytest.raises(RetrievalError, match="not one of"):
        RetrievalMemory(embed=_embed, ranking="best")


def test_extend_embeds_in_batches_and_persists_once(tmp_path):
    calls = []

    def embed(texts):
        calls.append(len(texts))
        return _embed(texts)

    memory = RetrievalMemory(tmp_path / "store", embed=embed, ranking="dense")
    messages = [Message(id=f"m{i}", content=f"sort item {i}") for i in range(5)]
    asyncio.run(memory.extend([*messages, messages[0]], batch=2))
    assert calls == [2, 2, 1] and len(asyncio.run(memory.get())) == 5
    again = RetrievalMemory(tmp_path / "store", embed=embed, ranking="dense")
    assert len(asyncio.run(again.get())) == 5 and calls == [2, 2, 1]  # vectors loaded, not re-embedded

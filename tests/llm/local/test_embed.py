"""Contrastive embeddings: InfoNCE, the trainer on a separable toy set, the loader, and the
retrieval evaluation (metrics, pairs files and CLI). Pair mining: tests/llm/train/test_pairs.py."""

import json
import math

import pytest
from typer.testing import CliRunner

from mgpt.cli import app
from mgpt.llm.eval.retrieval import (
    RetrievalPair, bm25_ranker, evaluate_retrieval, read_retrieval_pairs, write_retrieval_pairs,
)
from mgpt.llm.local.embedder import normalize_text
from pathlib import Path


def test_pairs_files_round_trip_and_a_bad_line_is_named(tmp_path):
    pairs = [RetrievalPair(f"q{i}", f"d{i}", "k", f"mod{i}") for i in range(3)]
    write_retrieval_pairs(pairs, tmp_path / "p.jsonl")
    assert read_retrieval_pairs(tmp_path / "p.jsonl") == pairs
    (tmp_path / "bad.jsonl").write_text('{"query": "q"}\n')
    from mgpt.llm.eval.errors import EvalInputError

    with pytest.raises(EvalInputError, match="bad.jsonl:1: not a pair"):
        read_retrieval_pairs(tmp_path / "bad.jsonl")


def test_normalize_text_makes_code_and_prose_share_words():
    assert normalize_text("def parseDate(s):") == "def parse date parsedate s"
    assert set(normalize_text("Parse a date")) <= set(normalize_text("def parse_date"))  | set("a ")


def test_retrieval_metrics_perfect_constant_and_bm25():
    pairs = [RetrievalPair("alpha beta", "alpha beta gamma", "k", "m"),
             RetrievalPair("delta", "delta epsilon", "k", "m"), RetrievalPair("zeta eta", "zeta eta theta", "k", "m")]
    perfect = evaluate_retrieval(pairs, lambda qs, ds: [[1.0 if q.split()[0] in d else 0.0 for d in ds] for q in qs])
    assert perfect["all"].recall_at_1 == 1.0 and perfect["all"].mrr == 1.0
    constant = evaluate_retrieval(pairs, lambda qs, ds: [[0.0] * len(ds) for _ in qs])
    assert constant["all"].recall_at_1 == 0.0 and constant["all"].mrr == pytest.approx(1 / 3)
    assert evaluate_retrieval(pairs, bm25_ranker)["k"].recall_at_1 == 1.0


def test_the_hybrid_keeps_bm25s_first_place_and_lets_the_embedder_order_the_rest():
    np = pytest.importorskip("numpy")
    from mgpt.llm.eval.retrieval import embed_ranker, hybrid_ranker

    class Fake:  # prefers "gamma", then "delta", then "alpha beta", whatever the query
        def encode(self, texts):
            table = {"alpha": [1.0, 0.0, 0.0], "alpha beta": [0.1, 0.0, 0.0], "gamma": [0.9, 0.0, 0.0],
                     "delta": [0.5, 0.0, 0.0]}
            return np.array([table[t] for t in texts])

    docs = ["alpha beta", "gamma", "delta"]
    dense = embed_ranker(Fake())(["alpha"], docs)[0]
    assert max(range(3), key=dense.__getitem__) == 1  # the embedder alone puts "gamma" first
    fused = hybrid_ranker(Fake())(["alpha"], docs)[0]
    assert sorted(range(3), key=lambda i: -fused[i]) == [0, 1, 2]  # BM25's only match first, then dense order
    heavy = hybrid_ranker(Fake(), k=1, weights=(0.1, 1.0))(["alpha"], docs)[0]
    assert max(range(3), key=heavy.__getitem__) == 1  # k and weights are passed through: a heavy embedder wins


def test_eval_retrieval_cli_with_pairs_only_and_bad_input(tmp_path):
    pairs = tmp_path / "held.jsonl"
    write_retrieval_pairs([RetrievalPair("open file", "def open_file(): ...", "doc2code", "m"),
                           RetrievalPair("close socket", "def close_socket(): ...", "doc2code", "m")], pairs)
    result = CliRunner().invoke(app, ["eval", "retrieval", "--pairs", str(pairs), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "bm25" in result.output and "recall@10" in result.output
    assert json.loads((tmp_path / "r.json").read_text())["bm25"]["all"]["recall_at_1"] == 1.0
    missing = CliRunner().invoke(app, ["eval", "retrieval", "--pairs", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    neither = CliRunner().invoke(app, ["eval", "retrieval"])
    assert neither.exit_code == 2


# -- torch from here -------------------------------------------------------------------------


def _torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


def test_info_nce_is_low_for_aligned_pairs_and_hard_negatives_raise_it():
    torch = _torch()
    from mgpt.llm.train.embed import info_nce

    q = torch.eye(4)
    assert info_nce(q, q.clone(), 0.05).item() < 1e-3
    shuffled = q[[1, 2, 3, 0]]
    assert info_nce(q, shuffled, 0.05).item() > 5
    # A hard negative identical to each positive: the model cannot tell them apart.
    assert info_nce(q, q.clone(), 0.05, hard=q.clone()).item() == pytest.approx(0.5 * math.log(2), abs=1e-3)


def _toy_pairs():
    """Separable but not by shared words: query word i goes with document word i of another
    vocabulary, so only training can link them. Each pair of words is in every source, so the
    held-out source tests the learnt links on new sentences."""
    query_words = ["apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "rocket"]
    doc_words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    templates = ["find the {} please", "where is my {}", "show {} now", "i want {}"]
    return [RetrievalPair(t.format(q), f"def handle_{d}(x): return x", "k", f"m{j}")
            for j, t in enumerate(templates) for q, d in zip(query_words, doc_words)]


@pytest.mark.slow
def test_contrastive_training_lowers_the_loss_and_saves_a_loadable_embedder(tmp_path):
    _torch()
    from mgpt.llm.local.embedder import load_embedder
    from mgpt.llm.train.config import load_config
    from mgpt.llm.train.embed import train_embed

    cfg = load_config("embed_tiny", {
        "out_dir": str(tmp_path / "emb"), "batch_size": 8, "log_interval": 10, "threads": 1,
        "model.n_layer": 1, "model.n_head": 2, "model.n_embd": 32, "tokenizer.vocab_size": 300,
        "embed.max_length": 24, "embed.val_fraction": 0.25, "optim.lr": 1e-2, "schedule.warmup_iters": 2,
        "embed.hard_negatives": False, "max_iters": 60,
    })
    result = train_embed(cfg, pairs=_toy_pairs(), progress=False)
    assert result.last_loss < result.first_loss - 0.5, result
    meta = json.loads((tmp_path / "emb" / "embed_config.json").read_text())
    assert meta["normalize"] is True and Path(meta["base"]) == (tmp_path / "emb" / "base").resolve()
    embedder = load_embedder(tmp_path / "emb")
    vectors = embedder.embed(["find the apple please", "def handle_apple(x): return x", ""])
    assert len(vectors) == 3 and all(abs(sum(v * v for v in vec) - 1) < 1e-4 for vec in vectors[:2])
    assert not any(vectors[2])  # an empty text has no tokens: the zero vector, similar to nothing
    assert embedder(["x"]) == embedder.embed(["x"])
    # The embedder plugs into the retrieval memory (memory/ never imports it: it is injected).
    import asyncio

    from mgpt.agents.message import Message
    from mgpt.memory import RetrievalMemory

    async def remember_and_search():
        mem = RetrievalMemory(tmp_path / "store", embed=embedder)
        for text in ("def handle_alpha(x): return x", "def handle_hotel(x): return x"):
            await mem.add(Message(content=text))
        hits = await RetrievalMemory(tmp_path / "store", embed=embedder).search("find the apple please", k=2)
        return [m.content for m, _ in hits]

    assert len(asyncio.run(remember_and_search())) == 2
    meta_store = json.loads((tmp_path / "store" / "meta.json").read_text())
    assert meta_store["embedder"] == embedder.name and meta_store["count"] == 2
    # The held-out modules' pairs: the trained model ranks them better than its random start.
    from mgpt.llm.eval.retrieval import compare

    held = read_retrieval_pairs(tmp_path / "emb" / "heldout_pairs.jsonl")
    scores = compare(held, tmp_path / "emb", result.base_dir)
    assert scores["trained"]["all"].mrr > scores["base"]["all"].mrr
    assert set(scores) == {"trained", "base", "bm25", "hybrid"} and scores["hybrid"]["all"].queries == len(held)


@pytest.mark.slow
def test_train_embed_cli_with_lora_on_a_model_folder(tmp_path):
    _torch()
    pytest.importorskip("peft")
    from mgpt.llm.train.config import load_config
    from mgpt.llm.train.pretrain import build_model
    from mgpt.llm.train.tokenizer import train_tokenizer

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(p.query + " " + p.doc for p in _toy_pairs()))
    tok = train_tokenizer(corpus, tmp_path / "base", kind="char")
    model = build_model(load_config("tiny", {"block_size": 64}), tok)
    model.save_pretrained(tmp_path / "base")
    pairs = tmp_path / "pairs.jsonl"
    write_retrieval_pairs(_toy_pairs(), pairs)
    args = ["train", "embed", "embed_tiny", "--model", str(tmp_path / "base"), "--out", str(tmp_path / "emb"), "-q"]
    for kv in ("max_iters=4", "batch_size=4", "threads=1", "embed.lora=true", "embed.max_length=48",
               f"data.path=\"{pairs}\"", "lora.r=2", "lora.alpha=4", "lora.target_modules=[\"c_attn\"]"):
        args += ["--set", kv]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "held-out pairs" in result.output
    meta = json.loads((tmp_path / "emb" / "embed_config.json").read_text())
    assert meta["lora"] is True and meta["normalize"] is False
    assert not (tmp_path / "emb" / "adapter_config.json").exists()  # merged: a standard folder
    ev = CliRunner().invoke(app, ["eval", "retrieval", "--model", str(tmp_path / "emb")])
    assert ev.exit_code == 0, ev.output
    assert "trained" in ev.output and "base" in ev.output and "bm25" in ev.output


def test_train_embed_bad_input_is_one_error_line(tmp_path):
    _torch()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "only a query"}\n')
    result = CliRunner().invoke(app, ["train", "embed", "--set", f'data.path="{bad}"', "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "not a pair" in result.output
    lora = CliRunner().invoke(app, ["train", "embed", "--set", "embed.lora=true", "--out", str(tmp_path / "o")])
    assert lora.exit_code == 2 and "--model" in lora.output
    temp = CliRunner().invoke(app, ["train", "embed", "--set", "embed.temperature=0"])
    assert temp.exit_code == 2 and "temperature" in temp.output

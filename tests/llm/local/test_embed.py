"""Contrastive embeddings: InfoNCE, pair mining, the trainer on a separable toy set, the
loader, and the retrieval evaluation (metrics and CLI)."""

import json
import math
import textwrap

import pytest
from typer.testing import CliRunner

from mgpt.cli import app
from mgpt.llm.local.embedder import (
    Pair, mine_stdlib_pairs, mine_transcript_pairs, normalize_text, read_pairs, split_by_source, write_pairs,
)
from mgpt.llm.eval.retrieval import bm25_ranker, evaluate_retrieval
from pathlib import Path
from testpaths import GOLDEN

TRANSCRIPTS = sorted(GOLDEN.glob("*.jsonl"))


def test_mining_the_stdlib_pairs_docstrings_with_code_and_names(tmp_path):
    root = tmp_path / "lib"
    (root / "pkg").mkdir(parents=True)
    (root / "test").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "dates.py").write_text(textwrap.dedent('''
        def parse_date(text):
            """Parse an ISO date string into a tuple of ints.

            More detail here."""
            return tuple(int(p) for p in text.split("-"))

        def short(x):
            """Too short."""
            return x

        class Clock:
            def now(self):
                """Return the current time as seconds since the epoch."""
                return 0
    '''))
    (root / "test" / "test_x.py").write_text('def f():\n    """A documented test helper function."""\n')
    pairs = mine_stdlib_pairs(root=root)
    assert {(p.kind, p.source) for p in pairs} == {("doc2code", "pkg.dates"), ("name2doc", "pkg.dates")}
    doc2code = {p.query: p.doc for p in pairs if p.kind == "doc2code"}
    code = doc2code["Parse an ISO date string into a tuple of ints."]
    assert code.startswith("def parse_date(text):") and '"""' not in code and "More detail" not in code
    names = {p.query for p in pairs if p.kind == "name2doc"}
    assert names == {"pkg.dates.parse_date", "pkg.dates.Clock.now"}


def test_the_real_stdlib_and_the_golden_runs_give_pairs():
    pairs = mine_stdlib_pairs(max_modules=5, seed=0)
    assert len({p.source for p in pairs}) >= 2 and all(p.query and p.doc for p in pairs)
    golden = mine_transcript_pairs(TRANSCRIPTS)
    kinds = {p.kind for p in golden}
    assert kinds == {"req2code", "error2fix"}
    fix = next(p for p in golden if p.kind == "error2fix")
    assert "InsufficientFundsError" in fix.query and "+        if amount > balance:" in fix.doc


def test_split_is_by_source_and_pairs_round_trip(tmp_path):
    pairs = [Pair(f"q{i}", f"d{i}", "k", f"mod{i % 5}") for i in range(50)]
    train, held = split_by_source(pairs, 0.4, seed=1)
    assert len(train) + len(held) == 50 and held
    assert not {p.source for p in train} & {p.source for p in held}
    write_pairs(held, tmp_path / "p.jsonl")
    assert read_pairs(tmp_path / "p.jsonl") == held


def test_normalize_text_makes_code_and_prose_share_words():
    assert normalize_text("def parseDate(s):") == "def parse date parsedate s"
    assert set(normalize_text("Parse a date")) <= set(normalize_text("def parse_date"))  | set("a ")


def test_retrieval_metrics_perfect_constant_and_bm25():
    pairs = [Pair("alpha beta", "alpha beta gamma", "k", "m"), Pair("delta", "delta epsilon", "k", "m"),
             Pair("zeta eta", "zeta eta theta", "k", "m")]
    perfect = evaluate_retrieval(pairs, lambda qs, ds: [[1.0 if q.split()[0] in d else 0.0 for d in ds] for q in qs])
    assert perfect["all"].recall_at_1 == 1.0 and perfect["all"].mrr == 1.0
    constant = evaluate_retrieval(pairs, lambda qs, ds: [[0.0] * len(ds) for _ in qs])
    assert constant["all"].recall_at_1 == 0.0 and constant["all"].mrr == pytest.approx(1 / 3)
    assert evaluate_retrieval(pairs, bm25_ranker)["k"].recall_at_1 == 1.0


def test_eval_retrieval_cli_with_pairs_only_and_bad_input(tmp_path):
    pairs = tmp_path / "held.jsonl"
    write_pairs([Pair("open file", "def open_file(): ...", "doc2code", "m"),
                 Pair("close socket", "def close_socket(): ...", "doc2code", "m")], pairs)
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
    return [Pair(t.format(q), f"def handle_{d}(x): return x", "k", f"m{j}")
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

    held = read_pairs(tmp_path / "emb" / "heldout_pairs.jsonl")
    scores = compare(held, tmp_path / "emb", result.base_dir)
    assert scores["trained"]["all"].mrr > scores["base"]["all"].mrr


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
    write_pairs(_toy_pairs(), pairs)
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

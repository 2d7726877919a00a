"""BM25, the retrieval memory (persisted, reloaded, re-embedded) and selection under a budget.

No torch: memory/ must work in an install without the [train] extra.
"""

import asyncio
import json
import math

import pytest

from mgpt.agents.message import Message
from mgpt.memory import RetrievalMemory, select_blocks
from mgpt.memory.retrieval import BM25, RetrievalError, tokenize
from testpaths import GOLDEN


def run(coro):
    return asyncio.run(coro)


def test_tokenize_splits_identifiers_and_keeps_the_whole():
    assert tokenize("readFile read_json HTTPServer 42") == [
        "read", "file", "readfile", "read", "json", "read_json", "http", "server", "httpserver", "42"]


def test_bm25_ranks_an_exact_match_first():
    docs = ["open a file and read its lines", "parse a date from an ISO string",
            "send an HTTP request and return the response", "read a date"]
    index = BM25(docs)
    assert index.search("parse a date from an ISO string", k=1)[0][0] == 1
    assert index.search("HTTP response", k=2)[0][0] == 2


def test_bm25_rare_words_outweigh_common_ones_and_scores_never_go_negative():
    docs = ["the the the cat", "the dog", "the the bird", "the"]
    scores = BM25(docs).scores("the dog")
    assert max(range(4), key=scores.__getitem__) == 1
    assert all(s >= 0 for s in scores)
    assert BM25([]).scores("x") == []


def test_retrieval_memory_searches_with_bm25_by_default():
    mem = RetrievalMemory()
    for text in ("KeyError in parse_config when the file is empty", "balance goes negative on withdraw",
                 "unicode error reading the csv"):
        run(mem.add(Message(content=text)))
    hits = run(mem.search("withdraw made balance negative", k=2))
    assert hits[0][0].content == "balance goes negative on withdraw"
    # A message with no word in common is not returned at all under BM25.
    assert all("csv" not in m.content for m, _ in hits)
    assert run(mem.search("zzz", k=3)) == []


def test_retrieval_memory_persists_and_reloads(tmp_path):
    store = tmp_path / "recall"
    mem = RetrievalMemory(store)
    first = Message(content="fix: round cents with Decimal, not float")
    run(mem.add(first))
    run(mem.add(Message(content="fix: strip the trailing newline before split")))
    run(mem.add(first))  # the same message again is ignored
    again = RetrievalMemory(store)
    assert [m.content for m in run(again.get())] == [m.content for m in run(mem.get())]
    assert len(run(again.get())) == 2
    assert run(again.search("float cents rounding", k=1))[0][0].id == first.id
    run(again.clear())
    assert run(RetrievalMemory(store).get()) == []


def _bag_embed(texts):
    """A deterministic toy embedder: counts of a few words, unit length."""
    vocab = ["date", "file", "money", "test"]
    out = []
    for t in texts:
        v = [float(t.lower().count(w)) + 0.01 for w in vocab]
        n = math.sqrt(sum(x * x for x in v))
        out.append([x / n for x in v])
    return out


def test_retrieval_memory_uses_an_injected_embedder_and_stores_vectors(tmp_path):
    store = tmp_path / "s"
    mem = RetrievalMemory(store, embed=_bag_embed)
    for text in ("money money", "a date", "file file file"):
        run(mem.add(Message(content=text)))
    assert run(mem.search("when is the date", k=1))[0][0].content == "a date"
    vectors = [json.loads(line) for line in (store / "vectors.jsonl").read_text().splitlines()]
    assert len(vectors) == 3 and all(abs(sum(x * x for x in v) - 1) < 1e-6 for v in vectors)
    # Reloaded with a different embedder: the old vectors are replaced, not mixed in.
    def other(texts):
        return [[1.0, 0.0] for _ in texts]
    other.name = "other"
    again = RetrievalMemory(store, embed=other)
    assert json.loads((store / "meta.json").read_text())["embedder"] == "other"
    assert all(len(json.loads(line)) == 2 for line in (store / "vectors.jsonl").read_text().splitlines())
    assert len(run(again.get())) == 3


def test_a_bad_embedder_or_store_is_a_clear_error_and_nothing_is_added(tmp_path):
    mem = RetrievalMemory(embed=lambda texts: [])
    with pytest.raises(RetrievalError, match="0 vectors for 1 texts"):
        run(mem.add(Message(content="x")))
    assert run(mem.get()) == []
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "messages.jsonl").write_text("{not json\n")
    with pytest.raises(RetrievalError, match="cannot read the retrieval store"):
        RetrievalMemory(tmp_path / "broken")


def test_select_blocks_keeps_the_relevant_ones_in_order_under_the_budget():
    blocks = ["# ledger.py\ndef deposit(amount)", "# storage.py\ndef load(path)\ndef save(path, data)",
              "# report.py\ndef format_history(rows)"]
    picked = select_blocks("save the ledger to a JSON file at path", blocks, budget=len(blocks[1]) + 5)
    assert picked == [blocks[1]]
    assert select_blocks("anything", blocks, budget=10_000) == blocks
    assert select_blocks("anything", blocks, budget=0) == []
    # keep=1: the most recent block goes in first whatever it scores.
    assert select_blocks("save path", blocks, budget=len(blocks[2]) + 1, keep=1) == [blocks[2]]
    with pytest.raises(ValueError):
        select_blocks("q", blocks, budget=-1)


# -- the options on the company's roles ------------------------------------------------------


def _calls(ws):
    lines = (ws / ".mgpt" / "transcript.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if '"type":"call"' in line.replace(" ", "")]


def _recorded(path):
    return [json.loads(line) for line in path.read_text().splitlines() if '"type":"call"' in line]


@pytest.mark.slow
def test_context_budget_and_recall_change_the_prompts_and_the_golden_replay_still_passes(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from typer.testing import CliRunner

    from mgpt.cli import app

    golden = GOLDEN / "bank_ledger_bug.jsonl"
    store = tmp_path / "recall"
    runs = {}
    for name, extra in (("budget", ["--context-budget", "300", "--recall", str(store)]),
                        ("again", ["--recall", str(store)])):
        ws = tmp_path / name
        result = CliRunner().invoke(app, ["run", "--replay", str(golden), "-w", str(ws), *extra])
        assert result.exit_code == 0, result.output
        assert "passed" in result.output
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ws,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        runs[name] = _calls(ws)
    recorded = _recorded(golden)
    # The same calls, keyed as recorded: the options never add a model call.
    key = lambda c: (c["role"], c["action"], c["turn"])  # noqa: E731
    assert [key(c) for c in runs["budget"]] == [key(c) for c in recorded] == [key(c) for c in runs["again"]]
    chars = lambda calls, action: sum(len(m["content"]) for c in calls if c["action"] == action  # noqa: E731
                                      for m in c["request"])
    for action in ("WriteCode", "WriteTests"):
        assert chars(runs["budget"], action) < chars(recorded, action)
    # The first run remembered its fix; the second run's FixBug prompt recalls it.
    assert "Similar failures fixed in earlier runs" not in runs["budget"][-1]["request"][-1]["content"]
    fix_prompt = next(c for c in runs["again"] if c["action"] == "FixBug")["request"][-1]["content"]
    assert "Similar failures fixed in earlier runs" in fix_prompt and "+        if amount > balance:" in fix_prompt
    assert len(run(RetrievalMemory(store).get())) == 2  # one fix per run


async def _recall_empty():
    from mgpt.memory.retrieval import recall_fixes, remember_fix

    assert await recall_fixes(None, "E   boom") == ""
    await remember_fix(None, "E   boom", {"a.py": "diff"})  # no memory: nothing to do, no error
    mem = RetrievalMemory()
    await remember_fix(mem, "x\nE   KeyError: 'amount'\nFAILED tests/test_a.py::test_b", {"a.py": "-old\n+new\n"})
    text = await recall_fixes(mem, "E   KeyError: 'amount'")
    assert "KeyError" in text and "+new" in text
    assert await recall_fixes(mem, "E   KeyError: 'amount'", budget=10) == ""  # a fix is whole or absent


def test_recall_fixes_and_remember_fix_without_a_model():
    run(_recall_empty())

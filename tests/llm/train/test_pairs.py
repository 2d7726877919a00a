"""Mining retrieval pairs to train an embedder on (mgpt.llm.train.pairs): the stdlib's
documented functions, the golden runs' code and fixes, and a split that holds whole sources out."""

import textwrap

import pytest

from mgpt.llm.eval.retrieval import RetrievalPair, read_retrieval_pairs, write_retrieval_pairs
from mgpt.llm.train.errors import TrainError
from mgpt.llm.train.pairs import mine_stdlib_pairs, mine_transcript_pairs, split_by_source
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
    pairs = [RetrievalPair(f"q{i}", f"d{i}", "k", f"mod{i % 5}") for i in range(50)]
    train, held = split_by_source(pairs, 0.4, seed=1)
    assert len(train) + len(held) == 50 and held
    assert not {p.source for p in train} & {p.source for p in held}
    write_retrieval_pairs(held, tmp_path / "p.jsonl")
    assert read_retrieval_pairs(tmp_path / "p.jsonl") == held


def test_mining_a_folder_without_sources_is_a_train_error(tmp_path):
    with pytest.raises(TrainError, match="no Python sources"):
        mine_stdlib_pairs(root=tmp_path)

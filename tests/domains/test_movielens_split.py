"""RecBole's leave-one-out split: float32-scaled timestamps, file order on ties; no leaks."""

from __future__ import annotations

import numpy as np
import pytest

from mgpt.agents.errors import MgptError
from mgpt.domains.movielens.data import Ratings
from mgpt.domains.movielens.errors import MovieLensError, UnknownItemError, UnknownUserError
from mgpt.domains.movielens.split import leave_one_out, recbole_order


def ratings(rows: list[tuple[str, str, float]]) -> Ratings:
    return Ratings([r[0] for r in rows], [r[1] for r in rows], np.ones(len(rows), dtype=np.float32),
                   np.array([r[2] for r in rows], dtype=np.float64))


# Timestamps spanning 0..2**30 s: float32 keeps 24 bits of the scaled value, so near the top
# seconds within 64 of each other become one value and keep the file's order.
TIES = ratings([
    ("a", "x", 0.0),                 # sets the minimum
    ("a", "p", 500_000_000.0),
    ("a", "q", 1_000_000_001.0),     # later by one second than the next row...
    ("a", "r", 1_000_000_000.0),     # ...but equal once scaled to float32: file order wins, r is last
    ("b", "p", 2.0 ** 30),           # sets the maximum
    ("b", "q", 700.0),
    ("b", "r", 700.0),               # an exact tie: file order, r after q
    ("b", "x", 100.0),
])


def test_float32_ties_keep_file_order():
    order = recbole_order(TIES.timestamps)
    assert [TIES.item_ids[k] + TIES.user_ids[k] for k in order] == [
        "xa", "xb", "qb", "rb", "pa", "qa", "ra", "pb"]
    # The raw seconds would put r before q for user a:
    assert np.argsort(TIES.timestamps, kind="stable").tolist().index(3) < np.argsort(
        TIES.timestamps, kind="stable").tolist().index(2)


def test_split_by_recbole_order():
    split = leave_one_out(TIES)
    a, b = split.user_index("a"), split.user_index("b")
    name = lambda i: split.item_ids[i]  # noqa: E731
    assert [name(i) for i in split.train(a)] == ["x", "p"]
    assert (name(split.valid(a)), name(split.test(a))) == ("q", "r")
    assert [name(i) for i in split.train(b)] == ["x", "q"]
    assert (name(split.valid(b)), name(split.test(b))) == ("r", "p")


def test_constant_timestamps_keep_file_order():
    split = leave_one_out(ratings([("u", "1", 5.0), ("u", "2", 5.0), ("u", "3", 5.0)]))
    assert [split.item_ids[i] for i in split.sequences[0]] == ["1", "2", "3"]


def test_short_histories_follow_recbole():
    split = leave_one_out(ratings([("one", "1", 1.0), ("two", "1", 2.0), ("two", "2", 3.0)]))
    one, two = split.user_index("one"), split.user_index("two")
    assert (split.valid(one), split.test(one), len(split.train(one))) == (-1, -1, 1)
    assert split.valid(two) == -1 and split.item_ids[split.test(two)] == "2"
    assert split.fold("test").users.tolist() == [two]
    assert split.fold("valid").users.tolist() == []


def test_folds_hold_back_what_they_measure():
    split = leave_one_out(TIES)
    a = split.user_index("a")
    q, r = split.item_index("q"), split.item_index("r")
    valid = split.fold("valid")
    assert valid.target[a] == q and q not in valid.history[a] and r not in valid.history[a]
    assert q not in valid.mask[a]
    test = split.fold("test")
    assert test.target[a] == r and q not in test.history[a] and r not in test.history[a]
    assert sorted(test.mask[a].tolist()) == sorted(split.item_index(i) for i in "xpq")
    refit = split.fold("test", refit=True)
    assert q in refit.history[a] and r not in refit.history[a]
    assert refit.matrix().shape == (2, split.n_items) and refit.matrix()[a].sum() == 3
    with pytest.raises(MovieLensError, match="unknown phase"):
        split.fold("train")  # type: ignore[arg-type]


def test_unknown_ids_are_clear_errors():
    split = leave_one_out(TIES)
    with pytest.raises(UnknownUserError, match="unknown user id 'zz'") as info:
        split.user_index("zz")
    assert isinstance(info.value, MgptError)
    with pytest.raises(UnknownItemError, match="unknown item id '9'"):
        split.item_index("9")


def test_movielens_split_counts(movielens_split):
    split = movielens_split
    assert (len(split.user_ids), split.n_items) == (943, 1682)
    # RecBole's own run of this split has 98,114 training interactions (100,000 - 2 * 943).
    assert sum(len(split.train(u)) for u in range(943)) == 98_114
    # The users whose test item the raw seconds get wrong; RecBole's items (checked against
    # RecBole 1.2.1 itself by benchmarks/bench_recommend.py, 943 of 943 users).
    expected = {"167": ("530", "606"), "239": ("304", "269"), "392": ("663", "513"), "444": ("307", "269"),
                "1": ("74", "102"), "2": ("314", "281"), "3": ("317", "181")}
    for user_id, (valid, test) in expected.items():
        u = split.user_index(user_id)
        assert (split.item_ids[split.valid(u)], split.item_ids[split.test(u)]) == (valid, test), user_id


def test_no_held_out_item_leaks_into_training(movielens_split):
    split = movielens_split
    valid, test, refit = split.fold("valid"), split.fold("test"), split.fold("test", refit=True)
    for u in range(len(split.user_ids)):
        held = {split.valid(u), split.test(u)}
        assert not held & set(valid.history[u].tolist())
        assert not held & set(test.history[u].tolist())
        assert split.test(u) not in set(refit.history[u].tolist())
        assert split.test(u) not in set(test.mask[u].tolist()) and split.valid(u) in set(test.mask[u].tolist())
    # Nobody's test item is in the matrix a retriever learns from for the test phase.
    m = test.matrix()
    assert all(m[u, split.test(u)] == 0 for u in range(len(split.user_ids)))

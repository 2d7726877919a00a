"""Retrievers on a tiny synthetic catalogue, and the store that keeps one trained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mgpt.domains.movielens.data import Movie, MovieLens, Ratings
from mgpt.domains.movielens.embedding import CooccurrenceEmbedding, training_pairs
from mgpt.domains.movielens.errors import StoreError, UnknownItemError, UnknownUserError
from mgpt.domains.movielens.evaluate import Protocol, evaluate
from mgpt.domains.movielens.retrievers import ImplicitALS, ItemKNN, Popularity
from mgpt.domains.movielens.split import Fold, leave_one_out, rows_matrix
from mgpt.domains.movielens.store import RecommendStore, train_store


def two_tastes(users_per_taste: int = 6) -> MovieLens:
    """Users who like either the A movies (1-6) or the B movies (7-12). User n of a taste
    rates its movies starting from the n-th and skips the last one, so every movie is in
    some users' training items and each user has one movie of their taste left unrated."""
    rows, t = [], 0
    for taste, first in (("a", 1), ("b", 7)):
        for n in range(users_per_taste):
            for step in range(5):
                rows.append((f"{taste}{n}", str(first + (n + step) % 6), float(t)))
                t += 1
    ratings = Ratings([r[0] for r in rows], [r[1] for r in rows], np.full(len(rows), 4.0, dtype=np.float32),
                      np.array([r[2] for r in rows]))
    movies = {str(i): Movie(str(i), f"Movie {i}", 1990 + i, ("Drama",) if i < 7 else ("Comedy",)) for i in range(1, 13)}
    return MovieLens(ratings, movies, Path("synthetic"))


def fold_of(history: list[list[int]], n_items: int) -> Fold:
    h = [np.array(x, dtype=np.int64) for x in history]
    return Fold("all", False, n_items, h, h, np.full(len(h), -1))


def test_itemknn_weights_by_hand():
    # Items 0 and 1 are rated by the same two users: cosine 1. Item 2 shares one user with 0.
    fold = fold_of([[0, 1, 2], [0, 1], [3]], 4)
    w = ItemKNN(k=3).fit(fold).weights.toarray()
    assert w[0, 1] == pytest.approx(1.0, abs=1e-5) and w[1, 0] == pytest.approx(1.0, abs=1e-5)
    assert w[0, 2] == pytest.approx(1 / np.sqrt(2), abs=1e-5)
    assert np.allclose(np.diag(w), 0) and w[3].sum() == 0
    # k=1: item 2 keeps only its most similar neighbour (0 and 1 tie at 0.707; one is kept).
    w1 = ItemKNN(k=1).fit(fold).weights.toarray()
    assert (w1[:, 2] > 0).sum() == 1
    scorer = ItemKNN(k=3).fit(fold)
    # User 1 (items 0, 1): item 2's score is sim(2, 0) + sim(2, 1).
    assert scorer.scores(np.array([1]))[0, 2] == pytest.approx(2 / np.sqrt(2), abs=1e-5)


def test_popularity_counts():
    counts = Popularity().fit(fold_of([[0, 1], [1], [1, 3]], 4)).counts
    assert counts.tolist() == [1, 3, 0, 1]


def test_rows_matrix_counts_a_rerated_item_once():
    m = rows_matrix([np.array([2, 2, 0])], 3)
    assert m.toarray().tolist() == [[1, 0, 1]]


@pytest.mark.parametrize("retriever", [ItemKNN(k=5), ImplicitALS(factors=2, iterations=20)],
                         ids=["itemknn", "als"])
def test_retrievers_find_the_users_taste(retriever):
    if isinstance(retriever, ImplicitALS):
        pytest.importorskip("implicit")
    data = two_tastes()
    split = leave_one_out(data.ratings, list(data.movies))
    fold = split.fold("test")
    result = evaluate(retriever.fit(fold).scores, fold, split, Protocol(k=3, negatives=5, seed=0))
    # With train and validation masked, the test item competes with the one movie of the
    # user's taste they never rated and the 6 of the other taste: it must make the top 3.
    assert result.full.recall == 1.0
    assert result.full.users == 12


def test_cooc_pairs_come_from_history_only():
    data = two_tastes()
    split = leave_one_out(data.ratings, list(data.movies))
    fold = split.fold("test")
    pairs = training_pairs(fold.history, "sequence", window=3)
    for p in pairs:
        u = int(p.source)
        assert f" {split.test(u)}" not in f"{p.query} ", "a test item leaked into a query"
        assert p.doc != f" {split.test(u)}" and p.doc != f" {split.valid(u)}"
    assert all(len(p.query.split()) <= 3 for p in pairs)
    assert len(training_pairs(fold.history, "pairs", window=3)) == sum(len(h) - 1 for h in fold.history)


@pytest.mark.slow
def test_cooc_embedding_trains_with_the_embed_trainer(tmp_path):
    data = two_tastes()
    split = leave_one_out(data.ratings, list(data.movies))
    fold = split.fold("valid")
    retriever = CooccurrenceEmbedding(mode="sequence", window=4, width=32, layers=1, heads=2, iters=60,
                                      batch_size=16, lr=3e-3, out_dir=str(tmp_path / "embed"))
    vectors = retriever.vectors(fold)
    assert vectors.items.shape == (12, 32) and vectors.users.shape == (12, 32)
    assert np.allclose(np.linalg.norm(vectors.items, axis=1), 1, atol=1e-4)
    # The scorer is the scaled cosine plus the prior times the item's log share of the documents.
    plain, with_prior = vectors.scorer(0.0).scores(np.array([0])), vectors.scorer(1.0).scores(np.array([0]))
    assert np.allclose(plain[0], vectors.items @ vectors.users[0] / retriever.temperature, atol=1e-3)
    assert np.allclose(with_prior - plain, vectors.log_share, atol=1e-3)
    assert (tmp_path / "embed" / "embed_config.json").is_file()
    losses = [json.loads(line)["loss"] for line in (tmp_path / "embed" / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0]


def test_store_round_trip_and_bad_ids(tmp_path):
    data = two_tastes()
    store = train_store(data, ItemKNN(k=5), phase="test", folder=tmp_path / "store")
    loaded = RecommendStore.load(tmp_path / "store")
    assert loaded.meta["retriever"] == "itemknn" and loaded.meta["settings"] == {"k": 5, "shrink": 0.0}
    recs = loaded.recommend("a1", k=3)
    rated = {m.item_id for m in loaded.history("a1")}
    assert recs and not rated & {r.item_id for r in recs}
    assert recs[0].item_id in {str(i) for i in range(1, 7)} and recs[0].title.startswith("Movie ")
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
    assert recs == store.recommend("a1", k=3)
    assert loaded.score("a1", [recs[0].item_id]) == [pytest.approx(recs[0].score)]
    with pytest.raises(UnknownUserError, match="unknown user id 'nobody'"):
        loaded.recommend("nobody")
    with pytest.raises(UnknownItemError, match="unknown movie id '999'"):
        loaded.score("a1", ["999"])
    with pytest.raises(UnknownItemError):
        loaded.movie("999")


def test_store_refuses_what_is_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="not a recommendation store"):
        RecommendStore.load(tmp_path)
    data = two_tastes()
    train_store(data, Popularity(), folder=tmp_path / "s")
    meta = json.loads((tmp_path / "s" / "store.json").read_text())
    (tmp_path / "s" / "store.json").write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(StoreError, match="format 99"):
        RecommendStore.load(tmp_path / "s")
    (tmp_path / "s" / "store.json").write_text(json.dumps(meta))
    (tmp_path / "s" / "counts.npy").unlink()
    with pytest.raises(StoreError, match="cannot read the popularity scorer"):
        RecommendStore.load(tmp_path / "s")


def test_default_store_folder_is_under_mgpt_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MGPT_HOME", str(tmp_path))
    store = train_store(two_tastes(), Popularity())
    assert store.folder == tmp_path / "recommend" / "ml-100k-pop"
    assert store.recommend("b0", k=2)

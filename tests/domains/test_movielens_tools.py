"""What the recommender team stands on: the store's tools, its stars and masks, the checks of
explanations, the re-ranked score row, and that no held-out item reaches a history."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from mgpt.agents.tools import ToolCall, Toolbox
from mgpt.domains.movielens.citations import TitleIndex, check_citation
from mgpt.domains.movielens.data import Movie
from mgpt.domains.movielens.errors import MovieLensError, UnknownItemError, UnknownUserError
from mgpt.domains.movielens.evaluate import reranked
from mgpt.domains.movielens.metrics import full_ranks
from mgpt.domains.movielens.retrievers import ItemKNN
from mgpt.domains.movielens.split import leave_one_out
from mgpt.domains.movielens.store import RecommendStore, open_store, retriever_named, train_store
from mgpt.domains.movielens.testing import tiny_movielens
from mgpt.domains.movielens.tools import RecommendTools


@pytest.fixture
def tiny_store(tmp_path):
    return train_store(tiny_movielens(), ItemKNN(k=5), phase="test", folder=tmp_path / "store")


def test_a_test_store_holds_back_the_valid_and_test_items(tiny_store):
    split = leave_one_out(tiny_movielens().ratings)
    for user in ("d0", "c3"):
        u = split.user_index(user)
        history = [m.item_id for m in tiny_store.history(user)]
        held = {split.item_ids[split.valid(u)], split.item_ids[split.test(u)]}
        assert len(history) == 3 and not held & set(history)
        # Never recommended: the history and the validation item; the test item can be.
        masked = {tiny_store.item_ids[i] for i in tiny_store.masked[tiny_store.user(user)]}
        assert masked == set(history) | {split.item_ids[split.valid(u)]}
        recommended = {r.item_id for r in tiny_store.recommend(user, k=12)}
        assert not recommended & masked and split.item_ids[split.test(u)] in recommended


def test_stars_follow_the_history(tiny_store):
    assert [(m.item_id, s) for m, s in tiny_store.rated("d0")] == [("1", 5.0), ("2", 4.0), ("3", 3.0)]
    reloaded = RecommendStore.load(tiny_store.folder)
    assert reloaded.rated("c1") == tiny_store.rated("c1")


def test_the_tools_answer_json_and_refuse_bad_input(tiny_store):
    tools = RecommendTools(tiny_store)
    history = tools.user_history("d0", last=2)
    assert [h["item_id"] for h in history] == ["2", "3"] and history[0]["stars"] == 4.0
    assert tools.movie("1")["title"] == "The Quiet River"  # the readable title, article first
    tastes = tools.user_tastes("d0")
    assert tastes["rated"] == 3 and tastes["genres"][0] == {"genre": "Drama", "share": 1.0}
    assert [f["item_id"] for f in tastes["favourites"]] == ["1", "2", "3"]  # 5, 4, 3 stars
    candidates = tools.candidates("d0", k=4)
    assert [c["rank"] for c in candidates] == [1, 2, 3, 4]
    assert not {c["item_id"] for c in candidates} & {"1", "2", "3", "4"}  # history + validation item
    with pytest.raises(UnknownUserError, match="unknown user id 'nobody'"):
        tools.candidates("nobody")
    with pytest.raises(UnknownItemError):
        tools.movie("999")
    with pytest.raises(MovieLensError, match="between 1 and 100"):
        tools.candidates("d0", k=0)


def test_the_tools_as_a_toolbox_turn_errors_into_results(tiny_store):
    box = Toolbox(RecommendTools(tiny_store).as_list())
    ok, bad = asyncio.run(box.run([ToolCall.of("user_history", {"user_id": "c0", "last": 1}),
                                   ToolCall.of("candidates", {"user_id": "zz"})]))
    assert not ok.is_error and json.loads(ok.content)[0]["item_id"] == "9"
    assert bad.is_error and "unknown user id 'zz'" in bad.content


def test_open_store_trains_once_then_loads(tmp_path, monkeypatch):
    import mgpt.domains.movielens.data as data_module

    monkeypatch.setattr(data_module, "load_movielens", lambda folder=None: tiny_movielens())
    monkeypatch.setattr("mgpt.domains.movielens.store.fetch_movielens", lambda progress=None: tmp_path)
    heard: list[str] = []
    first = open_store(retriever_named("itemknn"), folder=tmp_path / "s", progress=heard.append)
    assert any("trained in" in line for line in heard) and first.meta["phase"] == "all"
    heard.clear()
    again = open_store(retriever_named("itemknn"), folder=tmp_path / "s", progress=heard.append)
    assert heard == [] and again.meta["trained_at"] == first.meta["trained_at"]
    with pytest.raises(MovieLensError, match="unknown retriever 'nope'"):
        retriever_named("nope")


def test_an_old_store_format_is_refused_with_what_to_do(tiny_store):
    meta = json.loads((tiny_store.folder / "store.json").read_text())
    (tiny_store.folder / "store.json").write_text(json.dumps({**meta, "format": 1}))
    with pytest.raises(MovieLensError, match="retrain it"):
        RecommendStore.load(tiny_store.folder)


def test_reranked_puts_the_order_on_top_and_keeps_the_rest():
    row = np.array([0.9, 0.5, -np.inf, 0.7, 0.1])
    out = reranked(row, [4, 1])
    assert list(np.argsort(-out, kind="stable")) == [4, 1, 0, 3, 2]
    assert out[0] == row[0] and out[3] == row[3] and np.isneginf(out[2])
    # The target's full rank under the new order, by the metric code.
    assert full_ranks(out[None], np.array([1]), [np.array([2])])[0] == 2
    assert full_ranks(row[None], np.array([1]), [np.array([2])])[0] == 3


def test_citations_are_checked_against_the_rated_movies():
    movies = {i: Movie(i, t, y, g) for i, (t, y, g) in {
        "1": ("Usual Suspects, The", 1995, ("Crime",)), "2": ("Heat", 1995, ("Action",)),
        "3": ("Star Wars", 1977, ("Sci-Fi",)), "4": ("Return of the Jedi", 1983, ("Sci-Fi",)),
    }.items()}
    index = TitleIndex(movies)
    good = check_citation("4", ["3"], "Since you loved Star Wars, try its sequel.", {"1", "3"}, index)
    assert good.rated and good.named and good.unrated_named == ()
    # Cites a movie the user never rated (and names it: one-word "Heat" is matched as a cited
    # title, but too common a word to be flagged as an unrated movie named).
    bad = check_citation("4", ["2"], "Fans of The Usual Suspects and Heat will enjoy it.", {"1", "3"}, index)
    assert not bad.rated and bad.named and bad.unrated_named == ()
    named = check_citation("3", ["1"], "Like usual suspects, The, it twists; unlike Return of the Jedi.", {"1"}, index)
    assert named.rated and named.named and named.unrated_named == ("4",)
    assert not check_citation("3", [], "Nothing cited.", {"1"}, index).rated  # citing nothing is not support


def test_no_held_out_item_reaches_a_history_on_the_real_split(movielens, tmp_path):
    """RecBole's split on MovieLens-100K: a ``test`` store's histories hold no user's validation
    or test item, for all 943 users (so no profile built on it can show them)."""
    store = train_store(movielens, retriever_named("pop"), phase="test", folder=tmp_path / "pop")
    split = leave_one_out(movielens.ratings, list(movielens.movies))
    leaks = [user for u, user in enumerate(split.user_ids)
             if {split.valid(u), split.test(u)} & set(store.histories[store.user(user)])]
    assert len(split.user_ids) == 943 and leaks == []
    tools = RecommendTools(store)
    u = split.user_index("196")
    test_item = split.item_ids[split.test(u)]
    assert test_item not in {m["item_id"] for m in tools.user_history("196", last=100)}
    assert test_item not in {m["item_id"] for m in tools.user_tastes("196", favourites=100)["favourites"]}

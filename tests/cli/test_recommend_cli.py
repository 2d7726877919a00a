"""``mgpt recommend`` from the command line: recommendations from a store with a replayed
model, training a store, and unknown users and bad input as one-line errors."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from mgpt.actions.recommend import RecommendRequest
from mgpt.cli import app
from mgpt.domains.movielens.retrievers import ItemKNN
from mgpt.domains.movielens.store import train_store
from mgpt.domains.movielens.testing import tiny_movielens
from mgpt.llm.backends.testing import TestModel
from mgpt.workflows.recommend import recommend


@pytest.fixture
def store(tmp_path):
    return train_store(tiny_movielens(), ItemKNN(k=5), phase="all", folder=tmp_path / "store")


def record_one(store, path):
    """A transcript of user c0's recommendation (2 movies) from a scripted model."""
    picks = [r.item_id for r in store.recommend("c0", 4)][2:]
    rated = [m.item_id for m in store.history("c0")]
    model = TestModel({
        ("Ranker", "RankCandidates"): [json.dumps({"order": picks})],
        ("Explainer", "ExplainRecommendations"): [json.dumps(
            {i: {"because": [rated[-1]], "sentence": "It plays like the last comedy you rated."} for i in picks})],
    })
    asyncio.run(recommend(RecommendRequest(user_id="c0", count=2, candidates=4), store=store, model=model, record=path))
    return picks


def test_recommend_prints_the_explained_picks(store, tmp_path):
    picks = record_one(store, tmp_path / "c0.jsonl")
    result = CliRunner().invoke(app, ["recommend", "c0", "-k", "2", "--candidates", "4", "--store", str(store.folder),
                                      "-m", f"replay:{tmp_path / 'c0.jsonl'}", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    titles = [store.movie(i).name for i in picks]
    assert f"1. **{titles[0]}**" in result.output and f"2. **{titles[1]}**" in result.output
    assert "It plays like the last comedy you rated." in result.output and "2 model call(s)" in result.output
    saved = json.loads((tmp_path / "r.json").read_text())
    assert [r["item_id"] for r in saved["items"]] == picks


def test_unknown_users_and_missing_arguments_are_one_line_errors(store):
    runner = CliRunner()
    unknown = runner.invoke(app, ["recommend", "999", "--store", str(store.folder), "-m", "test"])
    assert unknown.exit_code == 2 and "error: unknown user id '999'" in unknown.output
    assert "Traceback" not in unknown.output
    none = runner.invoke(app, ["recommend"])
    assert none.exit_code == 2 and "mgpt recommend USER_ID" in none.output
    retriever = runner.invoke(app, ["recommend", "c0", "--retriever", "svd", "--store", str(store.folder)])
    assert retriever.exit_code == 2 and "unknown retriever 'svd'" in retriever.output


def test_train_only_trains_and_says_how_long(tmp_path, monkeypatch):
    monkeypatch.setattr("mgpt.domains.movielens.data.load_movielens", lambda folder=None: tiny_movielens())
    monkeypatch.setattr("mgpt.domains.movielens.store.fetch_movielens", lambda progress=None: tmp_path)
    result = CliRunner().invoke(app, ["recommend", "--train", "--retriever", "itemknn", "--store", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "training the itemknn retriever" in result.output and "trained in" in result.output
    assert (tmp_path / "s" / "store.json").is_file()


def test_eval_recommend_is_a_command():
    result = CliRunner().invoke(app, ["eval", "recommend", "--help"])
    assert result.exit_code == 0 and "--workers" in result.output and "--users" in result.output

"""The ranker and explainer: a non-candidate (or an unrated citation) is re-asked on a scripted
model and cannot be written at all under a tiny local model's grammar; repeats are repaired;
a model that never answers well leaves the retriever's order."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError

from mgpt.actions.recommend import RecommendRequest, explain_answer_model, rank_answer_model, repaired, Candidate
from mgpt.domains.movielens.retrievers import ItemKNN
from mgpt.domains.movielens.store import train_store
from mgpt.domains.movielens.testing import tiny_movielens
from mgpt.llm.backends.testing import TestModel
from mgpt.workflows.recommend import recommend


@pytest.fixture
def store(tmp_path):
    return train_store(tiny_movielens(), ItemKNN(k=5), phase="all", folder=tmp_path / "store")


def explain_for(ids: list[str], cite: str) -> str:
    return json.dumps({i: {"because": [cite], "sentence": "Close to a movie you rated."} for i in ids})


def test_the_answer_schemas_admit_only_candidates_and_rated_movies():
    rank = rank_answer_model(["7", "8", "9"], 2)
    assert rank.model_json_schema()["properties"]["order"]["items"]["enum"] == ["7", "8", "9"]
    assert rank.model_validate({"order": ["9", "7"]}).order == ["9", "7"]
    with pytest.raises(ValidationError, match="Input should be '7', '8' or '9'"):
        rank.model_validate({"order": ["9", "42"]})
    with pytest.raises(ValidationError):
        rank.model_validate({"order": ["9"]})  # exactly 2
    explain = explain_answer_model(["7", "8"], ["1", "2"])
    schema = explain.model_json_schema()
    assert list(schema["properties"]) == ["7", "8"] and schema["required"] == ["7", "8"]
    with pytest.raises(ValidationError):
        explain.model_validate(json.loads(explain_for(["7", "8"], "5")))  # 5 was never rated


def test_a_non_candidate_is_re_asked_on_a_scripted_model(store):
    candidates = [r.item_id for r in store.recommend("d0", 6)]
    model = TestModel({
        ("Ranker", "RankCandidates"): [json.dumps({"order": ["1", candidates[0]]}),  # 1: the user rated it
                                       json.dumps({"order": [candidates[5], candidates[4]]})],
        ("Explainer", "ExplainRecommendations"): [explain_for([candidates[5], candidates[4]], "2")],
    })
    result = asyncio.run(recommend(RecommendRequest(user_id="d0", count=2, candidates=6), store=store, model=model))
    assert [r.item_id for r in result.items] == [candidates[5], candidates[4]] and result.ranking.note == ""
    rank_calls = [messages for context, messages in model.requests if context.action == "RankCandidates"]
    assert len(rank_calls) == 2
    assert "could not be used" in rank_calls[1][-1].content and "order.0: Input should be" in rank_calls[1][-1].content
    asked = model.outputs[0].json_schema["properties"]["order"]["items"]["enum"]
    assert asked == candidates  # the schema sent to the model lists exactly the candidates


def test_repeats_are_dropped_and_places_filled_in_the_retrievers_order(store):
    candidates = [r.item_id for r in store.recommend("c1", 6)]
    top = [candidates[3], candidates[0], candidates[1]]
    model = TestModel({
        ("Ranker", "RankCandidates"): [json.dumps({"order": [candidates[3]] * 3})],
        ("Explainer", "ExplainRecommendations"): [explain_for(top, "8")],
    })
    result = asyncio.run(recommend(RecommendRequest(user_id="c1", count=3, candidates=6), store=store, model=model))
    assert [r.item_id for r in result.items] == top
    assert result.ranking.named == [candidates[3]]
    assert result.ranking.note == "2 repeated id(s) dropped; 2 place(s) filled in the retriever's order"
    assert [c.item_id for c in result.ranking.items] == top + candidates[2:3] + candidates[4:]


def test_a_model_that_never_names_candidates_leaves_the_retrievers_order(store):
    candidates = [r.item_id for r in store.recommend("d2", 4)]
    bad = json.dumps({"order": ["99", "98"]})
    model = TestModel({("Ranker", "RankCandidates"): [bad, bad, "no json at all"],
                       ("Explainer", "ExplainRecommendations"): ["{}", "{}", "{}"]})
    result = asyncio.run(recommend(RecommendRequest(user_id="d2", count=2, candidates=4), store=store, model=model))
    assert [r.item_id for r in result.items] == candidates[:2]
    assert result.ranking.note.startswith("the retriever's order stands: action RankCandidates got no valid RankAnswer")
    assert result.explanations.items == [] and "no explanations" in result.explanations.note
    assert "Note: the retriever's order stands" in result.to_markdown()


def test_an_unrated_citation_is_re_asked(store):
    candidates = [r.item_id for r in store.recommend("d4", 4)]
    rated = [m.item_id for m in store.history("d4")]
    unrated = next(i for i in store.item_ids if i not in rated and i not in candidates)
    model = TestModel({
        ("Ranker", "RankCandidates"): [json.dumps({"order": candidates[:2]})],
        ("Explainer", "ExplainRecommendations"): [explain_for(candidates[:2], unrated),
                                                  explain_for(candidates[:2], rated[0])],
    })
    result = asyncio.run(recommend(RecommendRequest(user_id="d4", count=2, candidates=4), store=store, model=model))
    assert [r.because for r in result.items] == [[rated[0]], [rated[0]]]
    asks = [m for c, m in model.requests if c.action == "ExplainRecommendations"]
    assert len(asks) == 2 and "could not be used" in asks[1][-1].content


def test_repaired_keeps_every_candidate_once():
    cands = [Candidate(item_id=str(i), title=f"M{i}", score=1.0 / i, rank=i) for i in range(1, 6)]
    ranking = repaired("u", cands, ["4", "4", "2"], 3)
    assert [c.item_id for c in ranking.items] == ["4", "2", "1", "3", "5"] and ranking.count == 3


@pytest.mark.slow
def test_the_grammar_keeps_a_tiny_local_model_to_the_candidates(store, tmp_path):
    """A random tiny model decoding under the grammar names only candidates and cites only
    rated movies, whatever it samples; with the grammar off it writes no usable answer and
    the retriever's order stands."""
    pytest.importorskip("torch", reason="local models need the [train] extra")
    pytest.importorskip("xgrammar", reason="constrained decoding needs the [local] extra")
    from mgpt.llm.local.model import LocalModel
    from mgpt.llm.local.testing import make_tiny_checkpoint

    folder = make_tiny_checkpoint(tmp_path / "tiny", chat_template=True, n_positions=4096)
    for seed in (0, 1):
        model = LocalModel(folder, temperature=1.0, seed=seed, max_new_tokens=400, threads=1)
        result = asyncio.run(recommend(RecommendRequest(user_id="c3", count=3, candidates=6), store=store, model=model))
        candidates = {c.item_id for c in result.candidates.items}
        assert result.ranking.named and set(result.ranking.named) <= candidates
        assert "the retriever's order stands" not in result.ranking.note
        rated = {m.item_id for m in store.history("c3")}
        assert len(result.explanations.items) == 3
        assert all(e.because and set(e.because) <= rated for e in result.explanations.items)
    free = LocalModel(folder, temperature=1.0, seed=0, max_new_tokens=40, threads=1, constrained=False)
    result = asyncio.run(recommend(RecommendRequest(user_id="c3", count=3, candidates=6, explain=0), store=store,
                                   model=free))
    assert result.ranking.note.startswith("the retriever's order stands")
    assert [r.item_id for r in result.items] == [r.item_id for r in store.recommend("c3", 3)]

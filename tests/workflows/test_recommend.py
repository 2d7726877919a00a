"""The recommender team end to end on the tiny catalogue with scripted models; a replayed
transcript of one user's recommendation (recorded here, and one recorded on the embedded
model on MovieLens-100K); unknown users; the ``recommend`` SOP."""

from __future__ import annotations

import asyncio
import json
import os
import warnings

import pytest

from mgpt.actions.recommend import CandidateList, Explanations, Ranking, RecommendRequest, UserProfile
from mgpt.agents.tools import ToolUse
from mgpt.domains.movielens.errors import UnknownUserError
from mgpt.domains.movielens.retrievers import ItemKNN
from mgpt.domains.movielens.store import train_store
from mgpt.domains.movielens.testing import tiny_movielens
from mgpt.llm.backends.replay import ReplayModel, TranscriptDriftWarning
from mgpt.llm.backends.testing import FunctionModel, TestModel
from mgpt.workflows.harness import RunOptions
from mgpt.workflows.recommend import recommend, run_recommend
from mgpt.workflows.sops import get_sop
from testpaths import GOLDEN


#: The environment before tests/conftest.py moves MGPT_HOME: MovieLens-100K is read from the
#: real cache (fetched there once), as tests/domains/conftest.py does.
REAL_ENV = dict(os.environ)


@pytest.fixture
def store(tmp_path):
    return train_store(tiny_movielens(), ItemKNN(k=5), phase="all", folder=tmp_path / "store")


def schema_answer(messages, context, output):
    """A well-behaved model: the ranker reverses the candidates; each explanation cites the
    first movie it may cite, by title."""
    schema = output.json_schema
    if context.action == "RankCandidates":
        order = schema["properties"]["order"]
        return json.dumps({"order": list(reversed(order["items"]["enum"]))[: order["maxItems"]]})
    assert context.action == "ExplainRecommendations", context
    prompt = messages[-1].content
    answer = {}
    for key, prop in schema["properties"].items():
        reason = schema["$defs"][prop["$ref"].split("/")[-1]]
        cited = reason["properties"]["because"]["items"]["enum"][0]
        title = prompt.split(f"[{cited}] ")[1].split(" (")[0]
        answer[key] = {"because": [cited], "sentence": f"You rated {title} highly, and this is close to it."}
    return json.dumps(answer)


def test_the_team_hands_on_typed_messages(store):
    events = []
    result = asyncio.run(recommend(RecommendRequest(user_id="d0", count=3, candidates=6), store=store,
                                   model=FunctionModel(schema_answer), on_event=events.append))
    kinds = {type(m.payload) for m in result.run.messages if m.payload is not None}
    assert {RecommendRequest, UserProfile, CandidateList, Ranking, Explanations} <= kinds
    # The profiler and the retriever called the store's tools, not the model.
    calls = [e for e in events if e.kind == "llm_call"]
    assert [e.role for e in calls] == ["Ranker", "Explainer"]
    tools = [m for m in result.run.messages if m.cause_by is ToolUse]
    assert {m.sent_from for m in tools} == {"Profiler", "Retriever"}
    candidates = [c.item_id for c in result.candidates.items]
    retrieved = [m for m in tools if m.sent_from == "Retriever"][0].payload.results[0].content
    assert candidates == [c["item_id"] for c in json.loads(retrieved)] == [r.item_id for r in store.recommend("d0", 6)]
    assert [r.item_id for r in result.items] == list(reversed(candidates))[:3]
    assert [r.retriever_rank for r in result.items] == [6, 5, 4]
    rated = {m.item_id for m in store.history("d0")}
    for r in result.items:
        assert r.because and set(r.because) <= rated and r.because_titles[0] in r.sentence
    assert "You rated" in result.to_markdown() and result.ok


def test_a_run_counts_its_own_tokens_under_a_shared_budget(store):
    from mgpt.agents.budget import Budget

    shared = Budget()
    runs = [asyncio.run(recommend(RecommendRequest(user_id="d0", count=2), store=store,
                                  model=FunctionModel(schema_answer), budget=shared)) for _ in range(2)]
    assert runs[0].tally.prompt_tokens == runs[1].tally.prompt_tokens > 0
    assert shared.total.prompt_tokens == 2 * runs[0].tally.prompt_tokens
    assert set(runs[1].tally.seconds) == {"Profiler", "Retriever", "Ranker", "Explainer"}


def test_explain_zero_runs_without_the_explainer(store):
    result = asyncio.run(recommend(RecommendRequest(user_id="c2", count=2, explain=0), store=store,
                                   model=FunctionModel(schema_answer)))
    assert result.explanations is None and len(result.items) == 2 and not result.items[0].sentence
    assert "Explainer" not in {m.sent_from for m in result.run.messages}


def test_an_unknown_user_is_refused_before_any_model_call(store):
    model = TestModel([])
    with pytest.raises(UnknownUserError, match="unknown user id '999'.*12 users"):
        asyncio.run(recommend(RecommendRequest(user_id="999"), store=store, model=model))
    assert model.requests == []


def test_a_recorded_recommendation_replays_without_the_model_or_the_tools(store, tmp_path):
    transcript = tmp_path / "d3.jsonl"
    request = RecommendRequest(user_id="d3", count=3)
    first = asyncio.run(recommend(request, store=store, model=FunctionModel(schema_answer), record=transcript))
    events = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", TranscriptDriftWarning)  # the prompts are exactly as recorded
        again = asyncio.run(recommend(request, store=store, model=ReplayModel(transcript), on_event=events.append))
    assert again.items == first.items and again.profile == first.profile
    results = [e for e in events if e.kind == "tool_result"]
    assert len(results) == 3 and all(e.data["replayed"] for e in results)


def test_the_golden_recommendation_of_user_196_replays(tmp_path):
    """Recorded with the embedded SmolLM2-135M on MovieLens-100K (``mgpt recommend 196 -k 5
    --explain 3 --record tests/golden/recommend/user_196.jsonl``); replayed, the team makes the same
    recommendations from the recorded answers. After a deliberate change to the prompts,
    re-record with that command."""
    from mgpt.domains.movielens.data import fetch_movielens, load_movielens
    from mgpt.domains.movielens.errors import MovieLensError
    from mgpt.domains.movielens.retrievers import Popularity

    try:
        data = load_movielens(fetch_movielens(env=REAL_ENV))
    except MovieLensError as exc:
        pytest.skip(f"MovieLens-100K is not available: {exc}")
    real = train_store(data, Popularity(), folder=tmp_path / "pop")  # the tools are answered from the transcript
    with warnings.catch_warnings():
        warnings.simplefilter("error", TranscriptDriftWarning)
        result = asyncio.run(recommend(RecommendRequest(user_id="196", count=5, explain=3), store=real,
                                       model=ReplayModel(GOLDEN / "recommend" / "user_196.jsonl")))
    assert [r.title for r in result.items] == [
        "Annie Hall", "Back to the Future", "Grosse Pointe Blank", "Il Postino", "Big Night"]
    assert [r.retriever_rank for r in result.items] == [18, 16, 19, 20, 8]
    assert [r.because_titles for r in result.items[:3]] == [["Mighty Aphrodite", "A Fish Called Wanda"]] * 3
    assert [bool(r.sentence) for r in result.items] == [True, True, True, False, False]


def test_the_recommend_sop_writes_its_results(store, tmp_path):
    sop = get_sop("recommend")
    assert sop.roles == ("Profiler", "Retriever", "Ranker", "Explainer")
    out = asyncio.run(sop.run("c4", model=FunctionModel(schema_answer),
                              options=RunOptions(workspace=tmp_path / "ws", history=False), store=store))
    assert out.ok and out.run.stop_reason == "idle"
    saved = json.loads((tmp_path / "ws" / "recommendations.json").read_text())
    assert saved["request"]["user_id"] == "c4" and len(saved["items"]) == 5
    assert "# Recommendations for user c4" in (tmp_path / "ws" / "recommendations.md").read_text()
    assert out.transcript.is_file() and out.log.is_file()
    with pytest.raises(UnknownUserError):
        asyncio.run(run_recommend("nobody", model=TestModel([]), options=RunOptions(workspace=tmp_path / "ws2"),
                                  store=store))


def test_a_profile_holds_no_held_out_item(tmp_path):
    """On a ``test`` store the validation and test items are in no history: the profile the
    model sees cannot show them (the test item may still be a candidate: that is the point)."""
    from mgpt.domains.movielens.split import leave_one_out

    data = tiny_movielens()
    held_out_store = train_store(data, ItemKNN(k=5), phase="test", folder=tmp_path / "test-store")
    split = leave_one_out(data.ratings)
    seen = []

    def answer(messages, context, output):
        seen.append(messages[-1].content)
        return schema_answer(messages, context, output)

    for user in ("d1", "c5"):
        u = split.user_index(user)
        result = asyncio.run(recommend(RecommendRequest(user_id=user, count=3), store=held_out_store,
                                       model=FunctionModel(answer)))
        held = {split.item_ids[split.valid(u)], split.item_ids[split.test(u)]}
        assert not held & {m.item_id for m in result.profile.citable()}
        profile_text = seen[-2].split("Candidate movies")[0]  # the ranker's prompt, before the candidates
        assert not any(f"[{i}]" in profile_text for i in held)

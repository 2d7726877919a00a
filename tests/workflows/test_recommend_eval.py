"""``mgpt eval recommend``'s parts on the tiny catalogue: one task's users scored in process
(ranks read off the team's ranking, resumed without redoing users), the explanation shares,
the table; and the whole evaluation on the task runner with a tiny local model (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mgpt.agents.budget import Budget
from mgpt.agents.runner import TaskContext
from mgpt.domains.movielens.split import leave_one_out
from mgpt.domains.movielens.testing import tiny_movielens
from mgpt.llm.backends.testing import FunctionModel
from mgpt.llm.models import BACKENDS
from mgpt.workflows.recommend_eval import (
    RecommendEvalOptions, behaviour, chance_row, citation_share, paired_difference, retriever_rows, run_recommend_eval, score_users, seed_store, seed_tasks,
    subset_of, table,
)


def first_candidate_last(messages, context, output):
    """A ranker that moves the retriever's last candidate to the top; an explainer citing the
    first movie it may cite, by title, and naming another movie too."""
    schema = output.json_schema
    if context.action == "RankCandidates":
        ids = schema["properties"]["order"]["items"]["enum"]
        count = schema["properties"]["order"]["maxItems"]
        return json.dumps({"order": [ids[-1], *ids[: count - 1]]})
    prompt = messages[-1].content
    answer = {}
    for key, prop in schema["properties"].items():
        cited = schema["$defs"][prop["$ref"].split("/")[-1]]["properties"]["because"]["items"]["enum"][0]
        title = prompt.split(f"[{cited}] ")[1].split(" (")[0]
        answer[key] = {"because": [cited], "sentence": f"You liked {title}; fans of Disco Dentist agree."}
    return json.dumps(answer)


@pytest.fixture
def scripted(monkeypatch):
    monkeypatch.setitem(BACKENDS, "scripted", lambda rest, options: FunctionModel(first_candidate_last))
    return "scripted:"


def test_one_task_scores_its_users_and_resumes(tmp_path, scripted):
    data = tiny_movielens()
    split = leave_one_out(data.ratings, list(data.movies))
    fold = split.fold("test")
    options = RecommendEvalOptions(model=scripted, users=4, seeds=[0], retriever="itemknn", count=3, candidates=5,
                                   explain=2, negatives=3, per_task=4)
    subset = subset_of([split.user_ids[u] for u in fold.users], options.users, options.subset_seed)
    assert len(subset) == 4 and subset == subset_of([split.user_ids[u] for u in fold.users], 4, 0)
    store = seed_store(data, options, 0, tmp_path, print)
    alone = retriever_rows(store, split, fold, subset, options)
    [task] = seed_tasks(store, split, fold, subset, 0, options)
    assert [case["user"] for case in task.args["users"]] == subset
    ctx = TaskContext(id=task.id, args=task.args, workdir=tmp_path / "w", attempt=1, resume=False, budget=Budget())
    ctx.workdir.mkdir()
    assert score_users(ctx) == {"ok": True, "users": 4}
    lines = [json.loads(line) for line in (ctx.workdir / "results.jsonl").read_text().splitlines()]
    for line, case in zip(lines, task.args["users"]):
        assert (line["retriever_full_rank"], line["retriever_sampled_rank"]) == alone["ranks"][line["user"]]
        # The team's ranking: the retriever's 5th candidate first, then its 1st, 2nd...
        plain = store.scores_of(line["user"])
        order = list(np.argsort(-plain, kind="stable")[:5])
        team = [store.item_ids[i] for i in [order[4], *order[:4]]]
        assert line["top"] == team[:3]
        # Among the candidates, the target's rank is its place in the team's order; below them,
        # the retriever's rank stands (the candidates all stay above it either way).
        expected = team.index(case["target"]) + 1 if case["target"] in team else line["retriever_full_rank"]
        assert line["full_rank"] == expected
        assert not line["target_in_profile"] and len(line["citations"]) == 2
        assert all(c["rated"] and c["named"] for c in line["citations"])
    assert (ctx.workdir / "transcripts" / f"user-{subset[0]}.jsonl").is_file()
    # The control: no picks leaves the retriever's ranking; random picks give valid metrics.
    cases = {case["user"]: case for case in task.args["users"]}
    unpicked = chance_row(store, cases, [{**x, "named": []} for x in lines], options, draws=3)
    assert unpicked["full"]["ndcg"] == pytest.approx(alone["subset"]["full"]["ndcg"])
    assert unpicked["sampled"]["recall"] == pytest.approx(alone["subset"]["sampled"]["recall"])
    picked = chance_row(store, cases, lines, options, draws=5)
    assert 0 <= picked["full"]["ndcg"] <= 1 and picked["full"]["users"] == 4
    # Resumed: the users done are not run again.
    assert score_users(ctx) == {"ok": True, "users": 4}
    assert len((ctx.workdir / "results.jsonl").read_text().splitlines()) == 4


def test_a_partial_run_is_tabulated_on_the_users_it_measured(tmp_path, scripted):
    """--report runs nothing: the users one of two tasks measured get their rows, and the
    retriever's row on exactly those users makes the team's row comparable."""
    data = tiny_movielens()
    split = leave_one_out(data.ratings, list(data.movies))
    fold = split.fold("test")
    options = RecommendEvalOptions(model=scripted, users=4, seeds=[0], retriever="itemknn", count=3, candidates=5,
                                   explain=0, negatives=3, per_task=2, report_only=True)
    subset = subset_of([split.user_ids[u] for u in fold.users], options.users, options.subset_seed)
    store = seed_store(data, options, 0, tmp_path, print)
    first, _ = seed_tasks(store, split, fold, subset, 0, options)
    ctx = TaskContext(id=first.id, args=first.args, workdir=tmp_path / "runs" / first.id, attempt=1, resume=False,
                      budget=Budget())
    ctx.workdir.mkdir(parents=True)
    assert score_users(ctx) == {"ok": True, "users": 2}
    heard: list[str] = []
    result = run_recommend_eval(options, tmp_path, log=heard.append, data=data)
    assert not (tmp_path / "runs" / ".mgpt-batch").exists() and result.failed_tasks == []
    assert any("only 2 of 4 users measured" in h for h in heard)
    assert result.rows["retriever, subset"][0]["full"]["users"] == 4
    [measured] = result.rows["retriever, users measured"]
    [team] = result.rows["retriever + LLM ranker, subset"]
    assert measured["full"]["users"] == team["full"]["users"] == 2
    assert team["full"]["ndcg"] - measured["full"]["ndcg"] == pytest.approx(result.paired[0]["diff"])
    assert result.rows["full team, subset"] == [] and "| retriever, users measured | 2 | 1 |" in table(result)


def test_the_explanation_shares_and_the_table():
    lines = [{"citations": [{"rated": True, "named": True, "unrated_named": []},
                            {"rated": True, "named": False, "unrated_named": ["9"]}]},
             {"citations": []}]
    assert citation_share(lines) == {"explanations": 2, "cited_rated": 1.0, "named_cited": 0.5, "named_unrated": 0.5,
                                     "users_without": 0.5}
    assert citation_share([{"citations": []}]) == {}
    ranks = [{"full_rank": 1, "retriever_full_rank": 3}, {"full_rank": 20, "retriever_full_rank": 1},
             {"full_rank": 5, "retriever_full_rank": 5}]
    paired = paired_difference(ranks, 10)
    assert paired["diff"] == pytest.approx((1 - 0.5 - 1) / 3) and (paired["better"], paired["worse"]) == (1, 1)
    assert paired["se"] > 0 and paired["users"] == 3
    worked = [{"seconds": 10.0, "role_seconds": {"Ranker": 4.0, "Explainer": 6.0}, "prompt_tokens": 900,
               "completion_tokens": 90, "named": ["7"], "note": "9 repeated id(s) dropped", "target_in_profile": False},
              {"seconds": 20.0, "role_seconds": {"Ranker": 8.0}, "prompt_tokens": 700, "completion_tokens": 30,
               "named": [], "note": "the retriever's order stands: no answer", "target_in_profile": False}]
    assert behaviour(worked) == {"users": 2, "seconds": 15.0, "ranker_s": 6.0, "explainer_s": 3.0, "prompt_tokens": 800,
                                 "completion_tokens": 60, "named": 0.5, "repaired": 0.5, "fallback": 0.5,
                                 "target_in_profile": 0}
    from mgpt.workflows.recommend_eval import RecommendEval

    metrics = {"ndcg": 0.1, "recall": 0.2, "mrr": 0.05, "mrr_at_k": 0.04, "k": 10, "users": 50}
    runs = [{"seed": s, "full": {**metrics, "ndcg": 0.1 + s / 100}, "sampled": metrics} for s in (0, 1, 2)]
    result = RecommendEval(RecommendEvalOptions(), {"retriever, subset": runs, "full team, subset": []}, {}, {}, {}, {},
                           1.0)
    text = table(result)
    assert "| retriever, subset | 50 | 3 | 0.1100 ± 0.0100 | 0.2000 ± 0.0000 |" in text
    assert "full team" not in text


@pytest.mark.slow
def test_the_evaluation_runs_on_the_task_runner_with_a_tiny_local_model(tmp_path):
    """Two workers, two seeds, a tiny random model under its grammar: every row is filled, the
    retriever's ranks agree between driver and workers, the answers only name candidates."""
    pytest.importorskip("torch", reason="local models need the [train] extra")
    pytest.importorskip("xgrammar", reason="constrained decoding needs the [local] extra")
    from mgpt.llm.local.testing import make_tiny_checkpoint

    folder = make_tiny_checkpoint(tmp_path / "tiny", chat_template=True, n_positions=4096)
    options = RecommendEvalOptions(model=f"hf:{folder}", users=4, seeds=[0, 1], explain_seeds=[0], retriever="itemknn",
                                   count=2, candidates=4, explain=2, negatives=3, per_task=2, workers=2)
    heard: list[str] = []
    result = run_recommend_eval(options, tmp_path / "out", log=heard.append, data=tiny_movielens())
    assert result.failed_tasks == [] and not [h for h in heard if "differ" in h or "only" in h]
    assert [len(result.rows[name]) for name in result.rows] == [2, 2, 0, 2, 2, 1]
    assert result.rows["retriever, all users"][0]["full"]["users"] == 12
    assert result.rows["retriever + LLM ranker, subset"][0]["full"]["users"] == 4
    assert result.citations[0]["explanations"] == 8 and result.citations[0]["cited_rated"] == 1.0
    assert set(result.paired) == {0, 1} and result.work[0]["users"] == 4 and result.work[0]["target_in_profile"] == 0
    for line in result.users[0]:
        assert line["top"] and set(line["named"]) <= set(line["top"])
    assert "| full team, subset | 4 | 1 |" in table(result)

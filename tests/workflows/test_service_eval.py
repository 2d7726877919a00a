"""``mgpt eval service`` on the tiny retail data with scripted models: grading, pass^k (τ²-bench's
formula), the records each conversation leaves, a replay of a whole eval, and bad input."""

from __future__ import annotations

import json
import math

import pytest

from mgpt.domains.retail import RetailStore
from mgpt.domains.retail.testing import tiny_data
from mgpt.llm.backends.testing import FunctionModel
from mgpt.llm.eval.errors import EvalInputError
from mgpt.workflows.service_eval import ServiceEvalOptions, gold_model, pass_hat_k, run_service_eval


@pytest.fixture
def data(tmp_path):
    return tiny_data(tmp_path / "data")


def giving_up() -> FunctionModel:
    """An agent that helps nobody, and a customer who leaves at once."""
    return FunctionModel(lambda messages, context: "###STOP###" if context.role == "Customer" else "I cannot help.")


def scripted(data, fail: set[tuple[str, int]] = frozenset()):
    """Gold conversations, except the (task, trial) pairs in ``fail``."""
    start = RetailStore.from_json(data.db_json())
    return lambda spec, job: giving_up() if (job.task.id, job.trial) in fail else gold_model(job.task, start)


def options(tmp_path, name="out", **kw) -> ServiceEvalOptions:
    return ServiceEvalOptions(**{"model": "scripted", "out": tmp_path / name, "split": "base", **kw})


def test_pass_hat_k_is_tau2s_formula():
    assert pass_hat_k(4, 2, 1) == 0.5
    assert pass_hat_k(4, 2, 2) == pytest.approx(1 / 6)  # C(2,2)/C(4,2)
    assert pass_hat_k(4, 4, 4) == 1.0 and pass_hat_k(4, 3, 4) == 0.0
    assert pass_hat_k(5, 3, 2) == math.comb(3, 2) / math.comb(5, 2)
    with pytest.raises(ValueError):
        pass_hat_k(2, 1, 3)


def test_every_trial_passing_gives_pass_hat_one_and_the_records(tmp_path, data):
    seen = []
    result = run_service_eval(options(tmp_path, trials=2), make_model=scripted(data), data=data,
                              on_done=lambda item, done, total: seen.append((done, total)))
    assert result.pass_hat() == {1: 1.0, 2: 1.0}
    assert sorted(seen) == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [(c.task_id, c.trial) for c in result.conversations] == [("1", 1), ("1", 2), ("2", 1), ("2", 2)]
    for c in result.conversations:
        assert c.passed and c.state_matches and c.rebuilt_matches and not c.wrong_change
        assert c.writes_done == c.writes_asked == 1 and c.writes_declined == 0
        folder = tmp_path / "out" / f"task-{c.task_id}-trial-{c.trial}"
        assert (folder / ".mgpt" / "transcript.jsonl").is_file() and (folder / "trajectory.json").is_file()
        report = (folder / ".mgpt" / "report.html").read_text()
        assert 'id="conversation"' in report and "PASSED" in report
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["pass_hat"] == {"1": 1.0, "2": 1.0} and len(saved["conversations"]) == 4
    index = (tmp_path / "out" / "index.html").read_text()
    assert index.count('href="task-') == 4 and "pass^2" in index


def test_pass_hat_k_over_trials_that_differ(tmp_path, data):
    # task 1 passes one trial of two, task 2 both: pass^1 = (1/2 + 1) / 2, pass^2 = (0 + 1) / 2
    result = run_service_eval(options(tmp_path, trials=2), make_model=scripted(data, {("1", 2)}), data=data)
    assert result.pass_hat() == {1: 0.75, 2: 0.5}
    failed = next(c for c in result.conversations if not c.passed)
    assert (failed.task_id, failed.trial, failed.state_matches, failed.ended) == ("1", 2, False, "customer")
    # task 2 also needs the refund said: an agent that made the return but said nothing fails on that alone
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["passed"] == 3 and saved["count"] == 4


def test_the_communicate_info_must_be_said(tmp_path, data):
    start = RetailStore.from_json(data.db_json())

    def silent(spec, job):
        gold = gold_model(job.task, start)
        fn = gold.fn

        def reply(messages, context, tools=None):
            answer = fn(messages, context, tools=tools)
            return "All done." if answer == "12.34" else answer  # the refund amount never said
        return FunctionModel(reply)

    result = run_service_eval(options(tmp_path, task_ids=["2"]), make_model=silent, data=data)
    only = result.conversations[0]
    assert only.state_matches and not only.passed and only.missing_info == ["12.34"]


def test_a_replayed_eval_gives_the_same_verdicts_offline(tmp_path, data):
    first = run_service_eval(options(tmp_path, trials=2), make_model=scripted(data, {("2", 1)}), data=data)
    again = run_service_eval(ServiceEvalOptions(model="replay", out=tmp_path / "again", replay=tmp_path / "out"),
                             data=data)  # the real model registry: replay:<transcript> per conversation
    assert [(c.task_id, c.trial, c.passed, c.state_matches) for c in again.conversations] == \
        [(c.task_id, c.trial, c.passed, c.state_matches) for c in first.conversations]
    assert again.pass_hat() == first.pass_hat() and all(c.rebuilt_matches for c in again.conversations)
    assert again.options["split"] == "base" and again.options["trials"] == 2  # as recorded


def test_bad_input_is_refused_before_anything_runs(tmp_path, data):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(EvalInputError, match="not an empty folder"):
        run_service_eval(options(tmp_path, "full"), make_model=scripted(data), data=data)
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    with pytest.raises(EvalInputError, match=r"no task 7 in the base split \(its ids: 1, 2\)"):
        run_service_eval(options(tmp_path, task_ids=["7"]), make_model=scripted(data), data=data)
    with pytest.raises(EvalInputError, match="no service domain 'airline'"):
        run_service_eval(options(tmp_path, domain="airline"), make_model=scripted(data), data=data)
    with pytest.raises(EvalInputError, match="trials must be at least 1"):
        run_service_eval(options(tmp_path, trials=0), make_model=scripted(data), data=data)
    with pytest.raises(EvalInputError, match="cannot read"):
        run_service_eval(options(tmp_path, replay=tmp_path / "nothing"), data=data)
    run_service_eval(options(tmp_path, "done"), make_model=scripted(data), data=data)
    with pytest.raises(EvalInputError, match="leave out --trials, --no-checker"):
        run_service_eval(ServiceEvalOptions(model="replay", out=tmp_path / "again", trials=3, checker=False,
                                            replay=tmp_path / "done"), data=data)


@pytest.mark.slow
def test_on_the_task_runner_each_conversation_is_a_task_and_grades_the_same(tmp_path, data):
    """The recorded eval replayed on two local workers (each conversation in its own process,
    its model built there from its spec): the same verdicts, and the runner's ledger."""
    from mgpt.agents.runner import RunnerOptions

    first = run_service_eval(options(tmp_path, trials=2), make_model=scripted(data, {("2", 2)}), data=data)
    replay = ServiceEvalOptions(model="replay", out=tmp_path / "runner", replay=tmp_path / "out",
                                data_dir=data.folder)
    seen = []
    again = run_service_eval(replay, runner=RunnerOptions(out=tmp_path / "runner", workers=2),
                             on_done=lambda item, done, total: seen.append(done))
    assert [(c.task_id, c.trial, c.passed) for c in again.conversations] == \
        [(c.task_id, c.trial, c.passed) for c in first.conversations]
    assert again.pass_hat() == {1: 0.75, 2: 0.5} and sorted(seen) == [1, 2, 3, 4]
    assert (tmp_path / "runner" / ".mgpt-batch" / "ledger.jsonl").is_file()
    assert (tmp_path / "runner" / "task-2-trial-2" / ".mgpt" / "report.html").is_file()
    assert again.options["ran_on"] == "the task runner: 2 local worker(s)"
    with pytest.raises(EvalInputError, match="named by their specs"):
        run_service_eval(options(tmp_path, "x"), make_model=scripted(data), data=data,
                         runner=RunnerOptions(out=tmp_path / "x", workers=1))


def test_the_markdown_table_has_the_figures_and_the_anchors(tmp_path, data):
    from mgpt.workflows.service_eval import markdown_table

    result = run_service_eval(options(tmp_path), make_model=scripted(data), data=data)
    text = markdown_table([("the team", result.to_dict())])
    assert "| the team | scripted | 2 × 1 | 1.000 | 2/2 | 2 / 2 (0) | 0/2 |" in text
    assert "| τ-bench README | gpt-4o | 0.604 |" in text

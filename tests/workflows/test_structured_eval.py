"""The company's structured questions, one at a time (mgpt.workflows.structured_eval): the
eval asks what the company asks and parses as the roles parse; planning runs are recorded
with the runs that needed a re-ask set apart; the teacher's tighter PRD grammar holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from mgpt.llm.backends.replay import Transcript
from mgpt.llm.backends.testing import FunctionModel
from mgpt.workflows.structured_eval import (
    EVAL_IDEAS, TRAIN_IDEAS, golden_structured_requests, parses, prd_answers, prd_format, prd_messages,
    record_planning, schema_of,
)
from testpaths import GOLDEN

#: the golden run's documents by action: a scripted model that plans any idea cleanly
DOCUMENTS = {c.action: c.response.text for c in Transcript.load(GOLDEN / "todo_cli.jsonl").calls}


def test_the_eval_and_training_ideas_are_disjoint():
    assert len(EVAL_IDEAS) == 24 and len(TRAIN_IDEAS) == 64
    assert not set(EVAL_IDEAS) & set(TRAIN_IDEAS)


def test_structured_prompts_are_the_company_s_and_golden_answers_parse():
    msgs = prd_messages("A habit tracker that records daily check-ins.")
    assert msgs[0]["role"] == "system" and "ProductManager" in msgs[0]["content"]
    assert "habit tracker" in msgs[1]["content"] and "Reply with one JSON object" in msgs[1]["content"]
    assert schema_of(msgs).__name__ == "PRD"
    runs = sorted(str(p) for p in GOLDEN.glob("**/*.jsonl"))
    items = golden_structured_requests(runs)
    assert {it["schema"].__name__ for it in items} >= {"PRD", "SystemDesign", "TaskList"}
    answers = {f"{Path(r).stem}:{c.action}": c.response.text for r in runs for c in Transcript.load(Path(r)).calls}
    assert all(parses(answers[it["source"]], it["schema"]) for it in items)  # the recorded answers parse
    assert not parses('{"project_name": "x"}', items[0]["schema"])  # a partial one does not
    assert schema_of([{"role": "user", "content": "no schema here"}]) is None


def test_prd_answers_asks_the_product_manager_s_question_per_idea():
    asked = []

    def answer(messages, context):
        asked.append((context.action, messages[-1].content))
        return DOCUMENTS["WritePRD"]

    texts = prd_answers(FunctionModel(answer, name="scripted"), EVAL_IDEAS[:2])
    assert texts == [DOCUMENTS["WritePRD"]] * 2
    assert [a for a, _ in asked] == ["WritePRD"] * 2 and EVAL_IDEAS[1] in asked[1][1]


def test_record_planning_rejects_a_run_that_needed_a_re_ask(tmp_path):
    """Any model (here a scripted one answering with a golden run's documents): a run whose
    PRD had to be asked for again is moved to rejected/; a clean one stays."""
    asked: list[str] = []

    def answer(messages, context):
        asked.append(context.action)
        if len(asked) == 1:
            return "Sorry, no JSON today."  # the first PRD answer only: the product manager asks again
        return DOCUMENTS[context.action]

    lines: list[str] = []
    assert record_planning(FunctionModel(answer, name="scripted"), TRAIN_IDEAS[:2], tmp_path, log=lines.append) == 1
    assert asked == ["WritePRD", "WritePRD", "WriteDesign", "WriteTasks", "WritePRD", "WriteDesign", "WriteTasks"]
    (kept,) = tmp_path.glob("*.jsonl")
    (rejected,) = (tmp_path / "rejected").glob("*.jsonl")
    assert kept.name.startswith("001-") and rejected.name.startswith("000-")
    assert len(Transcript.load(rejected).calls) == 4 and Transcript.load(kept).header.idea == TRAIN_IDEAS[1]
    assert "rejected" in lines[0] and lines[-1].startswith("1/2 clean runs")


def test_record_planning_numbers_from_start_and_sets_a_failed_run_aside(tmp_path):
    def answer(messages, context):
        if context.action == "WriteTasks":
            raise RuntimeError("the model went away")
        return DOCUMENTS[context.action]

    assert record_planning(FunctionModel(answer, name="scripted"), TRAIN_IDEAS[:1], tmp_path, start=7,
                           log=lambda line: None) == 0
    (rejected,) = (tmp_path / "rejected").glob("*.jsonl")
    assert rejected.name.startswith("007-") and not list(tmp_path.glob("*.jsonl"))


@pytest.mark.slow  # ~20 s: 400 tokens decoded under a grammar, twice
def test_the_teachers_tighter_grammar_bounds_every_string_list_and_the_name(tmp_path):
    """``prd_format`` with bounds: a tiny random model decoding under it writes a PRD the PRD
    model accepts, with no string, list or name longer than the bounds; without bounds the
    format is the company's."""
    pytest.importorskip("torch", reason="a local model needs the [train] extra")
    pytest.importorskip("xgrammar", reason="the grammar needs the [local] extra")
    from mgpt.actions.documents import PRD
    from mgpt.llm.backends.base import OutputFormat
    from mgpt.llm.local.model import LocalModel
    from mgpt.llm.local.testing import make_tiny_checkpoint

    assert prd_format() == OutputFormat.from_model(PRD)
    folder = make_tiny_checkpoint(tmp_path / "tiny", chat_template=True, n_positions=4096)
    model = LocalModel(folder, max_new_tokens=400, temperature=1.0, seed=0, threads=1, decoder="hf")
    for text in prd_answers(model, TRAIN_IDEAS[:2], output=prd_format(max_string=12, max_items=2, name_length=8)):
        prd = PRD.model_validate_json(text)
        assert len(prd.project_name) <= 8
        assert all(1 <= len(x) <= 2 for x in (prd.goals, prd.user_stories, prd.requirements, prd.acceptance_criteria))
        strings = [prd.summary, prd.anything_unclear, *prd.goals, *prd.user_stories, *prd.acceptance_criteria,
                   *(r.text for r in prd.requirements), *(r.id for r in prd.requirements)]
        assert max(map(len, strings)) <= 12

"""``mgpt eval write`` on a tiny corpus with scripted models: every row runs and is scored."""

from __future__ import annotations

import json

import pytest

from mgpt.llm.backends.testing import TestModel
from mgpt.workflows.write_eval import TUNE, WriteEvalOptions, format_table, run_write_eval, select_tasks

from writing_fixtures import GOOD_1, HOWTO, make_corpus, outline, verdict

SINGLE = "# Sorting\n\nCall sorted.\n\n```python\nprint(sorted([2, 1]))\n```\n\n```python\nraise SystemExit(3)\n```\n"


def _scripted():
    return TestModel({
        ("Writer", "WriteDocument"): [SINGLE],
        ("Planner", "WriteOutline"): [outline("Sorting basics")],
        ("Writer 1", "WriteSection"): [GOOD_1],
        ("Editor", "ReviewDraft"): [verdict()],
    })


@pytest.mark.slow
def test_the_writing_benchmark_runs_and_scores_every_row(tmp_path):
    pytest.importorskip("rouge_score")  # the text metrics: the [train] extra
    root = tmp_path / "docs"
    make_corpus(root, howto=True)
    result = run_write_eval(WriteEvalOptions(sources=root, split="all", out=tmp_path / "out", sections=1,
                                             make_model=_scripted))
    single, no_exec, room = result.scores
    assert [s.row for s in result.scores] == ["single", "room-no-exec", "room"]
    assert (single.examples_ran, single.examples, single.citations, single.calls) == (1, 2, 0, 1)
    assert (room.examples_ran, room.examples, room.citations_matched, room.citations) == (1, 1, 1, 1)
    assert room.calls == 3 and no_exec.calls == 3 and not room.error
    # sorted and list.sort... of the HOWTO's API names: the room's document writes sorted in code.
    assert room.apis == 3 and room.apis_covered == 1 and 0 < room.rouge_l < 1 and room.meteor > 0
    assert all(s.leaked == 0 for s in result.scores)
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["tasks"] == ["sorting"] and len(saved["scores"]) == 3
    table = format_table(result)
    assert "| room | " in table and "| sorting | single |" in table


def test_the_split_never_reports_a_howto_it_was_tuned_on(tmp_path):
    from mgpt.domains.pydocs.corpus import load_corpus
    from mgpt.domains.pydocs.howtos import howtos

    root = tmp_path / "docs"
    make_corpus(root, howto=True)
    (root / "howto" / "enum.rst.txt").write_text("Enum HOWTO\n==========\n\nUse :class:`enum.Enum`.\n")
    tasks = howtos(load_corpus(root))
    assert "sorting" in TUNE
    assert [t.name for t in select_tasks(tasks, "report")] == ["enum"]
    assert [t.name for t in select_tasks(tasks, "tune")] == ["sorting"]


def test_a_leak_that_reaches_a_prompt_is_counted(tmp_path):
    from mgpt.domains.pydocs.howtos import LeakGuard
    from mgpt.llm.backends.base import ChatMessage, CallContext
    from mgpt.llm.backends.replay import RecordingModel
    from mgpt.workflows.write_eval import leaked_prompts
    import asyncio

    path = tmp_path / "t.jsonl"
    rec = RecordingModel(TestModel(["ok", "ok"]), path)
    quote = "Both list.sort() and sorted() have a key parameter to specify a function (or other callable)"
    asyncio.run(rec.complete([ChatMessage(role="user", content=f"Use this: {quote}")], context=CallContext()))
    asyncio.run(rec.complete([ChatMessage(role="user", content="nothing of it")], context=CallContext()))
    rec.close()
    assert leaked_prompts(path, LeakGuard(HOWTO)) == (1, 2)


def _eval_write(*args):
    from typer.testing import CliRunner

    from mgpt.cli.app import app

    return CliRunner().invoke(app, ["eval", "write", *args])


def test_mgpt_eval_write_refuses_bad_rows_unknown_howtos_and_missing_sources_before_running(tmp_path):
    root = tmp_path / "docs"
    make_corpus(root, howto=True)
    out = tmp_path / "out"
    bad_rows = _eval_write("--sources", str(root), "--rows", "single,roomz", "--out", str(out))
    assert bad_rows.exit_code == 2 and "--rows are among single, room-no-exec, room" in bad_rows.output
    unknown = _eval_write("--sources", str(root), "--split", "all", "--task", "nosuch", "--out", str(out))
    assert unknown.exit_code == 2 and "no HOWTO nosuch" in unknown.output and "sorting" in unknown.output
    missing = _eval_write("--sources", str(tmp_path / "nope"), "--out", str(out))
    assert missing.exit_code == 2 and "python3.11-doc" in missing.output
    assert not out.exists()  # nothing ran, nothing written

"""The writers' room end to end on scripted models: outline, sources, concurrent writers,
examples run in the sandbox (and a failing one fixed), citations checked, the leak guard,
and a recorded run replayed."""

from __future__ import annotations

import asyncio

from mgpt.actions.writing import Document
from mgpt.llm.backends.testing import TestModel
from mgpt.workflows.writing import run_writers_room

from writing_fixtures import FAILING_1, GOOD_1, GOOD_2, HOWTO, make_corpus, outline, verdict


def _room(tmp_path, model, **options):
    lib = make_corpus(tmp_path / "docs")
    return asyncio.run(run_writers_room("a HOWTO on sorting in Python", model=model, sources=lib,
                                        workspace=tmp_path / "ws", sections=2, **options))


def test_a_scripted_room_writes_a_document_whose_examples_run_and_citations_match(tmp_path):
    model = TestModel({
        ("Planner", "WriteOutline"): [outline("Sorting basics", "Key functions")],
        ("Writer 1", "WriteSection"): [GOOD_1],
        ("Writer 2", "WriteSection"): [GOOD_2],
        ("Editor", "ReviewDraft"): [verdict()],
    })
    result = _room(tmp_path, model)
    doc = result.document
    assert isinstance(doc, Document) and result.ok
    assert [s.heading for s in doc.sections] == ["Sorting basics", "Key functions"]
    assert [e.ok for e in doc.examples] == [True, True] and doc.examples[1].doctest
    assert [c.ok for c in doc.citations] == [True, True]
    text = (result.workspace / "document.md").read_text()
    assert text.startswith("# Sorting in Python") and "## Sources" in text and "[1] functions, sorted" in text
    for name in ("docs/outline.md", "docs/sources.md", "docs/checks.md", "examples/s1_1.py", "examples/s2_1.txt"):
        assert (result.workspace / name).is_file(), name
    # The two writers wrote in the same round: concurrently.
    rounds = {m.sent_from: m for m in result.run.messages if m.sent_from.startswith("Writer")}
    assert set(rounds) == {"Writer 1", "Writer 2"}
    writer_prompt = next(msgs for ctx, msgs in model.requests if ctx.role == "Writer 1")[-1].content
    assert "[1] functions, sorted" in writer_prompt and "Return a new sorted list" in writer_prompt


def test_a_failing_example_goes_back_to_its_writer_with_the_error_and_is_fixed_in_one_round(tmp_path):
    model = TestModel({
        ("Planner", "WriteOutline"): [outline("Sorting basics")],
        ("Writer 1", "WriteSection"): [FAILING_1],
        ("Writer 1", "ReviseSection"): [GOOD_1],
        ("Editor", "ReviewDraft"): [verdict()],
    })
    result = _room(tmp_path, model, fix_rounds=1)
    revise = next(msgs for ctx, msgs in model.requests if ctx.action == "ReviseSection")[-1].content
    assert "TypeError" in revise and "key=str.lower" in revise  # the error and the failing code went back
    reports = [m.payload for m in result.run.messages if m.sent_from == "Tester"]
    assert [(r.version, r.failed, r.final) for r in reports] == [(1, 1, False), (2, 0, True)]
    assert result.document.sections[0].version == 2 and result.ok
    assert "key=str.lower" not in (result.workspace / "document.md").read_text()


def test_a_failing_example_stays_flagged_when_no_fix_round_is_left(tmp_path):
    model = TestModel({
        ("Planner", "WriteOutline"): [outline("Sorting basics")],
        ("Writer 1", "WriteSection"): [FAILING_1],
        ("Editor", "ReviewDraft"): [verdict()],
    })
    result = _room(tmp_path, model, fix_rounds=0, revision_rounds=0)
    assert [e.ok for e in result.document.examples] == [False] and not result.ok
    assert "FAILED" in (result.workspace / "docs" / "checks.md").read_text()


def test_a_citation_that_does_not_match_its_source_is_flagged_and_sent_back(tmp_path):
    wrong = GOOD_1.replace("Return a new sorted list from the items in iterable", "Sort the list in place quickly")
    model = TestModel({
        ("Planner", "WriteOutline"): [outline("Sorting basics")],
        ("Writer 1", "WriteSection"): [wrong],
        ("Writer 1", "ReviseSection"): [wrong],
        ("Editor", "ReviewDraft"): [verdict(), verdict()],
    })
    result = _room(tmp_path, model, revision_rounds=1)
    revise = next(msgs for ctx, msgs in model.requests if ctx.action == "ReviseSection")[-1].content
    assert '"Sort the list in place quickly" [1]' in revise and "does not contain these words" in revise
    [citation] = result.document.citations
    assert not citation.ok and citation.quote == "Sort the list in place quickly" and not result.ok
    checks = (result.workspace / "docs" / "checks.md").read_text()
    assert "FLAGGED: source [1] does not contain these words" in checks
    assert ("citations", "0 of 1 quote their source; 1 flagged in docs/checks.md") in result.summary_rows()


def _guarded_room(tmp_path, guard):
    from mgpt.domains.pydocs.corpus import load_corpus

    make_corpus(tmp_path / "docs", howto=True)
    model = TestModel({
        ("Planner", "WriteOutline"): [outline("Key functions")],
        ("Writer 1", "WriteSection"): [GOOD_1],
        ("Editor", "ReviewDraft"): [verdict()],
    })
    result = asyncio.run(run_writers_room(
        "a HOWTO on sorting: key functions, a key parameter called on each list element", model=model,
        sources=load_corpus(tmp_path / "docs", under=["library"]), workspace=tmp_path / "ws", sections=1,
        guard=guard))
    return result, [m.content for _, msgs in model.requests for m in msgs]


def test_the_leak_guard_keeps_the_howto_and_the_pages_quoting_it_out_of_every_prompt(tmp_path):
    from mgpt.domains.pydocs.howtos import LeakGuard

    guard = LeakGuard(HOWTO, name="the HOWTO howto/sorting")
    # Without the guard the page quoting the HOWTO is retrieved, and its words reach a prompt...
    _, unguarded = _guarded_room(tmp_path / "open", None)
    assert any(guard.leak(text) for text in unguarded)
    # ...with it the page is left out of the sources, and no prompt holds twelve words of the HOWTO.
    result, prompts = _guarded_room(tmp_path / "guarded", guard)
    assert result.excluded == ["library/sortnotes"] and result.document is not None
    assert prompts and not any(guard.leak(text) for text in prompts)


def test_the_researcher_refuses_a_passage_that_quotes_the_guarded_text(tmp_path):
    import pytest

    from mgpt.actions.base import ActionContext
    from mgpt.actions.writing import FindSources, Outline
    from mgpt.agents.message import Message
    from mgpt.domains.pydocs.corpus import load_corpus
    from mgpt.domains.pydocs.howtos import LeakGuard, SourceLeak
    from mgpt.domains.pydocs.search import SourceIndex
    from mgpt.actions.writing import WriteOutline

    lib = make_corpus(tmp_path / "docs", howto=True)
    index = asyncio.run(SourceIndex.build(load_corpus(lib).passages()))
    plan = Outline.model_validate_json(outline("Key functions"))
    ctx = ActionContext(news=[Message(content="", payload=plan, cause_by=WriteOutline)],
                        settings={"library": index, "guard": LeakGuard(HOWTO), "sources_per_section": 5})
    with pytest.raises(SourceLeak, match="sortnotes"):
        asyncio.run(FindSources().run(ctx))


def test_a_recorded_room_replays_to_the_same_document(tmp_path):
    from mgpt.llm.backends.replay import ReplayModel

    model = TestModel({
        ("Planner", "WriteOutline"): [outline("Sorting basics", "Key functions")],
        ("Writer 1", "WriteSection"): [FAILING_1],
        ("Writer 1", "ReviseSection"): [GOOD_1],
        ("Writer 2", "WriteSection"): [GOOD_2],
        ("Editor", "ReviewDraft"): [verdict(False, [(2, "say what a key function returns")]), verdict()],
        ("Writer 2", "ReviseSection"): [GOOD_2 + "\nIt returns the key to compare.\n"],
    })
    first = _room(tmp_path / "first", model, fix_rounds=1, revision_rounds=1)
    replay = ReplayModel(first.transcript, strict_prompts=True)  # a prompt that differs would raise
    second = _room(tmp_path / "second", replay, fix_rounds=1, revision_rounds=1)
    assert second.document.markdown == first.document.markdown and second.ok
    assert not replay.unused and len(replay.used) == len(model.requests) == 7


def test_mgpt_write_replays_a_room_into_a_workspace_with_its_summary_and_report(tmp_path):
    from typer.testing import CliRunner

    from mgpt.cli.app import app

    model = TestModel({
        ("Planner", "WriteOutline"): [outline("Sorting basics", "Key functions")],
        ("Writer 1", "WriteSection"): [GOOD_1],
        ("Writer 2", "WriteSection"): [GOOD_2],
        ("Editor", "ReviewDraft"): [verdict()],
    })
    first = _room(tmp_path / "rec", model)
    lib = tmp_path / "rec" / "docs" / "library"
    out = CliRunner().invoke(app, ["write", "a HOWTO on sorting in Python", "--sources", str(lib), "--sections", "2",
                                   "--replay", str(first.transcript), "-w", str(tmp_path / "ws")])
    assert out.exit_code == 0, out.output
    assert "document" in out.output and "2 of 2 ran in the sandbox" in out.output
    assert "2 of 2 quote their source" in out.output and "tests" not in out.output
    assert (tmp_path / "ws" / "document.md").read_text() == first.document.markdown
    report = (tmp_path / "ws" / ".mgpt" / "report.html").read_text()
    assert "Writer 2" in report and "Checks: Sorting in Python" in report and "test run 2" in report


def test_mgpt_write_refuses_a_missing_sources_folder_with_what_to_install(tmp_path):
    from typer.testing import CliRunner

    from mgpt.cli.app import app

    out = CliRunner().invoke(app, ["write", "a HOWTO on sorting", "--sources", str(tmp_path / "nope"),
                                   "-w", str(tmp_path / "ws"), "-m", "test"])
    assert out.exit_code == 2 and "apt-get install python3.11-doc" in out.output
    assert not (tmp_path / "ws").exists()


def test_an_interrupted_room_resumes_without_asking_again_what_it_was_answered(tmp_path):
    import pytest

    from mgpt.llm.backends.testing import FunctionModel
    from mgpt.llm.errors import TranscriptError

    answers = {("Planner", "WriteOutline"): outline("Sorting basics", "Key functions"),
               ("Writer 1", "WriteSection"): GOOD_1}

    def flaky(messages, context):  # the model goes away before Writer 2 is answered
        if (context.role, context.action) not in answers:
            raise TranscriptError("the model went away")
        return answers[(context.role, context.action)]

    with pytest.raises(TranscriptError):
        _room(tmp_path, FunctionModel(flaky))
    rest = TestModel({("Writer 2", "WriteSection"): [GOOD_2], ("Editor", "ReviewDraft"): [verdict()]}, name="function")
    result = asyncio.run(run_writers_room(None, model=rest, sources=tmp_path / "docs" / "library",
                                          workspace=tmp_path / "ws", sections=2, resume=True))
    assert result.ok and (result.replayed_calls, result.new_calls) == (2, 2)
    assert [ctx.role for ctx, _ in rest.requests] == ["Writer 2", "Editor"]

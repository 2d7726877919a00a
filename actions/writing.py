"""The writers' room's steps: outline, sources, sections, example runs, review, the document.

Each step is an :class:`~mgpt.actions.base.Action`; what it returns is published on the
bus as the step's message (:mod:`mgpt.roles.writing` says who takes which step):

- :class:`WriteOutline` (one model call): the brief -> an :class:`Outline`;
- :class:`FindSources` (no model call): each section's passages, retrieved from the
  corpus (``settings["library"]``, a :class:`~mgpt.domains.pydocs.search.SourceIndex`) and
  numbered -> :class:`Research`; each passage passes the leak guard first;
- :class:`WriteSection` / :class:`ReviseSection` (one call each): a writer's section, and
  its revision after failing examples or the editor's notes -> :class:`Section`;
- :class:`RunExamples` (no call): a section's code examples run in the sandbox ->
  :class:`ExampleReport`, sent back to the writer while fix rounds are left;
- :class:`ReviewDraft` (one call): citations checked against the sources, failing
  examples and the editor's own reading -> a :class:`Review` that sends revisions back
  while revision rounds are left;
- :class:`PublishDocument` (no call): the document and its checks, written to the workspace.

Settings (``ctx.settings``): ``library``, ``guard`` (a leak guard or None), ``sections``,
``sources_per_section``, ``fix_rounds``, ``revision_rounds``, ``run_examples``,
``limits`` and ``example_timeout``.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, Field

from mgpt.actions.base import Action, ActionContext, ActionError
from mgpt.actions.document_checks import Citation, ExampleRun, check_citations, close_fences, run_examples, share
from mgpt.agents.message import Message, UserRequirement
from mgpt.sandbox.isolation import Limits
from mgpt.sandbox.workspace import Workspace

__all__ = [
    "DOCUMENT", "Document", "Draft", "ExampleReport", "FindSources", "Outline", "PublishDocument", "Research", "Review",
    "ReviewDraft", "ReviseSection", "Revision", "RunExamples", "Section", "SectionPlan", "Source", "Verdict",
    "WriteOutline", "WriteSection", "read_draft",
]

#: Where the document is written in the workspace.
DOCUMENT = "document.md"
#: Characters of one source shown to a writer (a passage is cut there).
SOURCE_CHARS = 700


# -- what the steps hand on ------------------------------------------------------------------


class SectionPlan(BaseModel):
    heading: str = Field(description="the section's heading")
    covers: str = Field(description="what the section explains, in one sentence")


class Outline(BaseModel):
    """The planner's outline: a title and the sections in reading order."""

    title: str = Field(description="the document's title")
    sections: list[SectionPlan] = Field(min_length=1, description="the sections, in reading order")

    def to_markdown(self) -> str:
        items = "\n".join(f"{i}. **{s.heading}**: {s.covers}" for i, s in enumerate(self.sections, 1))
        return f"# Outline: {self.title}\n\n{items}\n"


class Source(BaseModel):
    """A retrieved passage, numbered for citations."""

    number: int
    page: str
    heading: str
    text: str

    def label(self) -> str:
        return f"{self.page}, {self.heading}" if self.heading else self.page


class Research(BaseModel):
    """The outline and, per section, the numbers of the sources found for it."""

    outline: Outline
    sources: list[Source]
    sections: list[list[int]]

    def by_number(self) -> dict[int, Source]:
        return {s.number: s for s in self.sources}

    def for_section(self, index: int) -> list[Source]:
        numbers = self.sections[index - 1] if 0 < index <= len(self.sections) else []
        found = self.by_number()
        return [found[n] for n in numbers if n in found]

    def to_markdown(self) -> str:
        parts = [f"# Sources for: {self.outline.title}\n"]
        for i, (plan, numbers) in enumerate(zip(self.outline.sections, self.sections), 1):
            parts.append(f"## {i}. {plan.heading}\n\nsources {', '.join(f'[{n}]' for n in numbers) or 'none'}\n")
        for s in self.sources:
            quoted = "\n".join("> " + line for line in s.text.splitlines())
            parts.append(f"### [{s.number}] {s.label()}\n\n{quoted}\n")
        return "\n".join(parts)


class Section(BaseModel):
    """One section as its writer wrote it (``version`` 1, then one more per revision)."""

    index: int
    heading: str
    text: str
    version: int = 1

    def to_markdown(self) -> str:
        return f"## {self.heading}\n\n{self.text.strip()}\n"


class ExampleReport(BaseModel):
    """A section's examples as they ran. The counts and ``output`` are named as a test
    run's, so the run report shows example runs where it shows test runs."""

    section: int
    version: int
    runs: list[ExampleRun] = Field(default_factory=list)
    #: how many times this section had been sent back for failing examples before
    fix_round: int = 0
    #: no fix round is left for it (or it passed): the editor takes this version
    final: bool = False
    passed: int = 0
    failed: int = 0
    errors: int = 0
    exit_code: int = 0
    timed_out: bool = False
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def to_markdown(self) -> str:
        head = f"Section {self.section} (version {self.version}): {self.passed} of {len(self.runs)} example(s) ran"
        return head + ("" if not self.output else f"\n\n```\n{self.output}\n```")


class Note(BaseModel):
    section: int = Field(description="the number of the section with the problem")
    problem: str = Field(description="what is wrong or missing there, in one sentence")


class Verdict(BaseModel):
    """The editor's own reading of the draft."""

    approved: bool = Field(description="true if the draft needs no change")
    notes: list[Note] = Field(default_factory=list, description="the problems found, by section")


class Revision(BaseModel):
    section: int
    notes: list[str]


class Review(BaseModel):
    """One review of the draft: what was checked, and the revisions asked (none: final)."""

    round: int
    versions: dict[int, int]
    citations: list[Citation] = Field(default_factory=list)
    revisions: list[Revision] = Field(default_factory=list)
    final: bool = False

    def to_markdown(self) -> str:
        ok, total = share(c.ok for c in self.citations)
        asked = "; ".join(f"section {r.section}: {' / '.join(r.notes)}" for r in self.revisions)
        return (f"Review {self.round}: citations {ok}/{total} match their source. "
                + (f"Revisions asked: {asked}" if asked else "Final."))


class Document(BaseModel):
    """The finished document and what was checked in it."""

    title: str
    markdown: str
    sections: list[Section]
    examples: list[ExampleRun] = Field(default_factory=list)
    citations: list[Citation] = Field(default_factory=list)
    review_rounds: int = 0
    #: were the examples run by the room (False: a room without execution)
    examples_run: bool = True

    @property
    def clean(self) -> bool:
        """Every example ran and every citation matches its source."""
        return all(e.ok for e in self.examples) and all(c.ok for c in self.citations)

    def to_markdown(self) -> str:
        return self.markdown


# -- helpers ---------------------------------------------------------------------------------


def system_prompt(ctx: ActionContext) -> str:
    text = f"You are {ctx.role_name}, a {ctx.role_profile} writing documentation for Python programmers."
    return text + (f" Your goal: {ctx.role_goal}." if ctx.role_goal else "")


def _brief(ctx: ActionContext) -> str:
    message = ctx.latest(UserRequirement)
    if message is None:
        raise ActionError("the writers' room has no brief: start it with what to write")
    return message.content


async def _latest(ctx: ActionContext, step: type[Action], **match: Any) -> Message | None:
    """The newest remembered message of ``step`` whose payload has the fields ``match``."""
    found = [m for m in await ctx.memory.find(cause_by=step)
             if all(getattr(m.payload, k, None) == v for k, v in match.items())]
    return found[-1] if found else None


def _section_body(reply: str, heading: str) -> str:
    """The model's section without a heading line it repeated or a fence around it all."""
    text = reply.strip()
    if text.startswith("```markdown") or text.startswith("```md"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text[: text.rfind("```")] if text.rstrip().endswith("```") else text
    lines = text.strip().splitlines()
    while lines and (lines[0].lstrip().startswith("#") or lines[0].strip().strip("*") == heading.strip()):
        lines.pop(0)
    body = close_fences("\n".join(lines).strip()).strip()
    if not body:
        raise ActionError(f"the writer's answer for {heading!r} holds no text")
    return body


def _sources_block(sources: list[Source]) -> str:
    if not sources:
        return "No sources were found for this section: write from what you know and cite nothing.\n"
    parts = []
    for s in sources:
        text = s.text if len(s.text) <= SOURCE_CHARS else s.text[:SOURCE_CHARS] + " ..."
        parts.append(f"[{s.number}] {s.label()}:\n{text}")
    return "Sources (numbered):\n\n" + "\n\n".join(parts) + "\n"


_CITE_RULE = ('Back facts with citations. A citation is a few words copied exactly from a source, in double '
              'quotes, followed by the source\'s number in square brackets: "words from the source" [N].')
_EXAMPLE_RULE = ("Include at least one short example in a ```python block that runs on its own (standard "
                 "library only) and prints what it shows.")


# -- the steps -------------------------------------------------------------------------------


class WriteOutline(Action):
    description = "Plan the document: a title and its sections"

    async def run(self, ctx: ActionContext) -> Outline:
        limit = int(ctx.settings.get("sections", 4))
        prompt = (f"Plan this document for Python programmers: {_brief(ctx)}\n\n"
                  f"Give it a title and at most {limit} sections in reading order, the basics first. Each "
                  "section has a heading and one sentence saying what it explains.")
        schema = Outline.model_json_schema()
        schema["properties"]["sections"]["maxItems"] = limit  # local models decode no more than that
        outline = await self.ask_structured(prompt, Outline, system=system_prompt(ctx), json_schema=schema)
        # A small model repeats itself: a heading given twice is one section.
        seen: dict[str, SectionPlan] = {}
        for plan in outline.sections:
            seen.setdefault(" ".join(plan.heading.lower().split()), plan)
        outline = outline.model_copy(update={"sections": list(seen.values())[:limit]})
        if ctx.workspace is not None:
            Workspace(ctx.workspace).write("docs/outline.md", outline.to_markdown())
        return outline


class FindSources(Action):
    description = "Retrieve and number the sources each section can cite"

    async def run(self, ctx: ActionContext) -> Research:
        outline: Outline = ctx.latest(WriteOutline).payload  # type: ignore[union-attr, assignment]
        library = ctx.settings.get("library")
        if library is None:
            raise ActionError("the researcher has no corpus to search (settings['library'])")
        guard = ctx.settings.get("guard")
        k = int(ctx.settings.get("sources_per_section", 3))
        numbers: dict[tuple[str, str], int] = {}
        sources: list[Source] = []
        per_section: list[list[int]] = []
        for plan in outline.sections:
            query = f"{outline.title}. {plan.heading}. {plan.covers}"
            mine = []
            for passage in await library.search(query, k):
                if guard is not None:  # the reference's text must never reach a writer's prompt
                    guard.check(passage.text, where=f"the source {passage.label()}")
                key = (passage.page, passage.text)
                if key not in numbers:
                    numbers[key] = len(numbers) + 1
                    sources.append(Source(number=numbers[key], page=passage.page, heading=passage.heading,
                                          text=passage.text))
                mine.append(numbers[key])
            per_section.append(mine)
        research = Research(outline=outline, sources=sources, sections=per_section)
        if ctx.workspace is not None:
            Workspace(ctx.workspace).write("docs/sources.md", research.to_markdown())
        return research


class WriteSection(Action):
    """The first draft of section ``index`` (1-based) of the outline."""

    description = "Write one section of the document, with examples and citations"

    def __init__(self, index: int = 1) -> None:
        super().__init__()
        self.index = index

    def prompt(self, research: Research) -> str:
        outline = research.outline
        plan = outline.sections[self.index - 1]
        items = "\n".join(f"{i}. {s.heading}: {s.covers}" for i, s in enumerate(outline.sections, 1))
        return (f"The document \"{outline.title}\" has these sections:\n{items}\n\n"
                f"Write section {self.index}, \"{plan.heading}\": {plan.covers}\n\n"
                f"{_sources_block(research.for_section(self.index))}\n"
                f"Write the section's text in Markdown, without its heading. {_EXAMPLE_RULE} {_CITE_RULE}")

    async def run(self, ctx: ActionContext) -> Section | None:
        research: Research = ctx.latest(FindSources).payload  # type: ignore[union-attr, assignment]
        if self.index > len(research.outline.sections):
            return None  # the outline has fewer sections than the room has writers
        plan = research.outline.sections[self.index - 1]
        reply = await self.ask(self.prompt(research), system=system_prompt(ctx))
        return Section(index=self.index, heading=plan.heading, text=_section_body(reply, plan.heading))


def _feedback(message: Message, index: int) -> str:
    """What a writer is asked to fix: its failing examples, or the editor's notes."""
    payload = message.payload
    if isinstance(payload, ExampleReport):
        failing = [r for r in payload.runs if not r.ok]
        return "\n\n".join(f"Example {r.number} failed when run:\n```\n{r.code.strip()}\n```\nIt printed:\n```\n"
                           f"{r.output.strip()[-800:]}\n```" for r in failing)
    if isinstance(payload, Review):
        notes = [n for r in payload.revisions if r.section == index for n in r.notes]
        return "The editor asks for these changes:\n" + "\n".join(f"- {n}" for n in notes)
    return message.content


class ReviseSection(WriteSection):
    """A section rewritten with what came back: the errors of its failing examples, or the
    editor's notes. It publishes as :class:`WriteSection` (``step``), so the tester and the
    editor take the new version as they took the first."""

    name = "ReviseSection"
    step = WriteSection
    description = "Rewrite a section to fix its failing examples or the editor's notes"

    async def run(self, ctx: ActionContext) -> Section:
        research: Research = (await _latest(ctx, FindSources)).payload  # type: ignore[union-attr, assignment]
        asked = next(m for m in reversed(ctx.news) if m.is_for(ctx.role_name))
        previous: Section = (await _latest(ctx, WriteSection, index=self.index)).payload  # type: ignore[union-attr]
        prompt = (f"{self.prompt(research)}\n\nYour last version of this section:\n\n{previous.text}\n\n"
                  f"{_feedback(asked, self.index)}\n\nWrite the whole section again with these problems fixed, "
                  "in Markdown, without its heading.")
        reply = await self.ask(prompt, system=system_prompt(ctx))
        return previous.model_copy(update={"text": _section_body(reply, previous.heading),
                                           "version": previous.version + 1})


class RunExamples(Action):
    """Run the examples of the next section version this turn brought that has no report yet."""

    description = "Run a section's code examples in the sandbox and report"

    async def run(self, ctx: ActionContext) -> Message | None:
        reported = {(m.payload.section, m.payload.version) for m in ctx.news
                    if isinstance(m.payload, ExampleReport) and m.sent_from == ctx.role_name}
        pending = [m.payload for m in ctx.news if isinstance(m.payload, Section)
                   and (m.payload.index, m.payload.version) not in reported]
        if not pending or ctx.workspace is None:
            return None
        section: Section = pending[0]  # type: ignore[assignment]
        limits = replace(ctx.settings.get("limits") or Limits(),
                         timeout=float(ctx.settings.get("example_timeout", 10.0)))
        cancel = threading.Event()
        try:  # the sandbox blocks: a worker thread, so Ctrl-C's cancellation reaches this task
            runs = await asyncio.to_thread(run_examples, section.text, ctx.workspace, section=section.index,
                                           limits=limits, cancel=cancel)
        except BaseException:
            cancel.set()
            raise
        sent_back = [m for m in await ctx.memory.find(cause_by=RunExamples)
                     if m.payload.section == section.index and not m.payload.final]  # type: ignore[union-attr]
        failing = [r for r in runs if not r.ok]
        report = ExampleReport(
            section=section.index, version=section.version, runs=runs, fix_round=len(sent_back),
            final=not failing or len(sent_back) >= int(ctx.settings.get("fix_rounds", 2)),
            passed=len(runs) - len(failing), failed=len(failing), exit_code=1 if failing else 0,
            timed_out=any(r.timed_out for r in runs), output="\n".join(r.output for r in failing)[-3000:],
        )
        writer = f"Writer {section.index}"
        return Message(content=report.to_markdown(), payload=report,
                       send_to=frozenset() if report.final else frozenset({writer}))


# -- the editor's side ---------------------------------------------------------------------


class Draft(BaseModel):
    """The document so far: the research, the newest version of each outlined section, and
    (when examples are run) the final example report of each of those versions."""

    research: Research
    sections: list[Section]
    reports: dict[int, ExampleReport] = Field(default_factory=dict)
    examples_run: bool = True

    @property
    def versions(self) -> dict[int, int]:
        return {s.index: s.version for s in self.sections}

    @property
    def ready(self) -> bool:
        """Every outlined section is written and, when examples run, its examples have run."""
        if len(self.sections) < len(self.research.outline.sections):
            return False
        return not self.examples_run or all(s.index in self.reports for s in self.sections)

    def sources_text(self) -> dict[int, str]:
        return {n: s.text for n, s in self.research.by_number().items()}


async def read_draft(ctx: ActionContext) -> Draft | None:
    """The draft as the editor's memory holds it (None before the sources are found)."""
    research = await _latest(ctx, FindSources)
    if research is None:
        return None
    examples_run = bool(ctx.settings.get("run_examples", True))
    newest: dict[int, Section] = {}
    for m in await ctx.memory.find(cause_by=WriteSection):
        s: Section = m.payload  # type: ignore[assignment]
        if s.index not in newest or s.version > newest[s.index].version:
            newest[s.index] = s
    reports = {}
    for m in await ctx.memory.find(cause_by=RunExamples):
        r: ExampleReport = m.payload  # type: ignore[assignment]
        if r.final and r.section in newest and r.version == newest[r.section].version:
            reports[r.section] = r
    outlined = len(research.payload.outline.sections)  # type: ignore[union-attr]
    sections = [newest[i] for i in sorted(newest) if i <= outlined]
    return Draft(research=research.payload, sections=sections, reports=reports, examples_run=examples_run)


def _notes(draft: Draft, citations: list[Citation], verdict: Verdict) -> dict[int, list[str]]:
    """What each section should fix: citations that do not match, failing examples, no
    citation at all, and the editor's own notes."""
    notes: dict[int, list[str]] = {}
    for c in citations:
        if not c.ok:
            quoted = f'"{c.quote}" [{c.source}]' if c.quote else f"[{c.source}]"
            notes.setdefault(c.section, []).append(f"the citation {quoted} does not hold: {c.problem}")
    for s in draft.sections:
        if not any(c.section == s.index for c in citations) and draft.research.for_section(s.index):
            notes.setdefault(s.index, []).append("it cites no source: quote the sources it rests on")
        report = draft.reports.get(s.index)
        for run in (report.runs if report else []):
            if not run.ok:
                notes.setdefault(s.index, []).append(
                    f"example {run.number} fails when run: {run.output.strip().splitlines()[-1:] or ['no output']}")
    for n in verdict.notes if not verdict.approved else []:
        if 1 <= n.section <= len(draft.sections) and n.problem.strip():
            notes.setdefault(n.section, []).append(n.problem.strip())
    return notes


class ReviewDraft(Action):
    description = "Review the draft against the outline and the sources; ask for revisions"

    def prompt(self, draft: Draft) -> str:
        outline = draft.research.outline
        plan = "\n".join(f"{i}. {s.heading}: {s.covers}" for i, s in enumerate(outline.sections, 1))
        body = "\n".join(f"## {s.index}. {s.heading}\n\n{s.text.strip()}\n" for s in draft.sections)
        sources = "\n".join(f"[{s.number}] {s.label()}: {' '.join(s.text.split())[:300]}"
                            for s in draft.research.sources)
        return (f"Review this draft of \"{outline.title}\" against its outline and its sources.\n\n"
                f"Outline:\n{plan}\n\nDraft:\n\n{body}\nSources:\n{sources}\n\n"
                "Check that each section explains what the outline says and that what it states agrees "
                "with the sources. Approve the draft if nothing needs to change; otherwise give each "
                "problem with the number of its section.")

    async def run(self, ctx: ActionContext) -> Message:
        draft = await read_draft(ctx)
        if draft is None or not draft.ready:
            raise ActionError("the editor was asked to review a draft that is not complete")
        earlier = [m.payload for m in await ctx.memory.find(cause_by=ReviewDraft)]
        citations = [c for s in draft.sections
                     for c in check_citations(s.text, draft.sources_text(), section=s.index)]
        verdict = await self.ask_structured(self.prompt(draft), Verdict, system=system_prompt(ctx))
        notes = _notes(draft, citations, verdict)
        used = sum(1 for r in earlier if r.revisions)  # type: ignore[union-attr]
        more = bool(notes) and used < int(ctx.settings.get("revision_rounds", 1))
        revisions = [Revision(section=i, notes=n) for i, n in sorted(notes.items())] if more else []
        review = Review(round=len(earlier) + 1, versions=draft.versions, citations=citations,
                        revisions=revisions, final=not more)
        writers = frozenset(f"Writer {r.section}" for r in revisions)
        return Message(content=review.to_markdown(), payload=review, send_to=writers)


def _checks_markdown(doc: Document) -> str:
    lines = [f"# Checks: {doc.title}\n", "## Examples\n"]
    if not doc.examples_run:
        lines.append("Not run by the room (a room without execution).\n")
    for e in doc.examples:
        lines.append(f"- section {e.section}, example {e.number} (`{e.path}`): {'ran' if e.ok else 'FAILED'}")
    ok, total = share(c.ok for c in doc.citations)
    lines += ["", f"## Citations: {ok} of {total} match their source\n"]
    for c in doc.citations:
        quoted = f'"{c.quote}" [{c.source}]' if c.quote else f"[{c.source}]"
        lines.append(f"- section {c.section}: {quoted}: " + ("matches" if c.ok else f"FLAGGED: {c.problem}"))
    return "\n".join(lines) + "\n"


class PublishDocument(Action):
    description = "Put the reviewed sections together with their sources and write the document"

    async def run(self, ctx: ActionContext) -> Document:
        draft = await read_draft(ctx)
        review = await _latest(ctx, ReviewDraft)
        if draft is None or review is None:
            raise ActionError("the editor was asked to publish before reviewing")
        citations: list[Citation] = review.payload.citations  # type: ignore[union-attr]
        sources = draft.research.by_number()
        cited = sorted({c.source for c in citations if c.source in sources})
        title = draft.research.outline.title
        listed = "\n".join(f"[{n}] {sources[n].label()}" for n in cited)
        markdown = (f"# {title}\n\n" + "\n".join(s.to_markdown() for s in draft.sections)
                    + (f"\n## Sources\n\n{listed}\n" if listed else ""))
        doc = Document(title=title, markdown=markdown, sections=draft.sections,
                       examples=[r for i in sorted(draft.reports) for r in draft.reports[i].runs],
                       citations=citations, review_rounds=review.payload.round,  # type: ignore[union-attr]
                       examples_run=draft.examples_run)
        if ctx.workspace is not None:
            ws = Workspace(ctx.workspace)
            ws.write(DOCUMENT, markdown)
            ws.write("docs/checks.md", _checks_markdown(doc))
        return doc

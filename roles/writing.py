"""The writers' room: a planner, a researcher, a writer per section, a tester, an editor.

The planner outlines the brief; the researcher finds each section's sources in the corpus;
the writers (``Writer 1``... one per section, so they write concurrently, in the same
round) write their sections; the tester runs each section's code examples in the sandbox
and sends a section with a failing example back to its writer, with the error, while fix
rounds are left; the editor, once every section is in (and its examples have run),
checks the citations against the sources, reads the draft against the outline, and sends
revisions back while revision rounds are left; then it publishes the document.

Without the tester (``run_examples=False``) nothing runs the examples: the editor reviews
the sections as they are written.
"""

from __future__ import annotations

from mgpt.actions.base import Action, ActionContext
from mgpt.actions.writing import (
    FindSources, PublishDocument, Review, ReviewDraft, ReviseSection, RunExamples, WriteOutline, WriteSection,
    read_draft,
)
from mgpt.agents.message import UserRequirement

from mgpt.roles.base import Role

__all__ = ["MAX_SECTIONS", "Editor", "Planner", "Researcher", "Tester", "Writer", "writing_roles"]

#: The most sections an outline may have (the room hires one writer per section).
MAX_SECTIONS = 8


class Planner(Role):
    name = "Planner"
    profile = "planning editor"
    goal = "an outline whose sections, read in order, teach the subject"
    actions = [WriteOutline]
    watch = [UserRequirement]


class Researcher(Role):
    name = "Researcher"
    profile = "researcher"
    goal = "for every section, the passages of the sources it can rest on"
    actions = [FindSources]
    watch = [WriteOutline]


class Writer(Role):
    """Writes section ``index`` of the outline, and rewrites it with what comes back."""

    profile = "technical writer"
    goal = "a clear section whose examples run and whose citations quote their sources"
    watch = [FindSources]

    def __init__(self, index: int):
        super().__init__(name=f"Writer {index}", actions=[WriteSection(index), ReviseSection(index)])
        self.index = index

    async def think(self, ctx: ActionContext, done: list[Action]) -> Action | None:
        if done:
            return None
        if any(m.is_for(self.name) for m in ctx.news):  # failing examples, or the editor's notes
            return self.actions[1]
        if ctx.latest(FindSources) is not None:
            return self.actions[0]
        return None


class Tester(Role):
    """Runs the examples of every section version the writers publish."""

    name = "Tester"
    profile = "tester"
    goal = "every example in the document runs"
    actions = [RunExamples]
    watch = [WriteSection]
    max_react_loop = MAX_SECTIONS

    async def think(self, ctx: ActionContext, done: list[Action]) -> Action | None:
        sections = [m for m in ctx.news if m.cause_by is WriteSection]
        return self.actions[0] if len(done) < len(sections) else None


class Editor(Role):
    """Reviews the draft once every section is in; publishes it when no revision is left."""

    name = "Editor"
    profile = "editor"
    goal = "a document that follows its outline, agrees with its sources and whose examples run"
    actions = [ReviewDraft, PublishDocument]
    watch = [FindSources, WriteSection, RunExamples]

    async def think(self, ctx: ActionContext, done: list[Action]) -> Action | None:
        if not done:
            draft = await read_draft(ctx)
            if draft is None or not draft.ready:
                return None
            reviews = await ctx.memory.find(cause_by=ReviewDraft)
            if reviews and reviews[-1].payload.versions == draft.versions:  # type: ignore[union-attr]
                return None  # this draft was reviewed: wait for the revisions asked
            return self.actions[0]
        last = ctx.news[-1].payload if ctx.news else None
        if len(done) == 1 and isinstance(last, Review) and last.final:
            return self.actions[1]
        return None


def writing_roles(sections: int = 4, *, run_examples: bool = True) -> list[Role]:
    """The room for an outline of at most ``sections`` sections."""
    if not 1 <= sections <= MAX_SECTIONS:
        raise ValueError(f"sections must be between 1 and {MAX_SECTIONS}")
    roles: list[Role] = [Planner(), Researcher(), *(Writer(i) for i in range(1, sections + 1))]
    if run_examples:
        roles.append(Tester())
    return [*roles, Editor()]

"""The software company's five roles.

Product manager → PRD; architect → design; project manager → tasks; engineer → code (and
fixes); QA engineer → tests, runs them, sends failures back to the engineer.
"""

from __future__ import annotations

from mgpt.actions.base import Action, ActionContext
from mgpt.actions.coding import FixBug, RunTests, WriteCode, WriteTests
from mgpt.actions.planning import WriteDesign, WritePRD, WriteTasks
from mgpt.agents.message import UserRequirement

from mgpt.roles.base import Role


class ProductManager(Role):
    name = "ProductManager"
    profile = "product manager"
    goal = "a small, clear PRD whose acceptance criteria tests can check"
    actions = [WritePRD]
    watch = [UserRequirement]


class Architect(Role):
    name = "Architect"
    profile = "software architect"
    goal = "a simple design with clear files and interfaces"
    actions = [WriteDesign]
    watch = [WritePRD]


class ProjectManager(Role):
    name = "ProjectManager"
    profile = "project manager"
    goal = "an ordered task list, one task per file"
    actions = [WriteTasks]
    watch = [WriteDesign]


def _action(role: Role, kind: type[Action]) -> Action:
    return next(a for a in role.actions if isinstance(a, kind))


class Engineer(Role):
    """Writes the files of the task list; fixes them when QA sends back failing tests.

    It also watches the design, which it remembers for later without acting on it.
    """

    name = "Engineer"
    profile = "software engineer"
    goal = "correct, readable, tested Python"
    actions = [WriteCode, FixBug]
    watch = [WriteDesign, WriteTasks]

    async def think(self, ctx: ActionContext, done: list[Action]) -> Action | None:
        if done:
            return None
        if ctx.latest(RunTests) is not None:
            return _action(self, FixBug)
        if ctx.latest(WriteTasks) is not None:
            return _action(self, WriteCode)
        return None


class QaEngineer(Role):
    """Writes tests for new code and runs them; after a fix it only re-runs them."""

    name = "QaEngineer"
    profile = "QA engineer"
    goal = "tests that check the acceptance criteria, and code that passes them"
    actions = [WriteTests, RunTests]
    watch = [WritePRD, WriteCode, FixBug]

    async def think(self, ctx: ActionContext, done: list[Action]) -> Action | None:
        names = [a.name for a in done]
        if ctx.latest(WriteCode) is not None and not names:
            return _action(self, WriteTests)
        if (names == ["WriteTests"]) or (ctx.latest(FixBug) is not None and not names):
            return _action(self, RunTests)
        return None

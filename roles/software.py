"""The software company's five roles.

Product manager → PRD; architect → design; project manager → tasks; engineer → code (and
fixes); QA engineer → tests, runs them, sends failures back to the engineer.

In an incremental run (``--inc``) each role holds its ``incremental_actions`` instead: the
variants of its steps that change an existing project (:mod:`mgpt.actions.incremental`).
A variant publishes as the step it replaces, so what each role watches stays the same.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

from mgpt.actions.base import Action, ActionContext
from mgpt.actions.coding import FixBug, RunTests, WriteCode, WriteTests
from mgpt.actions.incremental import (
    FixBugKeepingOldTests, WriteChangedCode, WriteChangeRequest, WriteChangeTasks, WriteChangeTests, WriteDesignChange,
)
from mgpt.actions.planning import WriteDesign, WritePRD, WriteTasks
from mgpt.agents.message import UserRequirement

from mgpt.roles.base import Role


class SoftwareRole(Role):
    """A role of the software company: its ``actions`` build a new project, its
    ``incremental_actions`` (the same steps' variants, in the same order) change one."""

    incremental_actions: ClassVar[Sequence[type[Action]]] = ()


class ProductManager(SoftwareRole):
    name = "ProductManager"
    profile = "product manager"
    goal = "a small, clear PRD whose acceptance criteria tests can check"
    actions = [WritePRD]
    incremental_actions = [WriteChangeRequest]
    watch = [UserRequirement]


class Architect(SoftwareRole):
    name = "Architect"
    profile = "software architect"
    goal = "a simple design with clear files and interfaces"
    actions = [WriteDesign]
    incremental_actions = [WriteDesignChange]
    watch = [WritePRD]


class ProjectManager(SoftwareRole):
    name = "ProjectManager"
    profile = "project manager"
    goal = "an ordered task list, one task per file"
    actions = [WriteTasks]
    incremental_actions = [WriteChangeTasks]
    watch = [WriteDesign]


def _action(role: Role, kind: type[Action]) -> Action:
    """The role's action for the step ``kind`` (the step's own action or its variant)."""
    return next(a for a in role.actions if isinstance(a, kind))


class Engineer(SoftwareRole):
    """Writes the files of the task list; fixes them when QA sends back failing tests.

    It also watches the design, which it remembers for later without acting on it.
    """

    name = "Engineer"
    profile = "software engineer"
    goal = "correct, readable, tested Python"
    actions = [WriteCode, FixBug]
    incremental_actions = [WriteChangedCode, FixBugKeepingOldTests]
    watch = [WriteDesign, WriteTasks]

    async def think(self, ctx: ActionContext, done: list[Action]) -> Action | None:
        if done:
            return None
        if ctx.latest(RunTests) is not None:
            return _action(self, FixBug)
        if ctx.latest(WriteTasks) is not None:
            return _action(self, WriteCode)
        return None


class QaEngineer(SoftwareRole):
    """Writes tests for new code and runs them; after a fix it only re-runs them."""

    name = "QaEngineer"
    profile = "QA engineer"
    goal = "tests that check the acceptance criteria, and code that passes them"
    actions = [WriteTests, RunTests]
    incremental_actions = [WriteChangeTests, RunTests]
    watch = [WritePRD, WriteCode, FixBug]

    async def think(self, ctx: ActionContext, done: list[Action]) -> Action | None:
        names = [a.name for a in done]
        if ctx.latest(WriteCode) is not None and not names:
            return _action(self, WriteTests)
        if (names == ["WriteTests"]) or (ctx.latest(FixBug) is not None and not names):
            return _action(self, RunTests)
        return None


#: The company's roles, in the order they join the team.
SOFTWARE_ROLES: tuple[type[SoftwareRole], ...] = (ProductManager, Architect, ProjectManager, Engineer, QaEngineer)


def software_roles(*, incremental: bool = False) -> list[SoftwareRole]:
    """The five roles for a run: a first run's, or (``incremental``) an ``--inc`` run's."""
    return [role(actions=role.incremental_actions) if incremental else role() for role in SOFTWARE_ROLES]

"""A variant of a step is its own Action (``step`` names the step it replaces): it
publishes as the step, its model calls carry the step's name, and a wrong ``step`` is
refused when the class is made. The incremental run's steps are such variants."""

import asyncio

import pytest

from mgpt.actions.base import Action, ActionContext, ActionError
from mgpt.actions.coding import FixBug
from mgpt.actions.incremental import (
    FixBugKeepingOldTests, ProjectState, WriteChangedCode, WriteChangeRequest, WriteChangeTasks, WriteChangeTests,
    WriteDesignChange,
)
from mgpt.agents import Message, Team
from mgpt.agents.message import UserRequirement
from mgpt.llm.backends.testing import TestModel
from mgpt.roles import Role


class Greet(Action):
    async def run(self, ctx):
        return await self.ask("Say hello.")


class GreetLoudly(Greet):
    step = Greet

    async def run(self, ctx):
        return (await self.ask("Say hello, loudly.")).upper()


def test_an_action_is_its_own_step_and_a_variant_keeps_its_steps_name():
    assert Greet.step is Greet and Greet.name == "Greet"
    assert GreetLoudly.step is Greet and GreetLoudly.name == "Greet"

    class Named(Greet):
        step = Greet
        name = "Shout"

    assert Named.step is Greet and Named.name == "Shout"


def test_a_step_the_variant_does_not_subclass_is_refused():
    with pytest.raises(TypeError, match="step must be a class it subclasses"):
        class Stray(Action):  # noqa: F841
            step = Greet
    with pytest.raises(TypeError, match="step must be a class it subclasses"):
        class NotAType(Action):  # noqa: F841
            step = "Greet"


def test_a_variant_publishes_as_its_step_and_calls_the_model_under_its_name():
    heard: list[Message] = []

    class Listener(Action):
        async def run(self, ctx):
            heard.extend(ctx.news)

    model = TestModel(["hello"])
    speaker = Role(name="Speaker", actions=[GreetLoudly], watch=[UserRequirement])
    listener = Role(name="Listener", actions=[Listener], watch=[Greet])  # watches the step
    asyncio.run(Team(model=model).hire(speaker, listener).run("go"))
    assert [(m.content, m.cause_by) for m in heard] == [("HELLO", Greet)]
    assert [ctx.action for ctx, _ in model.requests] == ["Greet"]


VARIANTS = [WriteChangeRequest, WriteDesignChange, WriteChangeTasks, WriteChangedCode, WriteChangeTests,
            FixBugKeepingOldTests]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.__name__)
def test_incremental_steps_are_variants_of_the_company_steps(variant):
    step = variant.step
    assert step is not variant and issubclass(variant, step)
    assert variant.name == step.name == step.__name__  # replay keys and run logs stay the same


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v is not FixBugKeepingOldTests], ids=lambda v: v.__name__)
def test_an_incremental_step_outside_an_incremental_run_says_so(variant, tmp_path):
    ctx = ActionContext(role_name="Someone", workspace=tmp_path)
    with pytest.raises(ActionError, match="--inc"):
        asyncio.run(variant().run(ctx))


def test_the_incremental_fix_keeps_the_old_tests():
    project = ProjectState(project_name="p", sources={}, old_tests=["tests/test_a.py"], map="", number=1)
    ctx = ActionContext(settings={"incremental": project})
    assert FixBugKeepingOldTests().protected(ctx) == {"tests/test_a.py"}
    assert FixBug().protected(ctx) == set()
    with pytest.raises(ActionError, match="--inc"):
        FixBugKeepingOldTests().protected(ActionContext())

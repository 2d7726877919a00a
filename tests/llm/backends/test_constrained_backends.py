"""The requested output shape travels through every backend; servers get response_format."""

from __future__ import annotations

import asyncio
import json

import pytest
from openai_stub import OpenAIStub
from pydantic import BaseModel

from mgpt.actions import Action, ActionContext, extract_files
from mgpt.agents.runlog import Event
from mgpt.llm import LLM, CallContext, ChatMessage, Completion, Model, OutputFormat
from mgpt.llm.backends.replay import RecordingModel, ReplayModel, Transcript
from mgpt.llm.backends.testing import FunctionModel, TestModel

GOOD = '{"title": "count words", "effort": 2}'


class Plan(BaseModel):
    title: str
    effort: int


class Loose(BaseModel):
    title: str
    note: str = ""  # a default: not strict-mode material


class MakePlan(Action):
    async def run(self, ctx: ActionContext) -> Plan:
        return await self.ask_structured("Plan it.", Plan)


class WriteIt(Action):
    async def run(self, ctx: ActionContext) -> str:
        return await self.ask_code("Write it.")


class FixIt(Action):
    async def run(self, ctx: ActionContext):
        return await self.ask_parsed("Fix it.", extract_files, wanted="files", output=OutputFormat.files())


def run_action(action: Action, model: Model, events: list[Event] | None = None):
    llm = LLM(model, role="R", on_event=None if events is None else events.append)
    return asyncio.run(action.bind(llm).run(ActionContext()))


# -- scripted models and the action helpers ------------------------------------------------------


def test_actions_pass_their_shape_to_the_model():
    model = TestModel([GOOD, "```python\nx = 1\n```", "## a.py\n```python\na = 1\n```\n"])
    assert run_action(MakePlan(), model) == Plan(title="count words", effort=2)
    assert run_action(WriteIt(), model) == "x = 1\n"
    assert run_action(FixIt(), model) == [("a.py", "a = 1\n")]
    kinds = [(o.kind, o.name, o.language) for o in model.outputs]
    assert kinds == [("json_schema", "Plan", "python"), ("code_block", "answer", "python"), ("files", "answer", "python")]
    assert model.outputs[0].json_schema == Plan.model_json_schema()


def test_parse_events_say_whether_the_first_try_parsed():
    events: list[Event] = []
    run_action(MakePlan(), TestModel(["not json", GOOD]), events)
    run_action(MakePlan(), TestModel([GOOD]), events)
    parses = [e.data for e in events if e.kind == "parse"]
    assert [(p["first_try"], p["attempts"], p["ok"]) for p in parses] == [(False, 2, True), (True, 1, True)]
    assert parses[0]["wanted"] == "Plan" and parses[0]["output"] == "json_schema:Plan"
    calls = [e for e in events if e.kind == "llm_call"]
    assert len(calls) == 3 and all(c.data["output"] == "json_schema:Plan" for c in calls)


def test_a_failed_parse_is_logged_too():
    events: list[Event] = []
    with pytest.raises(Exception, match="no valid Plan"):
        run_action(MakePlan(), TestModel(["x", "y", "z"]), events)
    (parse,) = [e.data for e in events if e.kind == "parse"]
    assert parse["ok"] is False and parse["first_try"] is False and parse["attempts"] == 3 and parse["error"]


def test_a_model_written_before_output_formats_still_works():
    class OldModel(Model):
        name = "old"

        async def complete(self, messages, *, context=None):  # no output parameter
            return Completion(text=GOOD)

    assert run_action(MakePlan(), OldModel()) == Plan(title="count words", effort=2)


def test_function_model_gets_the_format_when_it_asks_for_it():
    seen = []

    def answer(messages, context, output=None):
        seen.append(output.kind)
        return GOOD

    assert run_action(MakePlan(), FunctionModel(answer)).effort == 2
    assert run_action(MakePlan(), FunctionModel(lambda m, c: GOOD)).effort == 2
    assert seen == ["json_schema"]


# -- recording and replay ------------------------------------------------------------------------


def test_recording_notes_the_format_and_replays(tmp_path):
    path = tmp_path / "run.jsonl"
    recorder = RecordingModel(TestModel([GOOD, "plain"]), path)
    llm = LLM(recorder, role="R")
    asyncio.run(llm.ask("plan", action="A", output=OutputFormat.from_model(Plan)))
    asyncio.run(llm.ask("chat", action="B"))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["version"] == 1
    assert lines[1]["output"] == "json_schema:Plan" and "output" not in lines[2]  # unchanged when absent
    replay = ReplayModel(path)
    again = asyncio.run(
        replay.complete([ChatMessage(role="user", content="plan")], context=CallContext(role="R", action="A"),
                        output=OutputFormat.from_model(Plan))
    )
    assert again.text == GOOD and Transcript.load(path).calls[0].output == "json_schema:Plan"


# -- OpenAI-compatible servers: response_format --------------------------------------------------


@pytest.fixture(autouse=True)
def forget_refusals():
    from mgpt.llm.backends import openai_model
    openai_model._FORMAT_REFUSED.clear()
    yield
    openai_model._FORMAT_REFUSED.clear()


def server_model(stub: OpenAIStub):
    from mgpt.llm.backends.openai_model import OpenAIModel

    return OpenAIModel("stub-model", base_url=stub.base_url, api_key="sk-test", timeout=10.0)


def ask_plan_twice(model) -> list[Plan]:
    async def go():
        try:
            llm = LLM(model, role="R")
            action = MakePlan().bind(llm)
            return [await action.run(ActionContext()), await action.run(ActionContext())]
        finally:
            await model.aclose()

    return asyncio.run(go())


def test_server_gets_response_format_and_its_answer_is_used():
    with OpenAIStub([("ok", GOOD), ("ok", GOOD)]) as stub:
        plans = ask_plan_twice(server_model(stub))
    assert plans == [Plan(title="count words", effort=2)] * 2
    sent = [r.json["response_format"] for r in stub.chat_requests]
    assert len(sent) == 2
    assert sent[0]["type"] == "json_schema"
    spec = sent[0]["json_schema"]
    assert spec["name"] == "Plan" and spec["strict"] is True
    assert spec["schema"]["required"] == ["title", "effort"] and spec["schema"]["additionalProperties"] is False


def test_a_schema_with_defaults_is_sent_without_strict():
    from mgpt.llm.backends.openai_model import strict_schema

    schema, strict = strict_schema(Loose.model_json_schema())
    assert strict is False and schema == Loose.model_json_schema()
    schema, strict = strict_schema(Plan.model_json_schema())
    assert strict is True and schema["additionalProperties"] is False


@pytest.mark.parametrize(
    "refusal",
    [
        ("status", 400, {}, "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model."),
        ("status", 400, {}, "Unsupported parameter: json_schema"),
        ("status", 422, {}, "response_format: extra fields not permitted"),
    ],
)
def test_a_refusal_falls_back_and_is_remembered(refusal):
    with OpenAIStub([refusal, ("ok", "oops not json"), ("ok", GOOD), ("ok", GOOD)]) as stub:
        plans = ask_plan_twice(server_model(stub))
        assert plans == [Plan(title="count words", effort=2)] * 2
        bodies = [r.json for r in stub.chat_requests]
        # refused, re-sent without it, re-asked after the bad JSON (parse-and-re-ask), second call
        assert len(bodies) == 4
        assert "response_format" in bodies[0]
        assert all("response_format" not in b for b in bodies[1:])


def test_a_refusal_is_per_server_and_model():
    with OpenAIStub([("status", 400, {}, "response_format is not supported"), ("ok", GOOD), ("ok", GOOD)]) as a, \
            OpenAIStub([("ok", GOOD)]) as b:
        model = server_model(a)
        plan = asyncio.run(_ask_once(model))
        assert plan.effort == 2
        plan = asyncio.run(_ask_once(server_model(a)))  # a fresh client, same server and model
        assert [("response_format" in r.json) for r in a.chat_requests] == [True, False, False]
        asyncio.run(_ask_once(server_model(b)))
        assert "response_format" in b.chat_requests[0].json


def test_other_bad_requests_are_not_taken_for_a_refusal():
    from mgpt.llm import ModelConfigError

    with OpenAIStub([("status", 400, {}, "messages: too long for this model")]) as stub:
        with pytest.raises(ModelConfigError, match="too long"):
            asyncio.run(_ask_once(server_model(stub)))
        assert len(stub.chat_requests) == 1


def test_an_unsupported_other_parameter_is_not_remembered_as_a_refusal():
    from mgpt.llm import ModelConfigError
    from mgpt.llm.backends import openai_model
    said = "Unsupported parameter: 'max_tokens' is not supported with this model."
    with OpenAIStub([("status", 400, {}, said), ("status", 400, {}, said)]) as stub:
        with pytest.raises(ModelConfigError, match="max_tokens"):
            asyncio.run(_ask_once(server_model(stub)))
        assert [("response_format" in r.json) for r in stub.chat_requests] == [True, False]
    assert not openai_model._FORMAT_REFUSED


def test_code_shapes_send_no_response_format():
    with OpenAIStub([("ok", "```python\nx = 1\n```")]) as stub:
        model = server_model(stub)

        async def go():
            try:
                return await WriteIt().bind(LLM(model, role="R")).run(ActionContext())
            finally:
                await model.aclose()

        assert asyncio.run(go()) == "x = 1\n"
        assert "response_format" not in stub.chat_requests[0].json


def test_streaming_sends_response_format_too():
    with OpenAIStub([("ok", GOOD)]) as stub:
        model = server_model(stub)

        async def go():
            try:
                text = ""
                async for chunk in model.stream([ChatMessage(role="user", content="plan")],
                                                output=OutputFormat.from_model(Plan)):
                    text += chunk.delta
                return text
            finally:
                await model.aclose()

        assert Plan.model_validate_json(asyncio.run(go())).effort == 2
        assert stub.chat_requests[0].json["response_format"]["json_schema"]["name"] == "Plan"


async def _ask_once(model) -> Plan:
    try:
        return await MakePlan().bind(LLM(model, role="R")).run(ActionContext())
    finally:
        await model.aclose()

"""Structured output: what real models return, repaired or re-asked, never guessed."""

import asyncio

import pytest
from pydantic import BaseModel, Field

from mgpt.actions import Action, ActionError, ParseError, describe_schema, extract_code, extract_files, extract_json
from mgpt.llm import LLM
from mgpt.llm.backends.testing import TestModel


@pytest.mark.parametrize(
    "reply, expected",
    [
        ('{"a": 1}', {"a": 1}),
        ('Sure! Here it is:\n```json\n{"a": 1}\n```\nLet me know.', {"a": 1}),
        ("```\n{\"a\": 1}\n```", {"a": 1}),
        ('The answer is {"a": {"b": [1, 2]}} as requested.', {"a": {"b": [1, 2]}}),
        ('{"a": 1, "b": [1, 2,],}', {"a": 1, "b": [1, 2]}),
        ("{'a': True, 'b': None}", {"a": True, "b": None}),
        ('{"a": true, // a comment\n "b": "x // not a comment"}', {"a": True, "b": "x // not a comment"}),
        ('{"s": "braces } { inside"}', {"s": "braces } { inside"}),
        ('{"a": true, // don\'t drop "b"\n "b": "#1"}', {"a": True, "b": "#1"}),
        ('```json\n{"a": 1}', {"a": 1}),  # cut-off fence
        ("\u201c\u201d", None),
    ],
)
def test_extract_json(reply, expected):
    if expected is None:
        with pytest.raises(ParseError):
            extract_json(reply)
    else:
        assert extract_json(reply) == expected


def test_extract_json_prefers_fenced_json_over_prose_braces():
    reply = 'I used {braces} in prose.\n```json\n{"real": true}\n```'
    assert extract_json(reply) == {"real": True}


def test_extract_code_and_files():
    assert extract_code("Here:\n```python\nx = 1\n```\nDone") == "x = 1\n"
    assert extract_code("```bash\nls\n```\n```python\ny = 2\n```") == "y = 2\n"
    assert extract_code("z = 3") == "z = 3\n"
    with pytest.raises(ParseError):
        extract_code("   ")
    files = extract_files("Fixed it.\n\n## pkg/a.py\n```python\na = 1\n```\n`pkg/b.py`:\n```python\nb = 2\n```")
    assert files == [("pkg/a.py", "a = 1\n"), ("pkg/b.py", "b = 2\n")]
    with pytest.raises(ParseError, match="path line"):
        extract_files("```python\nno path\n```")


class Plan(BaseModel):
    title: str = Field(description="a short title")
    steps: list[str] = Field(description="what to do")
    effort: int


class MakePlan(Action):
    async def run(self, ctx):
        return await self.ask_structured("Plan a picnic.", Plan)


def _run(model):
    action = MakePlan().bind(LLM(model, role="Planner"))
    return asyncio.run(action.run(None))


def test_schema_described_without_example_values():
    text = describe_schema(Plan)
    assert "- title (string): a short title" in text
    assert "- steps (list of string): what to do" in text
    assert "- effort (integer)" in text


def test_structured_accepts_messy_but_valid_json():
    model = TestModel(["Here you go:\n```json\n{'title': 'Picnic', 'steps': ['buy food',], 'effort': 2,}\n```"])
    assert _run(model) == Plan(title="Picnic", steps=["buy food"], effort=2)


def test_structured_reasks_with_the_validation_error():
    model = TestModel(['{"title": "Picnic", "steps": "not a list"}', '{"title": "Picnic", "steps": ["go"], "effort": 1}'])
    assert _run(model).steps == ["go"]
    retry = model.requests[1][1]
    assert [m.role for m in retry] == ["user", "assistant", "user"]
    assert "steps" in retry[-1].content and "effort" in retry[-1].content
    assert [c.turn for c, _ in model.requests] == [1, 2]


def test_structured_gives_up_with_the_action_name_and_reply():
    model = TestModel(["no json here", "still nothing", "I refuse"])
    with pytest.raises(ActionError) as info:
        _run(model)
    message = str(info.value)
    assert "MakePlan" in message and "Plan" in message and "3 attempts" in message
    assert "I refuse" in message
    assert len(model.requests) == 3  # bounded


def test_extract_files_recognises_natural_headings():
    reply = (
        "The bug is an off-by-one.\n\nHere is the corrected `pkg/mod.py`:\n```python\na = 1\n```\n\n"
        "### Fixed pkg/other.py\n```python\nb = 2\n```\n"
        "Version 2.0 of the thing.\n```python\nd = 4\n```\n"
    )
    assert extract_files(reply) == [("pkg/mod.py", "a = 1\n"), ("pkg/other.py", "b = 2\n")]

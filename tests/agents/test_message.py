import json

import pytest
from pydantic import BaseModel

from mgpt.actions.documents import PRD, Requirement
from mgpt.actions.planning import WritePRD
from mgpt.agents import EVERYONE, Message, UserRequirement


def _prd() -> PRD:
    return PRD(
        project_name="demo",
        summary="s",
        goals=["g"],
        user_stories=["u"],
        requirements=[Requirement(id="R1", text="t", priority="P0")],
        acceptance_criteria=["a"],
    )


def test_round_trips_through_json_exactly():
    m = Message(content="hello", payload=_prd(), sent_from="pm", send_to={"Architect"}, cause_by=WritePRD)
    back = Message.model_validate_json(m.model_dump_json())
    assert back == m
    assert type(back.payload) is PRD
    assert back.cause_by is WritePRD
    assert back.created_at == m.created_at


def test_wire_format_names_types():
    m = Message(content="x", payload=_prd(), cause_by=WritePRD, send_to="Bob")
    data = json.loads(m.model_dump_json())
    assert data["cause_by"] == "mgpt.actions.planning:WritePRD"
    assert data["payload"]["type"] == "mgpt.actions.documents:PRD"
    assert data["send_to"] == ["Bob"]


def test_defaults_and_routing_helpers():
    m = Message(content="idea")
    assert m.cause_by is UserRequirement
    assert m.payload is None
    assert not m.is_for("Bob")
    assert Message(content="x", send_to=EVERYONE).is_for("Bob")
    assert Message(content="a" * 200).brief(10).endswith("…")


def test_unknown_type_on_the_wire_is_a_clear_error():
    raw = Message(content="x").model_dump(mode="json")
    raw["cause_by"] = "not_imported_module:Thing"
    with pytest.raises(Exception, match="import 'not_imported_module'"):
        Message.model_validate(raw)


def test_payload_must_be_a_model():
    with pytest.raises(Exception, match="pydantic model"):
        Message(content="x", payload={"a": 1})


class _Local(BaseModel):
    n: int


def test_any_pydantic_payload_round_trips():
    m = Message(content="x", payload=_Local(n=3))
    assert Message.model_validate_json(m.model_dump_json()).payload == _Local(n=3)

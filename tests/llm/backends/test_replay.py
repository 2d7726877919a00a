"""Recording and replaying transcripts: keyed by role, action and turn, not prompt text."""

import asyncio
import json
import warnings

import pytest

from mgpt.llm import CallContext, ChatMessage, TranscriptError
from mgpt.llm.backends.replay import RecordingModel, ReplayModel, Transcript, TranscriptDriftWarning, TranscriptHeader
from mgpt.llm.backends.testing import TestModel


def _ask(model, text, role="R", action="A", turn=1):
    ctx = CallContext(role=role, action=action, turn=turn)
    return asyncio.run(model.complete([ChatMessage(role="user", content=text)], context=ctx))


def _record(path):
    inner = TestModel({("R", "A"): ["first", "second"], ("S", "B"): ["other"]})
    rec = RecordingModel(inner, path, header=TranscriptHeader(idea="an idea", model="test"))
    _ask(rec, "q1", turn=1)
    _ask(rec, "q2", turn=2)
    _ask(rec, "q3", role="S", action="B")
    return path


def test_record_writes_documented_format(tmp_path):
    path = _record(tmp_path / "t.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["idea"] == "an idea" and lines[0]["version"] == 1
    call = lines[1]
    assert set(call) == {"type", "role", "action", "turn", "request", "response"}
    assert call["request"] == [{"role": "user", "content": "q1"}]
    assert call["response"]["text"] == "first"
    assert set(call["response"]) >= {"text", "usage", "finish_reason", "model"}


def test_replay_matches_on_role_action_turn_in_any_order(tmp_path):
    replay = ReplayModel(_record(tmp_path / "t.jsonl"))
    assert _ask(replay, "q3", role="S", action="B").text == "other"
    assert _ask(replay, "q2", turn=2).text == "second"
    assert _ask(replay, "q1", turn=1).text == "first"
    assert replay.unused == []


def test_changed_prompt_warns_but_replays(tmp_path):
    replay = ReplayModel(_record(tmp_path / "t.jsonl"))
    with pytest.warns(TranscriptDriftWarning, match="differs"):
        assert _ask(replay, "a reworded prompt", turn=1).text == "first"
    assert replay.drifted == [("R", "A", 1)]
    strict = ReplayModel(tmp_path / "t.jsonl", strict_prompts=True)
    with pytest.raises(TranscriptError):
        _ask(strict, "a reworded prompt", turn=1)


def test_exhausted_or_mismatched_transcript_fails_clearly(tmp_path):
    replay = ReplayModel(_record(tmp_path / "t.jsonl"))
    with pytest.raises(TranscriptError, match=r"turn 3: it holds turns \[1, 2\]"):
        _ask(replay, "q", turn=3)
    with pytest.raises(TranscriptError, match="no calls for that role and action"):
        _ask(replay, "q", role="Nobody", action="X")


def test_bad_transcript_files(tmp_path):
    with pytest.raises(TranscriptError, match="does not exist"):
        ReplayModel(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "header", "version": 1}\nnot json\n')
    with pytest.raises(TranscriptError, match="bad.jsonl:2"):
        ReplayModel(bad)
    future = tmp_path / "future.jsonl"
    future.write_text('{"type": "header", "version": 99}\n')
    with pytest.raises(TranscriptError, match="upgrade mgpt"):
        Transcript.load(future)


def test_re_record_through_replay_refreshes_prompts(tmp_path):
    old = _record(tmp_path / "old.jsonl")
    new = tmp_path / "new.jsonl"
    rec = RecordingModel(ReplayModel(old), new)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _ask(rec, "new wording", turn=1)
    calls = Transcript.load(new).calls
    assert calls[0].request[0].content == "new wording"
    assert calls[0].response.text == "first"


def test_transcript_never_holds_the_api_key(tmp_path):
    from openai_stub import OpenAIStub

    from mgpt.llm.backends.openai_model import OpenAIModel

    with OpenAIStub(responses=[("ok", "hello")]) as stub:
        model = OpenAIModel("stub-model", base_url=stub.base_url, api_key="sk-very-secret-key")
        rec = RecordingModel(model, tmp_path / "t.jsonl")
        assert _ask(rec, "hi").text == "hello"
        assert stub.chat_requests[0].headers["authorization"] == "Bearer sk-very-secret-key"
    assert "sk-very-secret" not in (tmp_path / "t.jsonl").read_text()

"""mgpt serve's request checks, without a model or a server: every bad field is refused
with OpenAI's status, param and code, and a good body becomes the engine's SamplingParams."""

from __future__ import annotations

import pytest

from mgpt.llm.local.sampling import SamplingParams
from mgpt.llm.serve.app import RequestError, ServeLimits, answer_length, parse_chat_request

NAME = "tiny"
LIMITS = ServeLimits(max_messages=3, max_tokens=100, default_max_tokens=50, max_stop=2)


def body(**fields):
    return {"model": NAME, "messages": [{"role": "user", "content": "hi"}], **fields}


def refused(payload, status=400, param=None, code=None) -> RequestError:
    with pytest.raises(RequestError) as info:
        parse_chat_request(payload, NAME, LIMITS)
    err = info.value
    assert err.status == status and (param is None or err.param == param) and (code is None or err.code == code)
    assert err.body()["error"]["message"] == err.message
    return err


def test_a_plain_body_gets_the_defaults():
    parsed = parse_chat_request(body(), NAME, LIMITS)
    assert parsed.messages == [{"role": "user", "content": "hi"}]
    assert (parsed.stream, parsed.include_usage, parsed.max_tokens, parsed.temperature, parsed.top_p) == (
        False, False, None, 0.0, 1.0,
    )
    assert parsed.stop == [] and parsed.seed is None and parsed.response_format is None and not parsed.ignore_eos


def test_fields_become_the_engine_sampling_params():
    parsed = parse_chat_request(
        body(
            messages=[{"role": "developer", "content": [{"type": "text", "text": "be "}, {"type": "text", "text": "brief"}]},
                      {"role": "user", "content": None}],
            max_completion_tokens=20, temperature=0.7, top_p=0, stop="END", seed=3, stream=True,
            stream_options={"include_usage": True}, ignore_eos=True, response_format={"type": "text"},
        ),
        NAME, LIMITS,
    )
    assert parsed.messages == [{"role": "system", "content": "be brief"}, {"role": "user", "content": ""}]
    assert parsed.stream and parsed.include_usage and parsed.response_format is None
    params = parsed.sampling_params(20, None)
    assert params == SamplingParams(max_tokens=20, temperature=0.7, top_p=1e-9, stop=["END"], seed=3, ignore_eos=True)
    params.check()  # top_p 0 means "the likeliest token": kept just above 0, which the engine takes


def test_the_model_is_checked_first():
    refused([], param=None)
    refused(body(model=""), param="model")
    refused(body(model="other"), status=404, param="model", code="model_not_found")


@pytest.mark.parametrize(
    "fields, param, code",
    [
        (dict(messages=[]), "messages", None),
        (dict(messages=[{"role": "user", "content": "x"}] * 4), "messages", "too_many_messages"),
        (dict(messages=["hi"]), "messages.0", None),
        (dict(messages=[{"role": "wizard", "content": "x"}]), "messages.0.role", None),
        (dict(messages=[{"role": "user", "content": [{"type": "image_url"}]}]), "messages.0.content", None),
        (dict(messages=[{"role": "user", "content": 3}]), "messages.0.content", None),
        (dict(tools=[{"type": "function"}]), "tools.0", None),
        (dict(tools="get_weather"), "tools", None),
        (dict(tools=[{"type": "function", "function": {"name": "f"}}], tool_choice="sometimes"), "tool_choice", None),
        (dict(n=2), "n", "invalid_value"),
        (dict(max_tokens=0), "max_tokens", "invalid_value"),
        (dict(max_tokens=101), "max_tokens", "invalid_value"),
        (dict(max_tokens=1.5), "max_tokens", None),
        (dict(temperature=2.5), "temperature", "invalid_value"),
        (dict(temperature=True), "temperature", None),
        (dict(top_p=1.1), "top_p", "invalid_value"),
        (dict(seed="1"), "seed", None),
        (dict(stop=[1]), "stop", None),
        (dict(stop=["a", "b", "c"]), "stop", None),
        (dict(stream="yes"), "stream", None),
        (dict(stream_options="usage"), "stream_options", None),
        (dict(response_format={"type": "yaml"}), "response_format", None),
        (dict(response_format={"type": "json_schema"}), "response_format", None),
        (dict(ignore_eos=1), "ignore_eos", None),
    ],
)
def test_each_bad_field_is_named(fields, param, code):
    refused(body(**fields), param=param, code=code)


def test_answer_length_defaults_and_context_errors():
    assert answer_length(10, None, None, LIMITS) == 50
    assert answer_length(10, None, 40, LIMITS) == 30  # the default, cut to the context left
    assert answer_length(10, 30, 40, LIMITS) == 30
    with pytest.raises(RequestError) as info:
        answer_length(40, None, 40, LIMITS)
    assert info.value.param == "messages" and info.value.code == "context_length_exceeded"
    with pytest.raises(RequestError) as info:
        answer_length(10, 31, 40, LIMITS)
    assert info.value.param == "max_tokens" and info.value.code == "context_length_exceeded"

"""Concurrent calls to one local model share one batched decoder (the serve engine), each
with its own grammar, and answer what they would one at a time."""

import asyncio

import pytest

pytest.importorskip("torch", reason="the local backend needs the [train] extra")

from mgpt.agents.scheduler import Launch, run_all
from mgpt.llm import ChatMessage, ModelConfigError
from mgpt.llm.backends.base import OutputFormat
from mgpt.llm.backends.client import LLM
from mgpt.llm.local.model import LocalModel
from mgpt.llm.local.testing import make_tiny_checkpoint
from mgpt.llm.parsing import extract_code, extract_json

PROMPTS = ["hello there", "write a function", "the quick brown fox", "a model workshop"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), chat_template=True, n_positions=512)


def _ask_all(model, outputs=None):
    llm = LLM(model, role="R")
    turns = llm.reserve_turns("Act", len(PROMPTS))
    outputs = outputs or [None] * len(PROMPTS)

    async def one(job: Launch[int]):
        return await llm.ask(PROMPTS[job.key], action="Act", output=outputs[job.key], turn=turns[job.key])

    async def main():
        try:
            answers = await run_all(range(len(PROMPTS)), one, limit=len(PROMPTS))
            return list(answers.values()), model.engine.stats if model.engine is not None else None
        finally:
            await model.aclose()

    return asyncio.run(main())


def test_concurrent_calls_share_one_batched_decoder_and_answer_as_alone(checkpoint):
    batched = LocalModel(checkpoint, max_new_tokens=12, parallel=4)
    answers, stats = _ask_all(batched)
    assert stats.requests == 4 and stats.max_batch_seen >= 2
    alone, no_engine = _ask_all(LocalModel(checkpoint, max_new_tokens=12, parallel=1))
    assert no_engine is None  # one at a time: generate_text under the lock, as before
    assert [a.text for a in answers] == [a.text for a in alone]
    assert all(a.usage.completion_tokens > 0 for a in answers)


def test_the_decoder_batches_while_calls_are_in_flight(checkpoint):
    model = LocalModel(checkpoint, max_new_tokens=24, parallel=4)

    async def main():
        messages = [[ChatMessage(role="user", content=p)] for p in PROMPTS]
        answers = await asyncio.gather(*(model.complete(m) for m in messages))
        stats = model.engine.stats
        await model.aclose()
        return answers, stats

    answers, stats = asyncio.run(main())
    assert stats.requests == 4 and stats.max_batch_seen >= 2
    assert len({a.text for a in answers}) >= 1 and all(a.finish_reason in ("stop", "length") for a in answers)


def test_each_call_keeps_its_own_grammar(checkpoint):
    pytest.importorskip("xgrammar", reason="constrained decoding needs the [local] extra")
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}}, "required": ["name"],
              "additionalProperties": False}
    outputs = [OutputFormat.code_block(), OutputFormat(kind="json_schema", name="N", json_schema=schema),
               OutputFormat.code_block(), None]
    model = LocalModel(checkpoint, max_new_tokens=60, parallel=4)
    answers, _ = _ask_all(model, outputs)
    assert extract_code(answers[0].text) is not None and answers[0].text.lstrip().startswith("```python")
    assert set(extract_json(answers[1].text)) == {"name"}
    assert answers[2].text.lstrip().startswith("```python")


def test_parallel_below_one_is_refused(checkpoint):
    with pytest.raises(ModelConfigError, match="parallel must be at least 1"):
        LocalModel(checkpoint, parallel=0)

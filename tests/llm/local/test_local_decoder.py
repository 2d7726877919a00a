"""The local backend on mgpt's lean decoder: the same answers as HF generate, the same
grammar, a clear error for an unknown decoder."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

torch = pytest.importorskip("torch", reason="local models need the [train] extra")

from mgpt.llm import ChatMessage, OutputFormat  # noqa: E402
from mgpt.llm.errors import ModelConfigError  # noqa: E402
from mgpt.llm.local.testing import make_tiny_checkpoint  # noqa: E402
from mgpt.llm.local.model import LocalModel  # noqa: E402

MESSAGES = [ChatMessage(role="user", content="Plan the word counter.")]


class Plan(BaseModel):
    title: str
    steps: list[str]
    risky: bool


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    """A tiny Llama checkpoint with the tiny byte-level tokenizer and its chat template."""
    from transformers import AutoConfig, LlamaConfig, LlamaForCausalLM

    folder = make_tiny_checkpoint(tmp_path_factory.mktemp("llama"), chat_template=True, n_positions=1024)
    vocab = AutoConfig.from_pretrained(folder).vocab_size
    eos = AutoConfig.from_pretrained(folder).eos_token_id
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=eos, eos_token_id=eos, tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # peaked logits: greedy choices are not near-ties
        model.lm_head.weight.mul_(8.0)
    model.save_pretrained(folder)
    return folder


def _answer(model: LocalModel, output=None) -> str:
    return asyncio.run(model.complete(MESSAGES, output=output)).text


def test_fast_decoder_answers_as_hf_generate(llama_dir):
    hf = LocalModel(llama_dir, max_new_tokens=24, decoder="hf", threads=1)
    fast = LocalModel(llama_dir, max_new_tokens=24, decoder="fast", threads=1)
    assert _answer(fast) == _answer(hf)
    assert fast._load().fast is not None and hf._load().fast is None


@pytest.mark.parametrize("decoder", ["fast", "fast-int8"])
def test_fast_decoder_keeps_the_grammar(llama_dir, decoder):
    model = LocalModel(llama_dir, max_new_tokens=300, decoder=decoder, threads=1, temperature=1.0, seed=3)
    Plan.model_validate_json(_answer(model, OutputFormat.from_model(Plan)))


def test_fast_decoder_streams_what_it_returns(llama_dir):
    model = LocalModel(llama_dir, max_new_tokens=24, decoder="fast", threads=1)

    async def collect():
        pieces, final = [], None
        async for chunk in model.stream(MESSAGES):
            pieces.append(chunk.delta)
            final = chunk.completion or final
        return "".join(pieces), final

    text, final = asyncio.run(collect())
    assert text == final.text and final.usage.completion_tokens > 0


def test_unknown_decoder_is_a_clear_error(llama_dir, monkeypatch):
    with pytest.raises(ModelConfigError, match="unknown decoder 'turbo'"):
        LocalModel(llama_dir, decoder="turbo")
    monkeypatch.setenv("MGPT_DECODER", "nope")
    with pytest.raises(ModelConfigError, match="MGPT_DECODER"):
        LocalModel(llama_dir)


def test_an_architecture_the_fast_decoder_lacks_keeps_hf_generate(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "gpt2", chat_template=True, n_positions=256)  # GPT-2
    model = LocalModel(folder, max_new_tokens=8, decoder="fast-int4", threads=1)
    assert _answer(model) == _answer(LocalModel(folder, max_new_tokens=8, decoder="hf", threads=1))
    assert model._load().fast is None

"""Batched sampling (mgpt.llm.eval.batch_sampling): one call serves greedy and sampled rows of
different lengths, each cut at its own limit; the batched HF path and the one-by-one lean
decoder give the same greedy answer; rft's sampler is the same code."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="sampling needs the [train] extra")

from mgpt.llm.eval.batch_sampling import BatchSampler, SampleRequest, SamplerOptions  # noqa: E402
from mgpt.llm.eval.tasks import load_tasks  # noqa: E402

TASKS = load_tasks("all")


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    """A random 1-layer Llama (the lean decoder's family) with a char tokenizer: a decoded
    answer encodes back to as many tokens, so lengths can be checked on the text."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from mgpt.llm.train.tokenizer import train_tokenizer

    folder = tmp_path_factory.mktemp("llama")
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(t.prompt for t in TASKS[:3]) + "hi")
    tok = train_tokenizer([corpus], folder, kind="char")
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def test_batched_sampler_greedy_rows_and_per_row_lengths(llama_dir):
    """A greedy row equals a greedy-only call's answer, sampled rows are sampled, no row is
    longer than its own max_new_tokens, and the two decoders agree on greedy."""
    s = BatchSampler(llama_dir, SamplerOptions(kind="hf", device="cpu", quant=None, threads=1, gen_batch=4))
    msgs = [[{"role": "user", "content": t.prompt[:200]}] for t in TASKS[:3]]
    # the first two share a batch (same length): a greedy row among sampled ones
    mixed = s.sample([SampleRequest(msgs[0], 1, 0.0, 20), SampleRequest(msgs[1], 3, 1.0, 20),
                      SampleRequest(msgs[2], 2, 0.5, 30), SampleRequest(msgs[1], 2, 0.0, 7)], seed=1)
    alone = s.sample([SampleRequest(msgs[0], 1, 0.0, 20), SampleRequest(msgs[1], 1, 0.0, 7)], seed=2)
    assert [len(a) for a in mixed] == [1, 3, 2, 2]
    assert mixed[0] == alone[0] and mixed[3] == alone[1] * 2
    assert len(set(mixed[1])) > 1  # sampled rows are sampled
    ids = lambda text: s.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert all(len(ids(a)) <= 20 for a in mixed[1]) and all(len(ids(a)) <= 30 for a in mixed[2])
    assert all(len(ids(a)) <= 7 for a in mixed[3])
    s.close()
    fast = BatchSampler(llama_dir, SamplerOptions(kind="fast", device="cpu", quant=None, threads=1))
    assert fast.sample([SampleRequest(msgs[0], 1, 0.0, 20)], seed=3)[0] == alone[0]
    again = fast.sample([SampleRequest(msgs[1], 2, 1.0, 12)], seed=4)
    assert again == fast.sample([SampleRequest(msgs[1], 2, 1.0, 12)], seed=4)  # a seed repeats a run


def test_a_deadline_stops_the_sampler_between_batches(llama_dir):
    class OutOfTime(Exception):
        pass

    def before(what):
        raise OutOfTime(what)

    s = BatchSampler(llama_dir, SamplerOptions(kind="hf", threads=1), before=before)
    with pytest.raises(OutOfTime, match="the next generate batch"):
        s.sample([SampleRequest([{"role": "user", "content": "hi"}], 1, 0.0, 4)], seed=0)
    with pytest.raises(ValueError, match="sampler kind"):
        BatchSampler(llama_dir, SamplerOptions(kind="vllm"))

"""The batching engine behind ``mgpt serve``: batched answers equal unbatched ones.

Tiny random models built from a config (a Llama with rotary positions and grouped KV
heads, and a GPT-2 with learned positions); the byte-level tokenizer of
:func:`make_tiny_checkpoint` decodes their tokens. Most tests run twice: on the HF
forward path and on the lean decoder's batched path (``path="fast"``, fp32 so answers
are exact; the lean decoder takes Llama-family models only, so GPT-2 runs on HF only).
"""

from __future__ import annotations

import threading
import time

import pytest

torch = pytest.importorskip("torch", reason="the engine needs the [train] extra")

from mgpt.llm.serve.engine import Engine, SamplingParams, wait_idle
from mgpt.llm.local.fastllama import FastLlama
from mgpt.llm.local.testing import make_tiny_checkpoint

# Prompts of different lengths (1 to 23 tokens) so rows are padded differently.
PROMPTS = [
    [5, 17, 42, 99, 3, 8, 120, 77],
    [11, 12],
    [200, 31, 64, 9, 250],
    [7] * 23,
    [5, 17, 42, 99, 140],
    [60],
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(make_tiny_checkpoint(tmp_path_factory.mktemp("tok")))


def _llama(vocab: int, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=None, eos_token_id=None, pad_token_id=None,
    )
    return LlamaForCausalLM(config).eval()


def _gpt2(vocab: int, seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=128, vocab_size=vocab,
                        bos_token_id=None, eos_token_id=None)
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def model(request, tokenizer):
    return (_llama if request.param == "llama" else _gpt2)(len(tokenizer))


@pytest.fixture(params=["hf", "fast"])
def path(request):
    """Which forward path the engine runs: the HF model or the lean decoder."""
    return request.param


def _engine(model, tokenizer, path="hf", **kw):
    kw.setdefault("max_batch", 8)
    if path == "fast":
        if model.config.model_type != "llama":
            pytest.skip("the lean decoder runs Llama-family models only")
        kw["fast"] = FastLlama.from_model(model)
    kw.setdefault("context", getattr(model.config, "max_position_embeddings", None) or model.config.n_positions)
    return Engine(model, tokenizer, **kw)


def _hf_greedy(model, prompt, n):
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             max_new_tokens=n, do_sample=False, pad_token_id=0)
    return out[0, len(prompt):].tolist()


def test_batched_greedy_equals_unbatched_and_transformers(model, tokenizer, path):
    params = SamplingParams(max_tokens=12)
    engine = _engine(model, tokenizer, path)
    try:
        batched = engine.generate(PROMPTS, params)
        assert engine.stats.max_batch_seen == len(PROMPTS)  # they really ran together
    finally:
        engine.stop()
    for prompt, b in zip(PROMPTS, batched):
        alone = _engine(model, tokenizer, path, prefix_cache_tokens=0)
        try:
            (single,) = alone.generate([prompt], params)
        finally:
            alone.stop()
        assert b.token_ids == single.token_ids, prompt
        assert b.token_ids == _hf_greedy(model, prompt, 12), prompt
        assert b.finish_reason == "length" and b.completion_tokens == 12 and b.prompt_tokens == len(prompt)
        assert b.text == tokenizer.decode(b.token_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def test_requests_join_and_leave_a_running_batch(model, tokenizer, path):
    """Continuous batching: requests of different lengths arrive while others decode;
    each answer still equals its answer alone."""
    lengths = [20, 5, 14, 9, 3, 16]
    engine = _engine(model, tokenizer, path, prefix_cache_tokens=0).start()
    results: dict[int, list[int]] = {}
    done = threading.Event()

    def callback(i, request_box):
        def on_event(event):
            if event.finished:
                results[i] = list(request_box[0].generated)
                if len(results) == len(PROMPTS):
                    done.set()
        return on_event

    try:
        for i, (prompt, n) in enumerate(zip(PROMPTS, lengths)):
            box = []
            box.append(engine.submit(prompt, SamplingParams(max_tokens=n), callback(i, box)))
            # Let the batch run a few steps before the next one arrives.
            steps = engine.stats.decode_steps
            deadline = time.monotonic() + 5
            while engine.stats.decode_steps < steps + 2 and time.monotonic() < deadline and i < len(PROMPTS) - 1:
                time.sleep(0.001)
        assert done.wait(30)
    finally:
        engine.stop()
    assert engine.stats.max_batch_seen > 1
    for i, (prompt, n) in enumerate(zip(PROMPTS, lengths)):
        assert results[i] == _hf_greedy(model, prompt, n), i


def test_prefix_cache_reuses_a_shared_start(tokenizer, path):
    model = _llama(len(tokenizer))
    system = list(range(30, 70))  # a 40-token "system prompt"
    prompts = [system + [5, 6, 7], system + [9, 10], system + [11, 12, 13, 14]]
    params = SamplingParams(max_tokens=8)
    engine = _engine(model, tokenizer, path)
    try:
        first = engine.generate(prompts[:1], params)[0]
        rest = engine.generate(prompts[1:], params)
    finally:
        engine.stop()
    assert first.cached_tokens == 0
    assert [r.cached_tokens for r in rest] == [40, 40]
    assert engine.stats.prefix_tokens_reused >= 80
    for prompt, r in zip(prompts, [first] + rest):
        assert r.token_ids == _hf_greedy(model, prompt, 8)
    # One batched prefill mixing rows with and without a cached prefix, of other lengths.
    engine = _engine(model, tokenizer, path)
    mixed = [system + [21, 22], [99, 98, 97], system[:25] + [1], PROMPTS[3]]
    try:
        engine.generate(prompts[:1], params)
        out = engine.generate(mixed, params)
    finally:
        engine.stop()
    assert [r.cached_tokens for r in out] == [40, 0, 25, 0]
    for prompt, r in zip(mixed, out):
        assert r.token_ids == _hf_greedy(model, prompt, 8)
    # The same prompt again reuses all but the last token (which must run for the logits).
    engine = _engine(model, tokenizer, path)
    try:
        engine.generate(prompts[:1], params)
        again = engine.generate(prompts[:1], params)[0]
    finally:
        engine.stop()
    assert again.cached_tokens == len(prompts[0]) - 1 and again.token_ids == first.token_ids


def test_prefix_cache_is_bounded(tokenizer, path):
    model = _llama(len(tokenizer))
    engine = _engine(model, tokenizer, path, prefix_cache_tokens=20)
    try:
        engine.generate([list(range(10, 25)), list(range(40, 55))], SamplingParams(max_tokens=2))
        assert engine._prefix._tokens <= 20
    finally:
        engine.stop()


def test_seeded_sampling_repeats_batched_or_not(tokenizer, path):
    model = _llama(len(tokenizer))
    params = [SamplingParams(max_tokens=10, temperature=0.9, top_p=0.9, top_k=50, seed=s) for s in (1, 2, 3)]
    engine = _engine(model, tokenizer, path)
    try:
        batched = engine.generate(PROMPTS[:3], params)
        alone = [engine.generate([p], [sp])[0] for p, sp in zip(PROMPTS[:3], params)]
    finally:
        engine.stop()
    assert [b.token_ids for b in batched] == [a.token_ids for a in alone]
    assert len({tuple(b.token_ids) for b in batched}) > 1


def test_stop_strings_cut_the_answer(tokenizer, path):
    model = _llama(len(tokenizer))
    engine = _engine(model, tokenizer, path)
    try:
        (free,) = engine.generate([PROMPTS[0]], SamplingParams(max_tokens=16))
        text = free.text
        stop = text[len(text) // 2 : len(text) // 2 + 2]
        assert stop.strip()
        pieces = []
        request = engine.submit(PROMPTS[0], SamplingParams(max_tokens=16, stop=[stop]), lambda e: pieces.append(e))
        assert wait_idle(engine)
    finally:
        engine.stop()
    streamed = "".join(e.delta for e in pieces)
    assert streamed == text[: text.find(stop)]
    assert pieces[-1].finished and pieces[-1].finish_reason == "stop"
    assert request.done_reason == "stop"


def test_constraint_hook_limits_the_tokens(tokenizer, path):
    model = _llama(len(tokenizer))
    allowed = torch.zeros(len(tokenizer), dtype=torch.bool)
    allowed[[40, 41, 42]] = True
    seen = []

    def constraint(generated):
        seen.append(list(generated))
        return allowed if len(generated) % 2 == 0 else None  # None: no restriction this step

    engine = _engine(model, tokenizer, path)
    try:
        (r,) = engine.generate([PROMPTS[1]], SamplingParams(max_tokens=6, constraint=constraint))
    finally:
        engine.stop()
    assert all(t in (40, 41, 42) for t in r.token_ids[::2])
    assert seen[:3] == [[], r.token_ids[:1], r.token_ids[:2]]


def test_eos_ends_an_answer_unless_ignored(tokenizer, path):
    model = _llama(len(tokenizer))
    (free,) = _engine(model, tokenizer, path).generate([PROMPTS[2]], SamplingParams(max_tokens=10))
    eos = free.token_ids[3]
    engine = _engine(model, tokenizer, path, eos_ids=[eos])
    try:
        (stopped,) = engine.generate([PROMPTS[2]], SamplingParams(max_tokens=10))
        (ignored,) = engine.generate([PROMPTS[2]], SamplingParams(max_tokens=10, ignore_eos=True))
    finally:
        engine.stop()
    assert stopped.finish_reason == "stop" and stopped.token_ids == free.token_ids[:3]
    assert ignored.finish_reason == "length" and ignored.token_ids == free.token_ids


def test_context_length_ends_with_length(tokenizer, path):
    model = _llama(len(tokenizer))
    engine = _engine(model, tokenizer, path, context=12)
    try:
        (r,) = engine.generate([list(range(5, 15))], SamplingParams(max_tokens=50))
        with pytest.raises(ValueError, match="at most 12"):
            engine.submit(list(range(20)), SamplingParams(), lambda e: None)
    finally:
        engine.stop()
    assert r.finish_reason == "length" and r.prompt_tokens + r.completion_tokens <= 12


def test_cancel_and_stop_end_requests(tokenizer, path):
    model = _llama(len(tokenizer))
    engine = _engine(model, tokenizer, path).start()
    events = []
    first = engine.submit(PROMPTS[0], SamplingParams(max_tokens=10_000, ignore_eos=True), events.append)
    second = engine.submit(PROMPTS[1], SamplingParams(max_tokens=10_000, ignore_eos=True), events.append)
    deadline = time.monotonic() + 10
    while engine.stats.decode_steps < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    first.cancel()
    deadline = time.monotonic() + 10
    while first.done_reason is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert first.done_reason == "cancelled" and second.done_reason is None
    engine.stop(cancel=True, timeout=10)
    assert second.done_reason == "cancelled"
    assert not engine._thread.is_alive()
    with pytest.raises(RuntimeError, match="shutting down"):
        engine.submit(PROMPTS[0], SamplingParams(), events.append)
    assert [e.finish_reason for e in events if e.finished] == ["cancelled", "cancelled"]


def test_bad_sampling_params_are_refused(tokenizer, path):
    engine = _engine(_llama(len(tokenizer)), tokenizer, path)
    for bad in (SamplingParams(max_tokens=0), SamplingParams(temperature=-1), SamplingParams(top_p=0)):
        with pytest.raises(ValueError):
            engine.submit([1, 2], bad, lambda e: None)
    with pytest.raises(ValueError, match="no tokens"):
        engine.submit([], SamplingParams(), lambda e: None)


def test_a_masking_constraint_sees_the_budget_and_a_failing_one_ends_only_its_request(tokenizer, path):
    model = _llama(len(tokenizer))
    budgets = []

    class Closing:
        """Forces token 50 once three tokens are left, as a grammar closing an answer would."""

        def __call__(self, generated):  # pragma: no cover - the engine prefers mask_logits
            raise AssertionError("mask_logits should be used")

        def mask_logits(self, row, generated, remaining):
            budgets.append(remaining)
            if remaining <= 3:
                row.fill_(float("-inf"))
                row[50] = 0.0

    def broken(generated):
        if len(generated) == 2:
            raise RuntimeError("grammar exploded")
        return None

    engine = _engine(model, tokenizer, path)
    try:
        closing, failed, plain = engine.generate(
            [PROMPTS[0], PROMPTS[1], PROMPTS[2]],
            [SamplingParams(max_tokens=8, constraint=Closing()), SamplingParams(max_tokens=8, constraint=broken),
             SamplingParams(max_tokens=8)],
        )
    finally:
        engine.stop()
    assert budgets == [8, 7, 6, 5, 4, 3, 2, 1]
    assert closing.token_ids[-3:] == [50, 50, 50] and closing.finish_reason == "length"
    assert failed.finish_reason == "error" and "grammar exploded" in failed.error and len(failed.token_ids) == 2
    assert plain.finish_reason == "length" and plain.token_ids == _hf_greedy(model, PROMPTS[2], 8)


def test_a_request_ending_on_its_first_token_leaves_the_others_exact(tokenizer, path):
    """Prompts admitted together prefill in one pass; one that stops at once (EOS first)
    gives its row back and the rows after it still decode their own answers."""
    model = _llama(len(tokenizer))
    prompts = [PROMPTS[0], PROMPTS[1], PROMPTS[2], PROMPTS[3]]
    engine = _engine(model, tokenizer, path)
    try:
        free = engine.generate(prompts, SamplingParams(max_tokens=6))
    finally:
        engine.stop()
    eos = free[1].token_ids[0]  # the second prompt's first token ends it
    engine = _engine(model, tokenizer, path, eos_ids=[eos])
    try:
        out = engine.generate(prompts, SamplingParams(max_tokens=6))
    finally:
        engine.stop()
    assert out[1].finish_reason == "stop" and out[1].token_ids == []
    for prompt, r in zip(prompts, out):
        if prompt is prompts[1]:
            continue
        want = _hf_greedy(model, prompt, 6)
        if eos in want:
            want = want[: want.index(eos)]
        assert r.token_ids == want

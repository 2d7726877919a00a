"""SamplingParams, the one decoding options object, and pick_token, the sampler the lean
decoder and the serving engine share."""

from __future__ import annotations

import pytest

from mgpt.llm.local.sampling import SamplingParams, pick_token


def test_with_options_takes_the_older_keyword_names():
    base = SamplingParams(max_tokens=10, temperature=0.5, top_k=5, top_p=0.5)
    changed = base.with_options(max_new_tokens=40, top_k=None, top_p=None, seed=3)
    assert (changed.max_tokens, changed.top_k, changed.top_p, changed.seed) == (40, 0, 1.0, 3)
    assert changed.temperature == 0.5 and base.max_tokens == 10  # a copy; the original stays
    assert base.with_options() is base


def test_an_unknown_option_is_a_type_error_naming_the_fields():
    with pytest.raises(TypeError, match="top_q.*max_tokens"):
        SamplingParams().with_options(top_q=0.9)


@pytest.mark.parametrize(
    "bad, field",
    [
        (dict(max_tokens=0), "max_tokens"),
        (dict(temperature=-0.1), "temperature"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(top_k=-1), "top_k"),
    ],
)
def test_check_names_the_bad_field(bad, field):
    with pytest.raises(ValueError, match=field):
        SamplingParams(**bad).check()


def test_unsupported_lists_only_fields_set_away_from_the_default():
    params = SamplingParams(stop=["\n"], temperature=0.7)
    assert params.unsupported("stop", "ignore_eos", "constraint") == ["stop"]
    assert SamplingParams().unsupported("stop", "ignore_eos", "constraint") == []


def test_pick_token_greedy_top_k_and_top_p():
    torch = pytest.importorskip("torch")
    logits = torch.tensor([0.0, 3.0, 2.9, -1.0])
    assert pick_token(logits, SamplingParams()) == 1
    generator = torch.Generator().manual_seed(0)
    # top_k=1 and a tiny top_p both leave only the likeliest token to draw.
    assert {pick_token(logits, SamplingParams(temperature=2.0, top_k=1), generator) for _ in range(20)} == {1}
    assert {pick_token(logits, SamplingParams(temperature=2.0, top_p=1e-9), generator) for _ in range(20)} == {1}
    # top_k=2 never draws outside the two likeliest; at a high temperature it draws both.
    drawn = {pick_token(logits, SamplingParams(temperature=5.0, top_k=2), generator) for _ in range(200)}
    assert drawn == {1, 2}


def test_pick_token_repeats_with_the_same_seed():
    torch = pytest.importorskip("torch")
    logits = torch.randn(50, generator=torch.Generator().manual_seed(1))
    params = SamplingParams(temperature=1.0, top_p=0.9)

    def draws(seed):
        generator = torch.Generator().manual_seed(seed)
        return [pick_token(logits, params, generator) for _ in range(30)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)

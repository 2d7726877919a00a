"""Perplexity: one window equals exp(mean NLL) from the model directly; sliding windows
score every token once, with the context the docstring promises."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from mgpt.llm.eval.errors import EvalInputError  # noqa: E402
from mgpt.llm.eval.perplexity import (  # noqa: E402
    _windows,
    perplexity_of_file,
    perplexity_of_text,
)
from mgpt.llm.local.testing import make_tiny_checkpoint  # noqa: E402
from mgpt.llm.local.generate import ModelLoadError, load_model  # noqa: E402

TEXT = "The quick brown fox jumps over the lazy dog. Roles turn ideas into software."


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), n_positions=128)


@pytest.fixture(scope="module")
def loaded(tiny_dir):
    return load_model(tiny_dir, device="cpu")


def _ids(loaded, text=TEXT):
    return torch.tensor([loaded.tokenizer(text)["input_ids"]])


def test_one_window_equals_exp_mean_nll(loaded):
    ids = _ids(loaded)
    n = ids.shape[1]
    assert n < 128
    with torch.no_grad():
        loss = float(loaded.model(input_ids=ids, labels=ids).loss)  # mean over n-1 tokens
    result = perplexity_of_text(loaded, TEXT)
    assert result.windows == 1 and result.tokens == n - 1
    assert result.nll == pytest.approx(loss, rel=1e-5)
    assert result.perplexity == pytest.approx(math.exp(loss), rel=1e-5)
    assert result.block_size == 128 and result.stride == 64


def test_stride_one_gives_each_token_the_last_block_minus_one_tokens(loaded):
    ids = _ids(loaded)[0]
    n, block = len(ids), 8
    # Brute force: token t is predicted from the (at most) block-1 tokens before it.
    total = 0.0
    with torch.no_grad():
        for t in range(1, n):
            context = ids[max(0, t - block + 1) : t + 1].unsqueeze(0)
            logits = loaded.model(input_ids=context).logits[0, -2]
            total += float(-torch.log_softmax(logits, dim=-1)[ids[t]])
    result = perplexity_of_text(loaded, TEXT, block_size=block, stride=1)
    assert result.tokens == n - 1
    assert result.nll == pytest.approx(total / (n - 1), rel=1e-5)


@pytest.mark.parametrize("block,stride", [(8, 3), (8, 7), (16, 5), (5, 4)])
def test_windows_score_every_token_once(loaded, block, stride):
    n = _ids(loaded).shape[1]
    spans = _windows(n, block, stride)
    scored = [t for _, end, first in spans for t in range(first, end)]
    assert scored == list(range(1, n))
    assert all(end - begin <= block and begin < first for begin, end, first in spans)
    result = perplexity_of_text(loaded, TEXT, block_size=block, stride=stride)
    assert result.tokens == n - 1 and result.windows == len(spans)
    assert math.isfinite(result.perplexity) and result.perplexity > 1


def test_bad_settings_are_clear_errors(loaded):
    with pytest.raises(EvalInputError, match="longer than the model's 128 positions"):
        perplexity_of_text(loaded, TEXT, block_size=500)
    with pytest.raises(EvalInputError, match="--stride"):
        perplexity_of_text(loaded, TEXT, block_size=8, stride=8)
    with pytest.raises(EvalInputError, match="at least two"):
        perplexity_of_text(loaded, "T")


def test_file_errors(tiny_dir, tmp_path):
    with pytest.raises(EvalInputError, match="does not exist"):
        perplexity_of_file(tiny_dir, tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(EvalInputError, match="empty"):
        perplexity_of_file(tiny_dir, tmp_path / "empty.txt")
    (tmp_path / "text.txt").write_text(TEXT)
    with pytest.raises(ModelLoadError, match="not a Hugging Face checkpoint"):
        perplexity_of_file(tmp_path, tmp_path / "text.txt")


def test_file_matches_text(tiny_dir, loaded, tmp_path):
    (tmp_path / "text.txt").write_text(TEXT)
    assert perplexity_of_file(tiny_dir, tmp_path / "text.txt", device="cpu") == perplexity_of_text(loaded, TEXT)

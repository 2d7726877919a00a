"""Local generation: greedy equals a hand-written argmax loop, seeded sampling repeats,
streamed pieces add up to the answer, chat templates apply, and bad folders fail clearly."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import typer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from mgpt.llm.errors import ModelConfigError  # noqa: E402
from mgpt.cli.eval import register  # noqa: E402
from mgpt.llm.local.testing import make_tiny_checkpoint  # noqa: E402
from mgpt.llm.local.generate import (  # noqa: E402
    ModelLoadError,
    check_checkpoint,
    encode_prompt,
    generate,
    generate_text,
    load_model,
)
from mgpt.llm.local.sampling import SamplingParams  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), chat_template=True)


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("plain"), chat_template=False)


@pytest.fixture(scope="module")
def loaded(tiny_dir):
    return load_model(tiny_dir, device="cpu")


def _manual_greedy(loaded, prompt: str, steps: int) -> list[int]:
    ids = loaded.tokenizer(prompt, return_tensors="pt")["input_ids"]
    out = []
    with torch.no_grad():
        for _ in range(steps):
            logits = loaded.model(input_ids=ids).logits[0, -1]
            nxt = int(torch.argmax(logits))
            out.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return out


def test_greedy_matches_manual_argmax_loop_and_repeats(loaded):
    first = generate_text(loaded, "The quick brown", max_new_tokens=6)
    second = generate_text(loaded, "The quick brown", max_new_tokens=6)
    expected_ids = _manual_greedy(loaded, "The quick brown", 6)
    eos = loaded.tokenizer.eos_token_id
    if eos in expected_ids:  # generation stops after the end token
        expected_ids = expected_ids[: expected_ids.index(eos) + 1]
    expected = loaded.tokenizer.decode(expected_ids, skip_special_tokens=True)
    assert first.text == second.text == expected
    assert first.prompt_tokens == len(loaded.tokenizer("The quick brown")["input_ids"])
    assert first.completion_tokens == len(expected_ids)


def test_seeded_sampling_repeats(loaded):
    kwargs = dict(max_new_tokens=12, temperature=1.3, top_k=50, top_p=0.95)
    a = generate_text(loaded, "Roles turn", seed=7, **kwargs)
    b = generate_text(loaded, "Roles turn", seed=7, **kwargs)
    assert a.text == b.text
    assert a.completion_tokens == b.completion_tokens >= 1
    others = {generate_text(loaded, "Roles turn", seed=s, **kwargs).text for s in range(4)}
    assert len(others) > 1, "different seeds should sample differently"


def test_streamed_pieces_join_to_the_answer(loaded):
    pieces: list[str] = []
    out = generate_text(loaded, "A model", max_new_tokens=16, temperature=1.0, seed=3, on_text=pieces.append)
    assert pieces and all(pieces)
    assert "".join(pieces) == out.text
    assert out.finish_reason in {"stop", "length"}


def test_generate_one_off_returns_text(tiny_dir):
    got: list[str] = []
    text = generate(tiny_dir, "The quick", max_new_tokens=4, on_text=got.append, device="cpu")
    assert text == "".join(got)


def test_chat_template_used_when_asked(loaded):
    plain = generate_text(loaded, "hello", max_new_tokens=2)
    chat = generate_text(loaded, "hello", max_new_tokens=2, chat=True)
    messages = generate_text(loaded, [{"role": "user", "content": "hello"}], max_new_tokens=2)
    assert not plain.chat_template_used
    assert chat.chat_template_used and messages.chat_template_used
    templated = loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hello"}], tokenize=False, add_generation_prompt=True
    )
    assert chat.prompt_tokens == len(loaded.tokenizer(templated)["input_ids"]) > plain.prompt_tokens


def test_messages_without_template_fall_back_to_plain_lines(plain_dir):
    loaded = load_model(plain_dir, device="cpu")
    out = generate_text(loaded, [{"role": "user", "content": "hi"}], max_new_tokens=2, chat=True)
    assert not out.chat_template_used
    assert out.prompt_tokens == len(loaded.tokenizer("user: hi\nassistant:")["input_ids"])


def test_bad_options_raise_value_error(loaded):
    with pytest.raises(ValueError, match="temperature"):
        generate_text(loaded, "x", temperature=-1)
    with pytest.raises(ValueError, match="top_p"):
        generate_text(loaded, "x", temperature=1, top_p=1.5)


def test_sampling_params_and_keyword_options_decode_alike(loaded):
    params = SamplingParams(max_tokens=10, temperature=1.2, top_k=40, top_p=0.9, seed=5)
    by_params = generate_text(loaded, "Roles turn", params)
    by_keywords = generate_text(loaded, "Roles turn", max_new_tokens=10, temperature=1.2, top_k=40, top_p=0.9, seed=5)
    assert by_params.text == by_keywords.text and by_params.completion_tokens == by_keywords.completion_tokens
    # Keyword options override the params they come with.
    shorter = generate_text(loaded, "Roles turn", params, max_new_tokens=3)
    assert shorter.completion_tokens <= 3


def test_options_generate_text_cannot_honour_are_refused(loaded):
    with pytest.raises(ValueError, match="stop"):
        generate_text(loaded, "x", SamplingParams(stop=["\n"]))
    with pytest.raises(ValueError, match="ignore_eos"):
        generate_text(loaded, "x", ignore_eos=True)
    with pytest.raises(TypeError, match="top_q"):
        generate_text(loaded, "x", top_q=0.5)


def test_encode_prompt_is_what_generate_text_feeds(loaded):
    ids, templated = encode_prompt(loaded, [{"role": "user", "content": "hello"}])
    out = generate_text(loaded, [{"role": "user", "content": "hello"}], max_new_tokens=2)
    assert templated and out.chat_template_used and out.prompt_tokens == len(ids)
    empty, _ = encode_prompt(loaded, "")
    assert len(empty) == 1  # an empty prompt starts from BOS/EOS


def test_not_a_checkpoint_names_what_is_missing(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError) as info:
        check_checkpoint(tmp_path)
    message = str(info.value)
    assert "weights" in message and "tokenizer" in message
    assert "lacks config.json" not in message  # it has one
    assert isinstance(info.value, ModelConfigError)
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nope")


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_generate_streams_text(tiny_dir):
    result = CliRunner().invoke(
        _app(), ["generate", "--model", str(tiny_dir), "-n", "5", "-t", "0.9", "--seed", "1", "The quick"]
    )
    assert result.exit_code == 0, result.output
    expected = generate(tiny_dir, "The quick", max_new_tokens=5, temperature=0.9, seed=1, device="cpu")
    assert result.stdout == expected + "\n"
    assert "prompt" in result.stderr and "new tokens" in result.stderr


def test_cli_generate_bad_folder_exits_2(tmp_path):
    result = CliRunner().invoke(_app(), ["generate", "--model", str(tmp_path), "hi"])
    assert result.exit_code == 2
    assert "not a Hugging Face checkpoint" in result.stderr
    assert "Traceback" not in result.output
    missing = CliRunner().invoke(_app(), ["generate", "--model", str(tmp_path / "nope"), "hi"])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_generation_stops_at_the_context_length(tiny_dir, tmp_path):
    short = load_model(make_tiny_checkpoint(tmp_path / "short", n_positions=12), device="cpu")
    prompt_len = len(short.tokenizer("The quick brown")["input_ids"])
    short.model.generation_config.eos_token_id = None  # only the context can stop it
    short.tokenizer.eos_token = None
    out = generate_text(short, "The quick brown", max_new_tokens=50)
    assert out.completion_tokens == 12 - prompt_len and out.finish_reason == "length"
    with pytest.raises(ValueError, match="at most 12"):
        generate_text(short, "The quick brown fox jumps over the lazy dog again and again", max_new_tokens=1)


def test_empty_prompt_starts_from_the_start_token(loaded):
    out = generate_text(loaded, "", max_new_tokens=3)
    assert out.prompt_tokens == 1 and out.completion_tokens >= 1


def test_cli_chat_without_template_says_so(plain_dir):
    result = CliRunner().invoke(_app(), ["generate", "--model", str(plain_dir), "--chat", "-n", "2", "hi"])
    assert result.exit_code == 0, result.output
    assert "no chat template" in result.stderr

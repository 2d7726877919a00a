"""The embedded model's GGUF -> Hugging Face conversion, the ``local`` spec and torch threads.

A tiny SmolLM2-shaped GGUF written here stands in for the real 98 MB file: same architecture,
tokenizer kind, chat template and quantisation types, a few small layers.
"""

import asyncio

import pytest

pytest.importorskip("torch", reason="the embedded model needs the [train] extra")
pytest.importorskip("gguf", reason="converting a GGUF needs the [all] extra (gguf)")

from mgpt.llm import ChatMessage, ModelConfigError, infer_model
from mgpt.llm.local.store import DEFAULT_MODEL, EmbeddedModelError, convert_gguf, is_ready, resolve_local
from mgpt.llm.local.testing import write_tiny_gguf
from mgpt.llm.local.generate import generate_text, load_model, pick_threads
from mgpt.llm.local.model import LocalModel


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """(gguf file, converted folder, expected weights)."""
    root = tmp_path_factory.mktemp("gguf")
    expected = write_tiny_gguf(root / "tiny.gguf")
    out = convert_gguf(root / "tiny.gguf", root / "model", name=DEFAULT_MODEL)
    return root / "tiny.gguf", out, expected


@pytest.mark.slow
def test_converted_weights_equal_the_dequantised_gguf(converted):
    import numpy as np
    from safetensors.numpy import load_file

    _, out, expected = converted
    saved = load_file(out / "model.safetensors")
    assert set(saved) == set(expected)  # lm_head is tied to the embeddings, as in SmolLM2
    for name, weights in expected.items():
        assert saved[name].dtype == np.float32
        assert np.array_equal(saved[name], weights), name
    # A wrong q/k row order would still have equal sets of values: check one really differs.
    assert not np.array_equal(saved["model.layers.0.self_attn.q_proj.weight"], expected["model.layers.0.self_attn.o_proj.weight"])


@pytest.mark.slow
def test_converted_folder_is_a_standard_checkpoint(converted):
    import json

    _, out, _ = converted
    assert is_ready(out)
    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert config["tie_word_embeddings"] is True and config["num_key_value_heads"] == 2
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] == 2


@pytest.mark.slow
def test_hf_backend_loads_and_generates(converted):
    _, out, _ = converted
    loaded = load_model(out, threads=1)
    assert loaded.tokenizer.eos_token == "<|im_end|>" and loaded.has_chat_template
    prompt = loaded.tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    out_text = generate_text(loaded, [{"role": "user", "content": "hi"}], max_new_tokens=4)
    assert out_text.chat_template_used and 1 <= out_text.completion_tokens <= 4
    model = infer_model(f"hf:{out}", threads=1)
    model.max_new_tokens = 4
    completion = asyncio.run(model.complete([ChatMessage(role="user", content="hi")]))
    assert completion.usage.completion_tokens >= 1


@pytest.mark.slow
def test_local_spec_resolves_in_mgpt_home(converted, tmp_path, monkeypatch):
    import shutil

    _, out, _ = converted
    monkeypatch.setenv("MGPT_HOME", str(tmp_path))
    with pytest.raises(EmbeddedModelError, match="mgpt models pull"):
        infer_model("local")
    shutil.copytree(out, tmp_path / "models" / DEFAULT_MODEL)
    shutil.copytree(out, tmp_path / "models" / "my-model")  # a user's own folder, placed by hand
    model = infer_model("local", threads=1)
    assert isinstance(model, LocalModel) and model.name == f"local:{DEFAULT_MODEL}"
    assert model.path == tmp_path / "models" / DEFAULT_MODEL
    assert infer_model("local:my-model").name == "local:my-model"
    with pytest.raises(ModelConfigError, match="local:my-model"):  # the error lists what there is
        infer_model("local:nope")
    with pytest.raises(ModelConfigError, match="not a model name"):
        resolve_local("../etc")

    from typer.testing import CliRunner

    from mgpt.cli import app

    listing = CliRunner().invoke(app, ["models", "list"]).output
    assert "my-model" in listing and "your Hugging Face folder" in listing
    assert f"at {tmp_path / 'models' / 'my-model'}" in listing


def test_missing_model_says_which_command(tmp_path):
    with pytest.raises(EmbeddedModelError, match="run `mgpt models pull`"):
        resolve_local("", env={"MGPT_HOME": str(tmp_path)})


def test_threads_setting(monkeypatch):
    import os

    assert pick_threads(3) == 3
    assert pick_threads(env={"MGPT_THREADS": "2"}) == 2
    with pytest.raises(ModelConfigError, match="MGPT_THREADS"):
        pick_threads(env={"MGPT_THREADS": "many"})
    with pytest.raises(ModelConfigError, match="at least 1"):
        pick_threads(0)
    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert pick_threads(env={}) == cores  # an idle machine: every core
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 5.0, 0.0, 0.0))
    assert pick_threads(env={}) == 1  # every core busy elsewhere: one thread, never zero


def test_dtype_follows_the_device(monkeypatch):
    """bf16 on a CUDA device that has it (checked here without a GPU), float32 on CPU."""
    import torch

    from mgpt.llm.local.generate import pick_dtype

    assert pick_dtype("cpu") == torch.float32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert pick_dtype("cuda") == torch.bfloat16 and pick_dtype("cuda:1") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert pick_dtype("cuda") == torch.float32

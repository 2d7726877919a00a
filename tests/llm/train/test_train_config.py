"""Run configs: shipped files load, overrides apply, unknown keys and bad values are named."""

from __future__ import annotations

import pytest

from mgpt.llm.train.config import CONFIG_DIR, load_config, parse_overrides
from mgpt.llm.train.errors import TrainError


@pytest.mark.parametrize("name", ["tiny", "shakespeare_char", "shakespeare_char_llama", "shakespeare_char_neox",
                                  "sft_tiny"])
def test_shipped_configs_load(name):
    cfg = load_config(name)
    assert cfg.max_iters > 0
    assert (CONFIG_DIR / f"{name}.toml").is_file()


def test_shakespeare_char_matches_nanogpt():
    cfg = load_config("shakespeare_char")
    assert (cfg.model.family, cfg.model.n_layer, cfg.model.n_head, cfg.model.n_embd) == ("gpt2", 4, 4, 128)
    assert (cfg.block_size, cfg.batch_size, cfg.max_iters, cfg.eval_iters) == (64, 12, 2000, 20)
    assert (cfg.optim.lr, cfg.optim.min_lr, cfg.schedule.warmup_iters, cfg.lr_decay_iters) == (1e-3, 1e-4, 100, 2000)
    assert cfg.model.dropout == 0.0 and cfg.tokenizer.kind == "char"


def test_overrides_are_toml_literals():
    cfg = load_config("tiny", ["optim.lr=3e-4", "max_iters=7", "optim.betas=[0.8, 0.9]", "compile=true",
                               "out_dir=some/where", 'data.path="x.txt"'])
    assert cfg.optim.lr == 3e-4 and cfg.max_iters == 7 and cfg.optim.betas == (0.8, 0.9) and cfg.compile
    assert cfg.out_dir == "some/where"  # not a TOML literal: kept as the string
    assert parse_overrides(["a.b=1"]) == {"a.b": 1}


def test_unknown_override_key_is_named():
    with pytest.raises(TrainError, match=r"unknown config key 'optim\.lrr'"):
        load_config("tiny", ["optim.lrr=1"])
    with pytest.raises(TrainError, match="key=value"):
        load_config("tiny", ["max_iters"])


def test_unknown_file_key_is_named(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text("max_iter = 3\n[optim]\nlr = 1e-3\nlrr = 2\n")
    with pytest.raises(TrainError) as e:
        load_config(p)
    assert "unknown config key 'max_iter'" in str(e.value) and "unknown config key 'optim.lrr'" in str(e.value)


def test_bad_value_is_named(tmp_path):
    with pytest.raises(TrainError, match=r"'model\.family'"):
        load_config("tiny", ['model.family="bert"'])
    with pytest.raises(TrainError, match="'batch_size'"):
        load_config("tiny", ['batch_size="many"'])
    with pytest.raises(TrainError, match="divisible"):
        load_config("tiny", ["model.n_embd=30", "model.n_head=4"])
    with pytest.raises(TrainError, match="n_kv_head is for the llama family only"):
        load_config("tiny", ["model.n_kv_head=1"])
    with pytest.raises(TrainError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_yaml_and_relative_paths(tmp_path, monkeypatch):
    (tmp_path / "corpus.txt").write_text("hello")
    p = tmp_path / "run.yaml"
    p.write_text("max_iters: 5\ndata:\n  path: corpus.txt\noptim:\n  lr: 0.01\n")
    monkeypatch.chdir("/")
    cfg = load_config(p)  # resolved against the config's folder, not the current directory
    assert cfg.max_iters == 5 and cfg.optim.lr == 0.01
    assert cfg.data.path == str(tmp_path / "corpus.txt")


@pytest.mark.parametrize("other", ["shakespeare_char_llama", "shakespeare_char_neox"])
def test_shakespeare_configs_differ_only_in_the_model_family(other):
    gpt2 = load_config("shakespeare_char").model_dump()
    them = load_config(other).model_dump()
    for cfg in (gpt2, them):
        cfg.pop("out_dir")
        cfg["model"].pop("family")
        cfg["model"].pop("intermediate_size")
    assert gpt2 == them

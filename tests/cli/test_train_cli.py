"""`mgpt train ...` through typer's CliRunner: help, a tiny pretrain, clear errors, exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mgpt.cli.train import app

runner = CliRunner()


def test_module_imports_no_heavy_packages():
    code = ("import sys, mgpt.cli.train; "
            "print(sorted(m for m in ('torch', 'transformers', 'numpy', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_help_lists_commands_and_options():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("tokenizer", "pretrain", "sft", "lora", "merge"):
        assert cmd in result.output
    result = runner.invoke(app, ["pretrain", "--help"])
    assert result.exit_code == 0
    assert "--set" in result.output and "--resume" in result.output and "--out" in result.output


@pytest.mark.slow  # the first test to import torch and transformers pays for them (~8 s)
def test_pretrain_tiny_with_overrides(tmp_path):
    (tmp_path / "corpus.txt").write_text("the quick brown fox jumps over the lazy dog.\n" * 60)
    args = ["pretrain", "tiny", "--out", str(tmp_path / "run"), "--quiet",
            "--set", f"data.path={tmp_path / 'corpus.txt'}", "--set", "max_iters=6", "--set", "eval_interval=3",
            "--set", "threads=1", "--set", "model.n_layer=1", "--set", "model.n_embd=16"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "done: iter 6" in result.output
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["n_layer"] == 1 and cfg["n_embd"] == 16
    # --resume with more iterations continues the same run.
    result = runner.invoke(app, args[:-10] + ["--set", "max_iters=8", "--set", "eval_interval=3", "--set", "threads=1",
                                              "--set", "model.n_layer=1", "--set", "model.n_embd=16", "--resume"])
    assert result.exit_code == 0, result.output
    assert "done: iter 8" in result.output


def test_errors_exit_2_with_a_message(tmp_path):
    pytest.importorskip("torch", reason="the workshop's commands need the [train] extra")
    result = runner.invoke(app, ["pretrain", "tiny", "--set", "optim.lrr=1"])
    assert result.exit_code == 2
    assert "unknown config key 'optim.lrr'" in result.output
    result = runner.invoke(app, ["pretrain", "tiny", "--quiet", "--out", str(tmp_path / "o"),
                                 "--set", f"data.path={tmp_path / 'missing.txt'}"])
    assert result.exit_code == 2 and "data file not found" in result.output
    result = runner.invoke(app, ["sft", "sft_tiny", "--model", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "not a model checkpoint folder" in result.output
    result = runner.invoke(app, ["merge", str(tmp_path), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "not a LoRA adapter folder" in result.output


def test_out_of_memory_is_a_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="the workshop's commands need the [train] extra")
    import mgpt.llm.train.pretrain as pretrain_mod

    def oom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(pretrain_mod, "pretrain", oom)
    result = runner.invoke(app, ["pretrain", "tiny", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "out of memory" in result.output and "batch_size" in result.output


def test_tokenizer_command(tmp_path):
    pytest.importorskip("tokenizers", reason="the workshop's commands need the [train] extra")
    (tmp_path / "c.txt").write_text("hello world\n" * 20)
    result = runner.invoke(app, ["tokenizer", str(tmp_path / "c.txt"), "--out", str(tmp_path / "tok")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tok" / "tokenizer.json").is_file()
    result = runner.invoke(app, ["tokenizer", str(tmp_path / "c.txt"), "--out", str(tmp_path / "t2"), "--kind", "wp"])
    assert result.exit_code == 2 and "unknown tokenizer kind" in result.output


def test_a_missing_workshop_package_is_a_clear_error(tmp_path, monkeypatch):
    """Installed without the [train] extra (pip install -e .): one line naming what to install."""
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails, as on such an install
    monkeypatch.delitem(sys.modules, "mgpt.llm.train.pretrain", raising=False)
    result = runner.invoke(app, ["pretrain", "tiny", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "needs torch, which is not installed" in result.output and "tools/install.sh" in result.output

"""Self-distillation from constrained decoding (benchmarks/bench_self_distil.py) end to end
on a tiny random Llama: the grammar's answers are accepted and kept, the model is
fine-tuned on them, and both models are asked again without the grammar."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the benchmark needs the [train] extra")
pytest.importorskip("xgrammar", reason="the teacher decodes under the PRD grammar")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    from transformers import AutoConfig, LlamaConfig, LlamaForCausalLM

    from mgpt.llm.eval.testing import make_tiny_checkpoint

    folder = make_tiny_checkpoint(tmp_path_factory.mktemp("llama"), chat_template=True, n_positions=4096)
    base = AutoConfig.from_pretrained(folder)
    config = LlamaConfig(vocab_size=base.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         bos_token_id=base.eos_token_id, eos_token_id=base.eos_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_self_distillation_runs_and_keeps_only_accepted_answers(llama_dir, tmp_path, monkeypatch):
    sys.path.insert(0, str(BENCH))
    try:
        import bench_self_distil
    finally:
        sys.path.remove(str(BENCH))
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", [
        "bench_self_distil.py", "--model", str(llama_dir), "--out", str(out), "--seeds", "1",
        "--train-ideas", "2", "--eval-ideas", "1", "--steps", "1", "--max-new-tokens", "400",
        "--batch-size", "1", "--block-size", "2048", "--threads", "1"])
    bench_self_distil.main()
    summary = json.loads((out / "summary.json").read_text())
    seed = summary["seeds"]["1"]
    rows = [json.loads(x) for x in (out / "seed1_train.jsonl").read_text().splitlines()]
    assert len(rows) == seed["kept"] == 2  # the grammar's answers always pass the PRD model
    from mgpt.actions.documents import PRD

    for row in rows:
        assert row["messages"][-1]["role"] == "assistant"
        PRD.model_validate_json(row["messages"][-1]["content"])
        assert row["messages"][-2]["content"] == bench_self_distil.prd_prompt(
            bench_self_distil.TRAIN_IDEAS[rows.index(row)])[-1]["content"]
    assert (out / "seed1_model" / "model.safetensors").is_file()
    for result in (summary["base"], seed):
        assert 0.0 <= result["greedy"] <= 1.0 and len(result["greedy_answers"]) == 1
    assert not set(summary["train_ideas"]) & set(summary["eval_ideas"])

"""SFT and LoRA on a tiny pretrained model: assistant-only loss, frozen base, exact merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mgpt.llm.train.config import load_config
from mgpt.llm.train.errors import TrainError


def chat_file(path: Path, n: int = 24) -> Path:
    rows = [{"messages": [{"role": "user", "content": f"say {i % 6}"},
                          {"role": "assistant", "content": f"number {i % 6}"}]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def ft_config(tmp_path: Path, base: Path, out: str, **overrides):
    cfg = {
        "init_from": str(base), "data.path": str(tmp_path / "chat.jsonl"), "out_dir": str(tmp_path / out),
        "device": "cpu", "threads": 1, "block_size": 32, "batch_size": 4, "max_iters": 8, "eval_interval": 4,
        "eval_iters": 2, "log_interval": 1, "optim.lr": 1e-2, "optim.min_lr": 1e-3, "optim.weight_decay": 0.0,
        "schedule.warmup_iters": 1, "lora.r": 4, "lora.alpha": 8,
    }
    cfg.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_config(None, cfg)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    """A 1-layer GPT-2 pretrained for a few steps on text that has the chat's characters."""
    from mgpt.llm.train.pretrain import pretrain

    tmp = tmp_path_factory.mktemp("base")
    (tmp / "corpus.txt").write_text("say number 0 1 2 3 4 5 6 7 8 9, the fox.\n" * 100)
    cfg = load_config(None, {
        "data.path": str(tmp / "corpus.txt"), "out_dir": str(tmp / "base"), "device": "cpu", "threads": 1,
        "model.n_layer": 1, "model.n_head": 2, "model.n_embd": 16, "block_size": 32, "batch_size": 4,
        "max_iters": 4, "eval_interval": 4, "eval_iters": 1})
    pretrain(cfg, progress=False)
    return tmp / "base"


def test_sft_learns_assistant_tokens_and_saves_hf_folder(tmp_path, base_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mgpt.llm.train.sft import sft

    chat_file(tmp_path / "chat.jsonl")
    result = sft(ft_config(tmp_path, base_model, "sft", max_iters=16, eval_interval=8), progress=False)
    evals = [r for r in map(json.loads, (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines())
             if r["kind"] == "eval"]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert result.iter_num == 16
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "sft")
    tok = AutoTokenizer.from_pretrained(tmp_path / "sft")
    prompt = tok.apply_chat_template([{"role": "user", "content": "say 3"}], add_generation_prompt=True,
                                     return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > prompt["input_ids"].shape[1]


def test_sft_needs_a_model_folder(tmp_path):
    from mgpt.llm.train.sft import sft

    chat_file(tmp_path / "chat.jsonl")
    (tmp_path / "notamodel").mkdir()
    with pytest.raises(TrainError, match="not a model checkpoint folder"):
        sft(ft_config(tmp_path, tmp_path / "notamodel", "sft"), progress=False)
    with pytest.raises(TrainError, match="no model to fine-tune"):
        sft(ft_config(tmp_path, tmp_path, "sft", init_from=None), progress=False)


def test_lora_trains_only_the_adapter_and_merges_exactly(tmp_path, base_model):
    import torch
    from transformers import AutoModelForCausalLM

    from mgpt.llm.train.lora import load_adapter, train_lora

    chat_file(tmp_path / "chat.jsonl")
    before = {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(base_model).state_dict().items()}
    train_lora(ft_config(tmp_path, base_model, "adapter"), progress=False, merge_to=tmp_path / "merged")
    adapter = tmp_path / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert not (adapter / "model.safetensors").exists()  # the adapter folder holds the adapter only

    # The base folder is untouched, and inside the trained PeftModel the base weights are too.
    after = AutoModelForCausalLM.from_pretrained(base_model).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    peft_model = load_adapter(adapter).eval()
    trained = peft_model.state_dict()
    lora_keys = [k for k in trained if "lora_" in k]
    assert lora_keys and any(trained[k].abs().sum() > 0 for k in lora_keys if "lora_B" in k)
    for k, v in trained.items():
        if "lora_" not in k:
            plain = k.replace("base_model.model.", "").replace(".base_layer", "")
            assert torch.equal(v, before[plain]), k

    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    assert not any("lora" in k for k in merged.state_dict())
    ids = torch.randint(0, merged.config.vocab_size, (2, 20))
    with torch.no_grad():
        a, m, b = peft_model(input_ids=ids).logits, merged(input_ids=ids).logits, \
            AutoModelForCausalLM.from_pretrained(base_model)(input_ids=ids).logits
    torch.testing.assert_close(m, a, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(m, b, atol=1e-4)  # and the adapter did change the model


def test_lora_on_text_data_and_resume(tmp_path, base_model):
    from mgpt.llm.train.lora import train_lora

    (tmp_path / "t.txt").write_text("say number 7, the fox.\n" * 50)
    cfg = ft_config(tmp_path, base_model, "adapter", data__path=str(tmp_path / "t.txt"), max_iters=4)
    train_lora(cfg, progress=False)
    cfg = ft_config(tmp_path, base_model, "adapter", data__path=str(tmp_path / "t.txt"), max_iters=6)
    result = train_lora(cfg, resume=True, progress=False)
    assert result.iter_num == 6

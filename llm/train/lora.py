"""LoRA through peft: train an adapter on any HF causal LM folder, save it, merge it.

Only the adapter's low-rank matrices train; the base weights stay frozen (and unchanged).
``train_lora`` writes an adapter folder (``adapter_config.json``,
``adapter_model.safetensors`` and the tokenizer); ``merge_lora`` folds the adapter into
the base with ``merge_and_unload`` and saves a standard HF model folder.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgpt.llm.train.config import RunConfig
from mgpt.llm.train.errors import TrainError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from mgpt.llm.train.pretrain import TrainResult

__all__ = ["add_lora", "load_adapter", "merge_lora", "train_lora"]


def add_lora(model: PreTrainedModel, cfg: RunConfig) -> Any:
    """Wrap ``model`` in a peft LoRA model; only the adapter parameters require grad."""
    from peft import LoraConfig, get_peft_model

    lc = cfg.lora
    config = LoraConfig(
        r=lc.r, lora_alpha=lc.alpha, lora_dropout=lc.dropout, target_modules=lc.target_modules, task_type="CAUSAL_LM",
        # GPT-2's Conv1D stores weights as (in, out); peft must know to transpose.
        fan_in_fan_out=model.config.model_type == "gpt2",
    )
    try:
        with warnings.catch_warnings():  # peft calls a transformers API deprecated for v6; not ours to fix
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            return get_peft_model(model, config)
    except ValueError as e:  # e.g. target modules that the model does not have
        raise TrainError(f"cannot add LoRA to this model: {e}") from e


def train_lora(cfg: RunConfig, *, resume: bool = False, progress: bool = True,
               merge_to: str | Path | None = None) -> TrainResult:
    """Train a LoRA adapter for ``cfg.init_from`` on ``cfg.data``; save it in ``cfg.out_dir``.

    With ``merge_to``, also write the merged model there as a standard HF folder.
    """
    import torch

    from mgpt.llm.train.pretrain import build_batches, require_checkpoint, setup_runtime, train_loop
    from mgpt.llm.train.sft import check_block_size, load_model_folder

    require_checkpoint(cfg, resume)
    rt = setup_runtime(cfg)
    torch.manual_seed(cfg.seed)
    base, tokenizer = load_model_folder(cfg.init_from)
    check_block_size(base, cfg.block_size)
    # Recorded in adapter_config.json, so merge_lora finds the base without being told.
    base.config._name_or_path = str(Path(cfg.init_from).resolve())
    model = add_lora(base, cfg)
    out_dir = Path(cfg.out_dir)
    if rt.master:
        out_dir.mkdir(parents=True, exist_ok=True)
    batches = build_batches(cfg, tokenizer, out_dir, rt)

    def export(m: Any, d: Path) -> None:
        m.save_pretrained(d)  # a PeftModel saves the adapter only
        tokenizer.save_pretrained(d)

    result = train_loop(cfg, model, tokenizer, batches, rt, resume=resume, progress=progress, export=export)
    if merge_to is not None and rt.master:
        merge_lora(out_dir, merge_to)
    return result


def load_adapter(adapter_dir: str | Path, base: str | Path | None = None) -> Any:
    """The base model (from ``base`` or the path recorded in the adapter) with the adapter loaded."""
    from peft import PeftConfig, PeftModel

    from mgpt.llm.train.sft import load_model_folder

    a = Path(adapter_dir)
    if not (a / "adapter_config.json").is_file():
        raise TrainError(f"{a} is not a LoRA adapter folder (no adapter_config.json)")
    base = base or PeftConfig.from_pretrained(str(a)).base_model_name_or_path
    model, _ = load_model_folder(base)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return PeftModel.from_pretrained(model, str(a))


def merge_lora(adapter_dir: str | Path, out_dir: str | Path, base: str | Path | None = None) -> Path:
    """Fold the adapter into its base (``merge_and_unload``) and save a standard HF folder."""
    from mgpt.llm.train.tokenizer import load_tokenizer

    from mgpt.llm.train.pretrain import quiet_hf

    merged = load_adapter(adapter_dir, base).merge_and_unload()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with quiet_hf():
        merged.save_pretrained(out)
    load_tokenizer(adapter_dir).save_pretrained(out)
    return out

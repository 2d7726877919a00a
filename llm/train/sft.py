"""Supervised fine-tuning of any HF causal LM folder on chat JSONL, loss on assistant tokens only.

The model folder may be one of ours (``mgpt train pretrain``) or any other
``AutoModelForCausalLM`` checkpoint whose tokenizer has a chat template. The loop is
:func:`mgpt.llm.train.pretrain.train_loop`; only the model and the data differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mgpt.llm.train.config import RunConfig
from mgpt.llm.train.errors import TrainError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from mgpt.llm.train.pretrain import TrainResult

__all__ = ["load_model_folder", "sft"]


def load_model_folder(path: str | Path | None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model and tokenizer of an HF checkpoint folder; a clear error if it is not one."""
    from transformers import AutoModelForCausalLM

    from mgpt.llm.train.tokenizer import load_tokenizer

    if not path:
        raise TrainError("no model to fine-tune: pass --model DIR (or set init_from in the config)")
    p = Path(path)
    if not (p / "config.json").is_file():
        raise TrainError(f"{p} is not a model checkpoint folder (no config.json); "
                         "give a folder written by `mgpt train pretrain` or by save_pretrained")
    from mgpt.llm.train.pretrain import quiet_hf

    tokenizer = load_tokenizer(p)
    try:
        with quiet_hf():
            try:
                model = AutoModelForCausalLM.from_pretrained(str(p), attn_implementation="sdpa")
            except (ValueError, ImportError):  # no SDPA for this architecture: its default attention
                model = AutoModelForCausalLM.from_pretrained(str(p))
    except OSError as e:
        raise TrainError(f"cannot load the model in {p}: {e}") from e
    return model, tokenizer


def check_block_size(model: PreTrainedModel, block_size: int) -> None:
    n_pos = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    if n_pos is not None and block_size > n_pos:
        raise TrainError(f"block_size {block_size} is longer than the model's {n_pos} positions; lower block_size")


def sft(cfg: RunConfig, *, resume: bool = False, progress: bool = True) -> TrainResult:
    """Fine-tune ``cfg.init_from`` on ``cfg.data`` (chat JSONL: assistant tokens only; text: all
    tokens) and save a standard HF folder in ``cfg.out_dir``."""
    import torch

    from mgpt.llm.train.pretrain import build_batches, require_checkpoint, setup_runtime, train_loop

    require_checkpoint(cfg, resume)
    rt = setup_runtime(cfg)
    torch.manual_seed(cfg.seed)
    model, tokenizer = load_model_folder(cfg.init_from)
    check_block_size(model, cfg.block_size)
    out_dir = Path(cfg.out_dir)
    if rt.master:
        out_dir.mkdir(parents=True, exist_ok=True)
    batches = build_batches(cfg, tokenizer, out_dir, rt)
    return train_loop(cfg, model, tokenizer, batches, rt, resume=resume, progress=progress)

"""Pretrain a small GPT-2, Llama or GPT-NeoX model from scratch; the one training loop of mgpt.

Reads like nanoGPT's train.py: a config comes in, then ``setup_runtime`` (device, DDP,
precision), ``build_model``, ``configure_optimizer``, ``get_lr``, ``estimate_loss`` and
one loop in :func:`train_loop`, which ``sft`` and ``lora`` reuse.

Run it on one process or under ``torchrun --nproc_per_node=N``. The output folder is a
standard Hugging Face checkpoint::

    out_dir/model.safetensors, config.json, tokenizer.json, ...   AutoModelForCausalLM / AutoTokenizer
    out_dir/metrics.jsonl, loss.png                                the loss curve
    out_dir/ckpt/state.pt                                          model, optimizer, iter, RNG + data state
    out_dir/data/train.bin, val.bin                                the tokenized text

``--resume`` continues from ``ckpt/state.pt``; on CPU the resumed loss curve equals
the uninterrupted one, because batches come from a seeded generator saved with it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from mgpt.llm.train.config import RunConfig
from mgpt.llm.train.errors import TrainError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "Runtime", "TrainResult", "build_batches", "build_model", "checkpoint_path", "configure_optimizer",
    "estimate_loss", "eval_rows", "export_hf", "gather_ranks", "get_lr", "lm_loss", "prepare_tokenizer", "pretrain",
    "require_checkpoint", "setup_runtime", "train_loop", "train_step", "unwrap_model",
]


# --------------------------------------------------------------------------- runtime


@dataclass
class Runtime:
    """Where and how this process trains."""

    device: str  # "cpu" or "cuda:N"
    device_type: str  # "cpu" or "cuda", for autocast
    dtype: str  # "fp32" or "bf16"
    ddp: bool = False
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def master(self) -> bool:
        return self.rank == 0

    def autocast(self) -> contextlib.AbstractContextManager:
        import torch

        if self.dtype == "bf16":
            return torch.autocast(device_type=self.device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def barrier(self) -> None:
        if self.ddp:
            import torch.distributed as dist

            dist.barrier()


def _leave_group() -> None:
    """Leave the DDP group, at exit. A process joins once and every trainer it runs (RFT's
    fine-tune, DPO after RFT in one script) reuses the group: joining again through
    torchrun's store after leaving reads the old group's stale addresses (gloo:
    "Connection refused", or a hang)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def setup_runtime(cfg: RunConfig) -> Runtime:
    """Pick the device, join the DDP group when launched by torchrun, set threads and precision."""
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cuda = torch.cuda.is_available()
    if cfg.device == "cuda" and not cuda:
        raise TrainError("device = 'cuda' but no CUDA GPU is available (use device = 'auto' or 'cpu')")
    use_cuda = cuda and cfg.device != "cpu"
    # torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; a plain `python` run has none of them.
    ddp = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    rank = local_rank = 0
    world = 1
    if ddp:
        import torch.distributed as dist

        rank, local_rank, world = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ["WORLD_SIZE"])
        if use_cuda:
            torch.cuda.set_device(local_rank)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
            atexit.register(_leave_group)
    device = f"cuda:{local_rank}" if use_cuda else "cpu"
    if use_cuda:
        # TF32 matmuls: ~free speed on Ampere+ for the fp32 parts that autocast leaves alone.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if cfg.precision == "auto":
        dtype = "bf16" if use_cuda and torch.cuda.is_bf16_supported() else "fp32"
    else:
        dtype = cfg.precision
    return Runtime(device=device, device_type="cuda" if use_cuda else "cpu", dtype=dtype, ddp=ddp,
                   rank=rank, local_rank=local_rank, world_size=world)


# --------------------------------------------------------------------------- model and optimizer


def build_model(cfg: RunConfig, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """A fresh GPT-2, Llama or GPT-NeoX from ``cfg.model``, its vocabulary that of the tokenizer."""
    from transformers import AutoModelForCausalLM, GPT2Config, GPTNeoXConfig, LlamaConfig

    m = cfg.model
    n_pos = m.n_positions or cfg.block_size
    if n_pos < cfg.block_size:
        raise TrainError(f"model.n_positions ({n_pos}) is shorter than block_size ({cfg.block_size})")
    special = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                   pad_token_id=tokenizer.pad_token_id)
    if m.family == "gpt2":
        config = GPT2Config(
            vocab_size=len(tokenizer), n_positions=n_pos, n_embd=m.n_embd, n_layer=m.n_layer, n_head=m.n_head,
            n_inner=m.intermediate_size, resid_pdrop=m.dropout, embd_pdrop=m.dropout, attn_pdrop=m.dropout,
            # Exact GELU as in nanoGPT: one fused kernel, where gelu_new is five elementwise ops
            # (a third of the step time of a small model on CPU).
            activation_function="gelu", **special)
    elif m.family == "gpt_neox":
        # GPT-2's block (LayerNorm, exact GELU, biases, fused QKV) with rotary positions on the
        # whole head, sequential residuals like GPT-2 (Pythia runs attention and MLP in parallel).
        config = GPTNeoXConfig(
            vocab_size=len(tokenizer), hidden_size=m.n_embd, num_hidden_layers=m.n_layer, num_attention_heads=m.n_head,
            intermediate_size=m.intermediate_size or 4 * m.n_embd, hidden_act="gelu", rotary_pct=1.0,
            max_position_embeddings=n_pos, use_parallel_residual=False, attention_dropout=m.dropout,
            hidden_dropout=m.dropout, tie_word_embeddings=True, **special)
    else:
        config = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=m.n_embd, intermediate_size=m.intermediate_size or 4 * m.n_embd,
            num_hidden_layers=m.n_layer, num_attention_heads=m.n_head, num_key_value_heads=m.n_kv_head or m.n_head,
            max_position_embeddings=n_pos, attention_dropout=m.dropout, tie_word_embeddings=True, **special)
    try:
        return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    except (ValueError, ImportError):  # a transformers without SDPA for this family: eager attention
        return AutoModelForCausalLM.from_config(config)


def configure_optimizer(model: torch.nn.Module, cfg: RunConfig, device_type: str) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (linear and embedding weights) only, as in nanoGPT:
    decaying biases and norm gains only hurts. Frozen parameters (LoRA's base) are left out."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    o = cfg.optim
    # fused=True: one kernel for all parameters on CUDA and on CPU, instead of a loop.
    return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), fused=True)


def get_lr(it: int, cfg: RunConfig) -> float:
    """Linear warmup for ``warmup_iters``, cosine decay to ``min_lr`` at ``lr_decay_iters``, then flat."""
    o, s = cfg.optim, cfg.schedule
    if not s.decay_lr:
        return o.lr
    if it < s.warmup_iters:
        return o.lr * (it + 1) / (s.warmup_iters + 1)
    if it >= cfg.lr_decay_iters:
        return o.min_lr
    ratio = (it - s.warmup_iters) / (cfg.lr_decay_iters - s.warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))  # 1 -> 0
    return o.min_lr + coeff * (o.lr - o.min_lr)


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits (B, T, V) against targets (B, T); -100 targets are ignored."""
    import torch.nn.functional as F

    return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)


def estimate_loss(model: torch.nn.Module, batches: Any, eval_iters: int, rt: Runtime) -> dict[str, float]:
    """Mean loss over ``eval_iters`` batches of each split (the same batches every time)."""
    import torch

    out = {}
    model.eval()
    with torch.no_grad():
        for split in batches.splits:
            gen = batches.eval_generator()
            losses = torch.zeros(eval_iters)
            for k in range(eval_iters):
                x, y = batches.get_batch(split, gen)
                with rt.autocast():
                    logits = model(input_ids=x, use_cache=False).logits
                losses[k] = lm_loss(logits, y).item()
            out[split] = losses.mean().item()
    model.train()
    return out


# --------------------------------------------------------------------------- data, files


def build_batches(cfg: RunConfig, tokenizer: PreTrainedTokenizerBase, out_dir: Path, rt: Runtime) -> Any:
    """TextBatches or ChatBatches for ``cfg.data``; rank 0 tokenizes, the others wait and read."""
    from mgpt.llm.train.data import ChatBatches, TextBatches, data_format

    fmt = data_format(cfg.data.path, cfg.data.format)
    if fmt == "chat":
        return ChatBatches(cfg.data.path, tokenizer, cfg.batch_size, cfg.block_size, cfg.data.val_fraction,
                           seed=cfg.seed, rank=rt.rank, device=rt.device,
                           val_path=cfg.data.val_path, keep=cfg.data.keep)
    if cfg.data.val_path:
        raise TrainError("data.val_path is for chat data (.jsonl); a text file's validation split is its last "
                         "data.val_fraction")
    from mgpt.llm.train.data import prepare_text

    data_dir = out_dir / "data"
    if rt.master:
        prepare_text(cfg.data.path, tokenizer, data_dir, cfg.data.val_fraction)
    rt.barrier()
    return TextBatches(data_dir, cfg.batch_size, cfg.block_size, seed=cfg.seed, rank=rt.rank, device=rt.device)


def unwrap_model(model: Any) -> Any:
    """The plain module under DDP and torch.compile wrappers."""
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):
        model = model.module
    return getattr(model, "_orig_mod", model)  # torch.compile's OptimizedModule


@contextlib.contextmanager
def quiet_hf():
    """No transformers progress bars (\"Writing model shards\") in the middle of our log."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def export_hf(model: Any, tokenizer: PreTrainedTokenizerBase, out_dir: Path) -> None:
    """``save_pretrained`` model and tokenizer into out_dir, each file replaced atomically."""
    tmp = out_dir / ".export.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with quiet_hf():
        unwrap_model(model).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    for f in tmp.iterdir():
        os.replace(f, out_dir / f.name)
    tmp.rmdir()


def checkpoint_path(cfg: RunConfig) -> Path:
    return Path(cfg.out_dir) / "ckpt" / "state.pt"


def require_checkpoint(cfg: RunConfig, resume: bool) -> None:
    """Fail before any work when --resume has nothing to resume."""
    if resume and not checkpoint_path(cfg).is_file():
        raise TrainError(f"nothing to resume: no checkpoint at {checkpoint_path(cfg)} (run without --resume first)")


def _save_state(path: Path, state: dict[str, Any]) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash mid-write leaves the previous checkpoint whole


def _load_state(path: Path) -> dict[str, Any]:
    import torch

    if not path.is_file():
        raise TrainError(f"nothing to resume: no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise TrainError(f"cannot read checkpoint {path}: {e}") from e


def gather_ranks(obj: Any, rt: Runtime) -> list[Any]:
    """Every rank's ``obj`` (rank order) on every rank; [obj] without DDP."""
    if not rt.ddp:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * rt.world_size
    dist.all_gather_object(out, obj)
    return out


def eval_rows(out_dir: str | Path) -> list[dict[str, Any]]:
    """The evals a run logged in ``out_dir/metrics.jsonl`` (iter, train_loss, val_loss), oldest
    first; none for a folder without one."""
    path = Path(out_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [r for r in map(json.loads, path.read_text().splitlines()) if r.get("kind") == "eval"]


class Metrics:
    """metrics.jsonl (one JSON object per log or eval) and the loss.png drawn from it."""

    def __init__(self, out_dir: Path, resume_iter: int | None) -> None:
        self.path = out_dir / "metrics.jsonl"
        self.png = out_dir / "loss.png"
        rows = []
        if resume_iter is not None and self.path.is_file():
            # Drop what a crashed run logged after its last checkpoint: the resumed run redoes it.
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a crash
                    continue
                if row["iter"] <= resume_iter:
                    rows.append(row)
        self.rows = rows
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        os.replace(tmp, self.path)

    def log(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def plot(self) -> None:
        # Figure + Agg canvas directly: no pyplot, so the user's matplotlib backend is untouched.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 4))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        train = [r for r in self.rows if r["kind"] == "train"]
        evals = [r for r in self.rows if r["kind"] == "eval"]
        ax.plot([r["iter"] for r in train], [r["loss"] for r in train], lw=0.8, alpha=0.6, label="train (batch)")
        for split in ("train", "val"):
            pts = [(r["iter"], r[f"{split}_loss"]) for r in evals if r.get(f"{split}_loss") is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=f"{split} (eval)")
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        tmp = self.png.with_name("loss.tmp.png")
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, self.png)


class Progress:
    """A rich progress bar on a terminal, plain log lines elsewhere (CI logs, pipes, files)."""

    def __init__(self, enabled: bool, total: int, start: int) -> None:
        self.enabled, self.total, self.bar = enabled, total, None
        if not enabled:
            return
        from rich.console import Console

        self.console = Console()
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            # "left" in the info text comes from the measured ms/iter, which excludes evals.
            self.bar = Bar(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                           TimeElapsedColumn(), console=self.console)
            self.task = self.bar.add_task("train", total=total, completed=start, info="")
            self.bar.start()

    def step(self, it: int, info: str | None = None) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=it, **({"info": info} if info else {}))
        elif self.enabled and info:
            self.console.print(f"iter {it}/{self.total}: {info}", highlight=False, soft_wrap=True)

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False, soft_wrap=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@dataclass
class TrainResult:
    """What a run did: where it wrote, how far it got, its last losses and its speed."""

    out_dir: Path
    iter_num: int
    train_loss: float | None
    val_loss: float | None
    ms_per_iter: float
    tokens_per_s: float
    threads: int


def _fmt_time(s: float) -> str:
    return f"{s / 3600:.1f}h" if s >= 3600 else f"{s / 60:.1f}m" if s >= 60 else f"{s:.0f}s"


# --------------------------------------------------------------------------- the loop


def _resume(path: Path, model: Any, optimizer: Any, batches: Any, rt: Runtime) -> tuple[int, float]:
    """Load a checkpoint into the model, optimizer, RNGs and batch sampler; (iter, best val loss)."""
    import torch

    state = _load_state(path)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise TrainError(f"the checkpoint {path} does not fit this model (was the config changed?): {e}") from None
    optimizer.load_state_dict(state["optimizer"])
    mine = state["ranks"][rt.rank] if rt.rank < len(state["ranks"]) else None
    if mine is not None:  # same world size: continue each rank's exact random streams
        torch.set_rng_state(mine["torch"])
        if mine.get("cuda") is not None and rt.device_type == "cuda":
            torch.cuda.set_rng_state(mine["cuda"])
        batches.load_state_dict(mine["data"])
    return state["iter_num"], state["best_val_loss"]


def _wrap(model: Any, cfg: RunConfig, rt: Runtime) -> Any:
    """The module the steps run: compiled with ``cfg.compile``, under DDP with torchrun."""
    import torch

    if cfg.compile:
        model = torch.compile(model)
    if rt.ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(model, device_ids=[rt.local_rank] if rt.device_type == "cuda" else None)
    return model


def train_step(model: Any, optimizer: Any, batches: Any, cfg: RunConfig, rt: Runtime, lr: float) -> Any:
    """One optimizer step at ``lr`` over ``cfg.grad_accum`` micro-batches; the last micro-batch's
    loss (a tensor, scaled by 1/grad_accum: reading it would sync the device)."""
    import torch

    for group in optimizer.param_groups:
        group["lr"] = lr
    for micro in range(cfg.grad_accum):
        # Under DDP, all-reduce the gradients on the last micro-step only.
        sync = contextlib.nullcontext() if not rt.ddp or micro == cfg.grad_accum - 1 else model.no_sync()
        with sync:
            # Drawn here, not prefetched: the sampler state saved at a checkpoint must be the
            # one *before* the next step's batch, or a resumed run would skip a batch.
            x, y = batches.get_batch("train")  # (B, T) each
            with rt.autocast():
                logits = model(input_ids=x, use_cache=False).logits  # (B, T, V)
                loss = lm_loss(logits, y) / cfg.grad_accum  # scaled so accumulated grads are a mean
            loss.backward()
    if cfg.optim.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def _loss_value(loss: Any, cfg: RunConfig, rt: Runtime) -> float:
    """The step's loss as a float, the same on every rank (so all stop together on a NaN):
    the only host sync of the loop, once per log interval."""
    value = loss.detach().float() * cfg.grad_accum
    if rt.ddp:
        import torch.distributed as dist

        dist.all_reduce(value, op=dist.ReduceOp.AVG)
    return value.item()


class _Timer:
    """Training time only: evals and checkpoints are left out of ms/iter and tokens/s."""

    def __init__(self) -> None:
        self.total, self.iters = 0.0, 0
        self.restart()

    def restart(self) -> None:
        self.t0, self.window = time.perf_counter(), 0

    def lap(self) -> tuple[float, int]:
        """Seconds and steps since the last restart (added to the totals); restarts."""
        dt, steps = time.perf_counter() - self.t0, self.window
        self.total, self.iters = self.total + dt, self.iters + steps
        self.restart()
        return dt, steps


@dataclass
class _Run:
    """What the loop's helpers share, as nanoGPT's train.py keeps it in module globals."""

    cfg: RunConfig
    rt: Runtime
    raw_model: Any
    optimizer: Any
    batches: Any
    export: Callable[[Any, Path], None]
    metrics: Metrics | None
    bar: Progress

    @property
    def out_dir(self) -> Path:
        return Path(self.cfg.out_dir)

    def diverged(self, what: str, value: float, it: int) -> TrainError:
        path = checkpoint_path(self.cfg)
        kept = f"the last good checkpoint ({path}) is kept" if path.is_file() else "no checkpoint was written"
        return TrainError(f"{what} is {value} at iter {it}: training diverged and was stopped; {kept}. "
                          f"Try a lower optim.lr (now {self.cfg.optim.lr}) or more schedule.warmup_iters.")

    def checkpoint(self, it: int, best_val: float) -> None:
        """Model, optimizer, every rank's RNG and sampler state, and the HF export."""
        import torch

        # All ranks take part in the gather; only rank 0 writes.
        ranks = gather_ranks({"torch": torch.get_rng_state(), "data": self.batches.state_dict(),
                        "cuda": torch.cuda.get_rng_state() if self.rt.device_type == "cuda" else None}, self.rt)
        if self.rt.master:
            _save_state(checkpoint_path(self.cfg), {
                "model": self.raw_model.state_dict(), "optimizer": self.optimizer.state_dict(), "iter_num": it,
                "best_val_loss": best_val, "config": self.cfg.model_dump(mode="json"), "ranks": ranks})
            self.export(self.raw_model, self.out_dir)
            self.metrics.plot()

    def evaluate(self, it: int, best_val: float) -> tuple[float | None, float]:
        """Estimate the losses, log them, checkpoint when finite; (val loss, best loss so far)."""
        losses = estimate_loss(self.raw_model, self.batches, self.cfg.eval_iters, self.rt)
        val = losses.get("val")
        for split, value in losses.items():
            if not math.isfinite(value):
                raise self.diverged(f"{split} loss", value, it)
        if self.rt.master:
            self.metrics.log({"kind": "eval", "iter": it, "train_loss": losses["train"], "val_loss": val,
                              "val_ppl": math.exp(val) if val is not None else None})
            val_txt = f", val loss {val:.4f} (ppl {math.exp(val):.2f})" if val is not None else ""
            self.bar.note(f"iter {it}: train loss {losses['train']:.4f}{val_txt}")
        best_val = min(best_val, val if val is not None else losses["train"])
        if it > 0 or it == self.cfg.max_iters:
            self.checkpoint(it, best_val)
        return val, best_val

    def log_step(self, it: int, loss: Any, lr: float, timer: _Timer, tokens_per_iter: int) -> float:
        """The step's loss (checked finite), speed and time left, to metrics and the bar."""
        lossf = _loss_value(loss, self.cfg, self.rt)
        if not math.isfinite(lossf):
            raise self.diverged("train loss", lossf, it)
        dt, steps = timer.lap()
        ms, tok_s = 1000 * dt / steps, tokens_per_iter * steps / dt
        if self.rt.master:
            self.metrics.log({"kind": "train", "iter": it, "loss": lossf, "lr": lr, "ms_per_iter": ms,
                              "tokens_per_s": tok_s})
            left = (self.cfg.max_iters - it) * ms / 1000
            self.bar.step(it, f"loss {lossf:.4f} lr {lr:.2e} {ms:.0f} ms/iter {tok_s / 1000:.1f}k tok/s "
                              f"left {_fmt_time(left)}")
        return lossf


def train_loop(
    cfg: RunConfig,
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    batches: Any,
    rt: Runtime,
    *,
    resume: bool = False,
    progress: bool = True,
    export: Callable[[Any, Path], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``batches`` for ``cfg.max_iters`` optimizer steps.

    Every ``eval_interval`` steps (and at the end): estimate train/val loss, save the
    checkpoint (only if the loss is finite) and export the HF folder via ``export``
    (default :func:`export_hf`). A NaN/inf loss stops the run with a :class:`TrainError`;
    the last good checkpoint stays as it was.
    """
    import torch

    out_dir = Path(cfg.out_dir)
    if rt.master:
        out_dir.mkdir(parents=True, exist_ok=True)
    model.to(rt.device)
    optimizer = configure_optimizer(model, cfg, rt.device_type)
    iter_num, best_val = _resume(checkpoint_path(cfg), model, optimizer, batches, rt) if resume else (0, float("inf"))
    start_iter = iter_num
    run = _Run(cfg, rt, model, optimizer, batches, export or (lambda m, d: export_hf(m, tokenizer, d)),
               Metrics(out_dir, iter_num if resume else None) if rt.master else None,
               Progress(progress and rt.master, cfg.max_iters, iter_num))
    model = _wrap(model, cfg, rt)
    tokens_per_iter = cfg.tokens_per_iter * rt.world_size
    if rt.master:
        run.bar.note(f"training {sum(p.numel() for p in run.raw_model.parameters()) / 1e6:.2f}M parameters on "
                     f"{rt.device} ({rt.dtype}, {torch.get_num_threads()} threads, world size {rt.world_size}), "
                     f"{tokens_per_iter} tokens/iter, out_dir {out_dir}")
    timer, last_loss, last_val = _Timer(), None, None
    try:
        while True:
            if iter_num % cfg.eval_interval == 0 or iter_num == cfg.max_iters:
                # The checkpoint of a resumed run is at start_iter: its eval is already logged.
                if not (resume and iter_num == start_iter):
                    last_val, best_val = run.evaluate(iter_num, best_val)
                timer.restart()
            if iter_num >= cfg.max_iters:
                break
            lr = get_lr(iter_num, cfg)
            loss = train_step(model, optimizer, batches, cfg, rt, lr)
            iter_num += 1
            timer.window += 1
            if iter_num % cfg.log_interval == 0 or iter_num == cfg.max_iters:
                last_loss = run.log_step(iter_num, loss, lr, timer, tokens_per_iter)
            elif rt.master:
                run.bar.step(iter_num)
    finally:
        run.bar.close()
    # Under torchrun no rank returns before rank 0 has written the model: a caller that goes
    # on to load out_dir (RFT after its fine-tune, a script's next step) would find it half there.
    rt.barrier()
    ms_per_iter = 1000 * timer.total / timer.iters if timer.iters else 0.0
    return TrainResult(out_dir=out_dir, iter_num=iter_num, train_loss=last_loss, val_loss=last_val,
                       ms_per_iter=ms_per_iter, tokens_per_s=tokens_per_iter * 1000 / ms_per_iter if ms_per_iter else 0.0,
                       threads=torch.get_num_threads())


# --------------------------------------------------------------------------- entry point


def prepare_tokenizer(cfg: RunConfig, out_dir: Path, resume: bool, rt: Runtime) -> PreTrainedTokenizerBase:
    """The configured tokenizer folder, the one a resumed run already trained, or a new one
    trained on the data (by rank 0; the other ranks wait and load it)."""
    from mgpt.llm.train.data import data_format
    from mgpt.llm.train.tokenizer import load_tokenizer, train_tokenizer

    if cfg.tokenizer.path:
        return load_tokenizer(cfg.tokenizer.path)
    if resume:
        return load_tokenizer(out_dir)
    if rt.master:
        from mgpt.llm.train.data import check_data_file

        check_data_file(cfg.data.path)  # "missing data file" before "cannot train a tokenizer"
        fmt = data_format(cfg.data.path, cfg.data.format)
        corpus = cfg.data.path
        if fmt == "chat" and Path(corpus).suffix != ".jsonl":
            raise TrainError("data.format = 'chat' needs a .jsonl file to train a tokenizer on; set tokenizer.path")
        train_tokenizer(corpus, out_dir, kind=cfg.tokenizer.kind, vocab_size=cfg.tokenizer.vocab_size)
    rt.barrier()
    return load_tokenizer(out_dir)


def pretrain(cfg: RunConfig, *, resume: bool = False, progress: bool = True) -> TrainResult:
    """Train a tokenizer (unless given), tokenize the data and pretrain a model from scratch."""
    import torch

    require_checkpoint(cfg, resume)
    rt = setup_runtime(cfg)
    out_dir = Path(cfg.out_dir)
    if rt.master:
        out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)  # same init on every rank (DDP also broadcasts rank 0's weights)
    tokenizer = prepare_tokenizer(cfg, out_dir, resume, rt)
    batches = build_batches(cfg, tokenizer, out_dir, rt)
    model = build_model(cfg, tokenizer)
    return train_loop(cfg, model, tokenizer, batches, rt, resume=resume, progress=progress)

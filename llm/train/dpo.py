"""Direct Preference Optimization on passing/failing answers to the same prompt.

The DPO loss (Rafailov et al. 2023, eq. 7) for a prompt x, a chosen answer y_w (passed
the hidden tests) and a rejected one y_l (failed them)::

    loss = -log sigmoid(beta * ((log pi(y_w|x) - log ref(y_w|x)) - (log pi(y_l|x) - log ref(y_l|x))))

where log pi(y|x) is the sum of the answer tokens' log-probabilities under the policy and
ref is the model we started from: a frozen copy of it, or, with ``reinforce.lora``, the
same network with the adapter switched off (no second copy in memory). At step 0 the
policy is the reference, so the loss is exactly log 2.

Why our own ~40 lines and not TRL's ``DPOTrainer``: TRL brings its own trainer
(``transformers.Trainer``), dataset format, config class and checkpoint layout; ours
already has the run config, the chat encoding with assistant-only labels, bf16 autocast,
DDP and the metrics file. The loss itself is four lines (:func:`dpo_loss`) and tested
against a hand-computed value, so a dependency would add more surface than it saves.

Preference pairs come as JSONL, one ``{"messages": [...prompt...], "chosen": "...", "rejected":
"..."}`` per line (:func:`read_preference_pairs`); :func:`preference_pairs_from_samples` makes
them from checked samples (:func:`mgpt.llm.train.rft.collect_samples`).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from mgpt.llm.train.config import RunConfig
from mgpt.llm.train.errors import TrainError

if TYPE_CHECKING:
    import torch

    from mgpt.llm.train.rft import Sample

__all__ = ["DpoResult", "dpo", "dpo_loss", "encode_answer", "pad_batch", "preference_pairs_from_samples",
           "read_preference_pairs", "sequence_logps"]


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean DPO loss over a batch of (B,) sequence log-probs, and the (B,) implicit reward margins."""
    import torch.nn.functional as F

    margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))  # (B,)
    return -F.logsigmoid(margin).mean(), margin.detach()


def token_logps(model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, T) log-probability of each target y[t] after x[..t]; 0 where y is -100 (not an answer token)."""
    import torch

    logits = model(input_ids=x, use_cache=False).logits.float()  # (B, T, V)
    logp = torch.log_softmax(logits, dim=-1).gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return logp * (y != -100)


def sequence_logps(model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) sum of the answer tokens' log-probabilities: log pi(answer | prompt)."""
    return token_logps(model, x, y).sum(-1)


def encode_answer(tokenizer: Any, messages: list[dict[str, str]], answer: str, block_size: int,
                  keep: str = "end") -> tuple[list[int], list[int]]:
    """Inputs x and next-token labels y (-100 off the answer) of prompt + answer, cut to block_size."""
    from mgpt.llm.train.data import encode_chat

    ids, labels = encode_chat(tokenizer, [*messages, {"role": "assistant", "content": answer}])
    x, y = ids[:-1], labels[1:]
    x, y = (x[-block_size:], y[-block_size:]) if keep == "end" else (x[:block_size], y[:block_size])
    if all(t == -100 for t in y):
        raise TrainError(f"an answer has no token within block_size {block_size}; raise block_size")
    return x, y


def pad_batch(rows: Sequence[tuple[list[int], list[int]]], pad_id: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (B, T) inputs and labels; causal attention never lets a real token see a pad."""
    import torch

    T = max(len(x) for x, _ in rows)
    x = torch.full((len(rows), T), pad_id, dtype=torch.long)
    y = torch.full((len(rows), T), -100, dtype=torch.long)
    for b, (xs, ys) in enumerate(rows):
        x[b, : len(xs)] = torch.tensor(xs)
        y[b, : len(ys)] = torch.tensor(ys)
    return x.to(device), y.to(device)


def preference_pairs_from_samples(samples: Sequence[Sample],
                                  messages_of: Callable[[str], list[dict[str, str]]],
                                  per_task: int = 4) -> list[dict]:
    """Up to ``per_task`` (passed, failed) pairs per task, each answer text used once per side
    where it can be; tasks whose samples all passed or all failed give none."""
    pairs = []
    for task in dict.fromkeys(s.task for s in samples):
        good = list(dict.fromkeys(s.answer for s in samples if s.task == task and s.passed))
        bad = list(dict.fromkeys(s.answer for s in samples if s.task == task and not s.passed))
        if not good or not bad:
            continue
        n = min(per_task, max(len(good), len(bad)))
        pairs += [{"task": task, "messages": messages_of(task), "chosen": good[i % len(good)],
                   "rejected": bad[i % len(bad)]} for i in range(n)]
    return pairs


def read_preference_pairs(path: str | Path) -> list[dict]:
    """Preference pairs (messages, chosen, rejected) from JSONL; a bad line is an error naming it."""
    p = Path(path)
    if not p.is_file():
        raise TrainError(f"pairs file not found: {p}")
    pairs = []
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise TrainError(f"{p}, line {lineno}: not valid JSON ({e.msg})") from None
        if not (isinstance(row, dict) and isinstance(row.get("messages"), list)
                and isinstance(row.get("chosen"), str) and isinstance(row.get("rejected"), str)):
            raise TrainError(f"{p}, line {lineno}: expected {{\"messages\": [...], \"chosen\": str, \"rejected\": str}}")
        pairs.append(row)
    if not pairs:
        raise TrainError(f"no preference pairs in {p}")
    return pairs


@dataclass
class DpoResult:
    out_dir: Path
    model_dir: Path
    """A standard HF folder of the trained policy (merged, with reinforce.lora)."""
    pairs: int
    steps: int
    first_loss: float
    last_loss: float
    last_accuracy: float
    """Share of the last batch whose chosen answer the policy prefers more than the reference does."""


def reference_of(policy: Any, lora: bool, logps: Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor]
                 = sequence_logps) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The reference's log-probs (``logps``: per sequence for DPO, per token for GRPO): the
    LoRA-disabled base, or a frozen copy taken now."""
    import torch

    if lora:
        def ref(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            with torch.no_grad(), policy.disable_adapter():
                return logps(policy, x, y)
        return ref
    frozen = copy.deepcopy(policy).eval().requires_grad_(False)

    def ref(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return logps(frozen, x, y)
    return ref


def prepare_training(model: Any, cfg: RunConfig, rt: Any) -> tuple[Any, Any, Any]:
    """What DPO and GRPO set up alike: the optimizer at ``reinforce.lr``, the model to call
    (DDP-wrapped under torchrun), and the metrics file (the master rank's only, else None)."""
    from mgpt.llm.train.pretrain import Metrics, configure_optimizer

    opt_cfg = cfg.model_copy(deep=True)
    opt_cfg.optim.lr = cfg.reinforce.lr
    optimizer = configure_optimizer(model, opt_cfg, rt.device_type)
    train_model = model
    if rt.ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(model, device_ids=[rt.local_rank] if rt.device_type == "cuda" else None)
    metrics = None
    if rt.master:
        Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
        metrics = Metrics(Path(cfg.out_dir), None)
    return optimizer, train_model, metrics


def optimizer_step(loss: Any, model: Any, optimizer: Any, cfg: RunConfig, what: str, step: int) -> None:
    """Backward, clip, step: one DPO or GRPO update. A loss that is not finite stops the run
    with what to change."""
    import torch

    if not math.isfinite(loss.item()):
        raise TrainError(f"{what} loss is {loss.item()} at step {step}: lower reinforce.lr (now {cfg.reinforce.lr})")
    loss.backward()
    if cfg.optim.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def load_policy(cfg: RunConfig) -> tuple[Any, Any]:
    """The model to train (with a LoRA adapter when ``reinforce.lora``) and its tokenizer."""
    from mgpt.llm.train.sft import check_block_size, load_model_folder

    model, tokenizer = load_model_folder(cfg.init_from)
    check_block_size(model, cfg.block_size)
    if cfg.reinforce.lora:
        from mgpt.llm.train.lora import add_lora

        model.config._name_or_path = str(Path(cfg.init_from).resolve())
        model = add_lora(model, cfg)
    return model, tokenizer


def save_policy(model: Any, tokenizer: Any, cfg: RunConfig) -> Path:
    """Save the policy in out_dir; with LoRA the adapter there and the merged model in out_dir/merged."""
    from mgpt.llm.train.pretrain import export_hf, quiet_hf, unwrap_model

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = unwrap_model(model)
    if not cfg.reinforce.lora:
        export_hf(model, tokenizer, out)
        return out
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    merged = copy.deepcopy(model).merge_and_unload()
    with quiet_hf():
        merged.save_pretrained(out / "merged")
    tokenizer.save_pretrained(out / "merged")
    return out / "merged"


def dpo(cfg: RunConfig, pairs: Sequence[dict], *, progress: bool = True,
        log: Callable[[str], None] = print) -> DpoResult:
    """Train ``cfg.init_from`` with DPO on ``pairs`` for ``reinforce.steps`` steps of ``batch_size`` pairs."""
    import torch

    from mgpt.llm.train.pretrain import setup_runtime

    if not pairs:
        raise TrainError("no preference pairs: every task's samples all passed or all failed; "
                         "sample more (reinforce.k) or more tasks")
    r = cfg.reinforce
    rt = setup_runtime(cfg)
    torch.manual_seed(cfg.seed)
    model, tokenizer = load_policy(cfg)
    model.to(rt.device)
    ref_logps = reference_of(model, r.lora)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    encoded = [(encode_answer(tokenizer, p["messages"], p["chosen"], cfg.block_size, cfg.data.keep),
                encode_answer(tokenizer, p["messages"], p["rejected"], cfg.block_size, cfg.data.keep))
               for p in pairs]
    mine = encoded[rt.rank::rt.world_size] or encoded  # rank-sharded, as a DistributedSampler would
    optimizer, train_model, metrics = prepare_training(model, cfg, rt)
    gen = torch.Generator().manual_seed(cfg.seed + rt.rank)
    first = last = acc = math.nan
    model.train()
    for step in range(1, r.steps + 1):
        ix = torch.randint(len(mine), (min(cfg.batch_size, len(mine)),), generator=gen).tolist()
        # chosen rows first, then rejected: one forward pass for both, (2B, T)
        x, y = pad_batch([mine[i][0] for i in ix] + [mine[i][1] for i in ix], pad, rt.device)
        B = len(ix)
        with rt.autocast():
            logps = sequence_logps(train_model, x, y)
            ref = ref_logps(x, y)
            loss, margin = dpo_loss(logps[:B], logps[B:], ref[:B], ref[B:], r.beta)
        optimizer_step(loss, model, optimizer, cfg, "DPO", step)
        last, acc = loss.item(), (margin > 0).float().mean().item()
        first = last if step == 1 else first
        if rt.master:
            metrics.log({"kind": "dpo", "iter": step, "loss": last, "accuracy": acc,
                         "margin": margin.mean().item()})
            if progress and (step % cfg.log_interval == 0 or step == r.steps):
                log(f"dpo step {step}/{r.steps}: loss {last:.4f}, chosen preferred in {acc:.0%} of the batch")
    model_dir = save_policy(model, tokenizer, cfg) if rt.master else Path(cfg.out_dir)
    rt.barrier()
    return DpoResult(Path(cfg.out_dir), model_dir, len(pairs), r.steps, first, last, acc)

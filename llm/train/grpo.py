"""GRPO: policy gradient from test rewards with group-relative advantages (Shao et al. 2024).

Each step takes one training task (tasks are dealt to ranks in turn), samples a group of
``reinforce.k`` answers from the current policy, rewards each from the hidden tests
(:attr:`mgpt.llm.train.rft.Sample.reward`: 1 for a pass, else half the share of tests
passed), and normalises the rewards within the group::

    A_i = (r_i - mean(r)) / (std(r) + eps)            the same A_i for every token of answer i

The loss per answer token t is the clipped policy-gradient term of PPO plus a KL penalty
to the reference model (the k3 estimator, always >= 0)::

    ratio = pi(t) / pi_old(t)
    loss_t = -min(ratio * A, clip(ratio, 1 - clip, 1 + clip) * A) + kl_coef * (ref/pi - log(ref/pi) - 1)

averaged over an answer's tokens, then over the group. One update per group, so pi_old
is the policy that sampled (its log-probs, detached): ratio is 1 in value and its
gradient is that of REINFORCE with the group baseline; the clip only acts if a later
change does several updates per group. A group whose answers all score the same has
A = 0 and teaches nothing but the KL term; the step still runs (under DDP every rank must
take part in every backward).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from mgpt.llm.train.config import RunConfig
from mgpt.llm.train.errors import TrainError

if TYPE_CHECKING:
    import torch

    from mgpt.llm.eval.tasks import CodeTask
    from mgpt.llm.train.rft import Check, Extract, Sampler

__all__ = ["GrpoResult", "group_advantages", "grpo", "grpo_loss"]


def group_advantages(rewards: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """(G,) rewards of one group -> (G,) advantages of mean 0 and std 1 (all 0 if the rewards are equal)."""
    centred = rewards - rewards.mean()
    return centred / (rewards.std(unbiased=False) + eps)


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor,
              advantages: torch.Tensor, clip: float, kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The GRPO loss of (B, T) token log-probs under the policy, the sampling policy and the
    reference, (B, T) answer-token mask and (B,) advantages; also the mean KL per token."""
    import torch

    mask = mask.float()
    ratio = torch.exp(logp - old_logp)
    a = advantages.unsqueeze(-1)  # (B, 1): one advantage for every token of an answer
    policy = -torch.minimum(ratio * a, torch.clamp(ratio, 1 - clip, 1 + clip) * a)
    log_r = ref_logp - logp
    kl = torch.exp(log_r) - log_r - 1  # k3: unbiased, >= 0
    per_token = policy + kl_coef * kl
    per_answer = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return per_answer.mean(), ((kl * mask).sum() / mask.sum().clamp(min=1)).detach()


@dataclass
class GrpoResult:
    out_dir: Path
    model_dir: Path
    steps: int
    mean_reward: float
    """Mean reward over all sampled answers of the run (on the policy as it trained)."""
    first_rewards: float
    last_rewards: float
    """Mean reward of the first and of the last quarter of the steps."""


def grpo(cfg: RunConfig, tasks: Sequence[CodeTask], *, check: Check, extract: Extract, sample: Sampler | None = None,
         progress: bool = True, log: Callable[[str], None] = print) -> GrpoResult:
    """Train ``cfg.init_from`` with GRPO on ``tasks`` for ``reinforce.steps`` groups."""
    import torch

    from mgpt.llm.train.dpo import (encode_answer, load_policy, optimizer_step, pad_batch, prepare_training, reference_of,
                      save_policy, token_logps)
    from mgpt.llm.train.pretrain import setup_runtime
    from mgpt.llm.train.rft import check_answer, hf_sampler, prompt_messages

    if not tasks:
        raise TrainError("no tasks to sample (check the split, reinforce.families and reinforce.tasks)")
    r = cfg.reinforce
    if r.k < 2:
        raise TrainError("grpo needs groups of at least 2 answers: set reinforce.k >= 2")
    sample = sample or hf_sampler(r.temperature, r.max_new_tokens)
    rt = setup_runtime(cfg)
    torch.manual_seed(cfg.seed + rt.rank)  # different samples on each rank
    model, tokenizer = load_policy(cfg)
    model.to(rt.device)
    ref_token_logps = reference_of(model, r.lora, token_logps)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    optimizer, train_model, metrics = prepare_training(model, cfg, rt)
    step_rewards: list[float] = []
    for step in range(1, r.steps + 1):
        task = tasks[((step - 1) * rt.world_size + rt.rank) % len(tasks)]
        messages = prompt_messages(task)
        answers = sample(model, tokenizer, messages, r.k)
        samples = [check_answer(task, a, check, extract) for a in answers]
        rewards = torch.tensor([s.reward for s in samples], dtype=torch.float32, device=rt.device)
        adv = group_advantages(rewards)
        x, y = pad_batch([encode_answer(tokenizer, messages, a, cfg.block_size, cfg.data.keep) for a in answers],
                         pad, rt.device)
        mask = y != -100
        with rt.autocast():
            logp = token_logps(train_model, x, y)
            ref = ref_token_logps(x, y)
            loss, kl = grpo_loss(logp, logp.detach(), ref, mask, adv, r.clip, r.kl_coef)
        optimizer_step(loss, model, optimizer, cfg, "GRPO", step)
        mean_r = rewards.mean().item()
        step_rewards.append(mean_r)
        if rt.master:
            metrics.log({"kind": "grpo", "iter": step, "task": task.id, "loss": loss.item(), "kl": kl.item(),
                         "reward": mean_r, "passed": sum(s.passed for s in samples)})
            if progress and (step % cfg.log_interval == 0 or step == r.steps):
                log(f"grpo step {step}/{r.steps} ({task.id}): mean reward {mean_r:.2f}, "
                    f"{sum(s.passed for s in samples)}/{r.k} passed, loss {loss.item():.4f}, kl {kl.item():.4f}")
    model_dir = save_policy(model, tokenizer, cfg) if rt.master else Path(cfg.out_dir)
    rt.barrier()
    q = max(1, len(step_rewards) // 4)
    return GrpoResult(Path(cfg.out_dir), model_dir, r.steps, sum(step_rewards) / len(step_rewards),
                      sum(step_rewards[:q]) / q, sum(step_rewards[-q:]) / q)

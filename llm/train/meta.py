"""Reptile meta-learning (Nichol, Achiam & Schulman 2018): an initialization that adapts fast.

Reptile is first-order MAML without the second-order terms and without a support/query
split: for each task of a meta-batch, copy the initialization ``phi``, take ``k`` optimizer
steps on that task (weights ``W_i``), then move ``phi`` toward the adapted weights::

    phi <- phi + outer_lr * mean_i(W_i - phi)

Tasks come from *families* of small sequence transformations over an alphabet of ``V``
symbols: a family is an operation (copy, reverse, rotate by one) composed with a shift
cipher whose key is the family's own (``y_t = (op(x)_t + key) mod V``). A family is
learnable from a few examples, but only by adapting; held-out families pair operations
and keys in combinations never trained on.

Evaluation, on held-out families and over several seeds: loss and token accuracy after
0, 1, 5 and 20 adaptation steps from (a) the meta-learned initialization, (b) the plain
base (same random start), (c) the base fine-tuned on the union of the training families
for as many gradient steps as meta-training took (the honest baseline). Only trainable
parameters take part, so with ``meta.lora`` the adapters are meta-learned on a frozen base.

:func:`maml_sine_check` is second-order MAML on sine regression (``torch.func``,
``create_graph``), a check that the first-order shortcut is a fair stand-in on a toy problem.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgpt.llm.train.config import RunConfig
from mgpt.llm.train.errors import TrainError

if TYPE_CHECKING:
    import torch

__all__ = ["Family", "MetaCurves", "families", "format_curves", "maml_sine_check", "reptile_step", "run_meta"]

OPS = ("copy", "reverse", "rotate")
VOCAB = 16  # symbols; then SEP and a padding id
SEP = VOCAB


@dataclass(frozen=True)
class Family:
    """One task family: ``op`` then a shift cipher with ``key``."""

    op: str
    key: int

    def apply(self, xs: list[int]) -> list[int]:
        ys = {"copy": xs, "reverse": xs[::-1], "rotate": xs[1:] + xs[:1]}[self.op]
        return [(y + self.key) % VOCAB for y in ys]


def families(seed: int, n_train: int, n_eval: int) -> tuple[list[Family], list[Family]]:
    """Disjoint train and held-out families, drawn from all op x key combinations."""
    every = [Family(op, k) for op in OPS for k in range(VOCAB)]
    if n_train + n_eval > len(every):
        raise TrainError(f"meta.train_families + meta.eval_families must be at most {len(every)}")
    random.Random(seed).shuffle(every)
    return every[:n_train], every[n_train:n_train + n_eval]


def sample_batch(family: Family, n: int, seq_len: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 2L+1) token ids ``x SEP y`` and (n, 2L+1) labels: -100 except the y positions."""
    import torch

    x = torch.randint(0, VOCAB, (n, seq_len), generator=gen)
    y = torch.tensor([family.apply(row) for row in x.tolist()])
    ids = torch.cat([x, torch.full((n, 1), SEP), y], dim=1)
    labels = torch.full_like(ids, -100)
    labels[:, seq_len + 1:] = y
    return ids, labels


def task_loss(model: Any, ids: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Cross-entropy on the answer tokens (predicted from the token before each), and accuracy."""
    import torch.nn.functional as F

    device = next(model.parameters()).device
    ids, labels = ids.to(device), labels.to(device)
    logits = model(input_ids=ids).logits[:, :-1]  # (B, T-1, V+2): position t predicts t+1
    target = labels[:, 1:]
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100)
    mask = target != -100
    acc = (logits.argmax(-1)[mask] == target[mask]).float().mean().item()
    return loss, acc


def build_meta_model(cfg: RunConfig, seed: int) -> Any:
    """A small GPT-2 from ``cfg.model`` over the task alphabet (plus LoRA adapters with ``meta.lora``)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from mgpt.llm.train.pretrain import quiet_hf

    torch.manual_seed(seed)
    m = cfg.model
    config = GPT2Config(vocab_size=VOCAB + 2, n_positions=2 * cfg.meta.seq_len + 1, n_embd=m.n_embd,
                        n_layer=m.n_layer, n_head=m.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        activation_function="gelu", bos_token_id=SEP, eos_token_id=SEP, pad_token_id=VOCAB + 1)
    with quiet_hf():
        model = GPT2LMHeadModel(config)
    if cfg.meta.lora:
        from mgpt.llm.train.lora import add_lora

        model = add_lora(model, cfg)
    from mgpt.llm.train.embed import train_device

    return model.to(train_device(cfg))


def _params(model: Any) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def _inner_optimizer(params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    import torch

    # Adam with beta1 = 0, as in the Reptile paper's experiments: per-weight step sizes without
    # momentum carried from one task's steps into the meta-update.
    return torch.optim.Adam(params, lr=lr, betas=(0.0, 0.999))


def adapt(model: Any, family: Family, steps: int, cfg: RunConfig, gen: torch.Generator) -> None:
    """``steps`` optimizer steps on fresh batches of ``family`` (in place)."""
    params = _params(model)
    opt = _inner_optimizer(params, cfg.meta.inner_lr)
    for _ in range(steps):
        ids, labels = sample_batch(family, cfg.batch_size, cfg.meta.seq_len, gen)
        loss, _ = task_loss(model, ids, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def reptile_step(model: Any, tasks: list[Family], cfg: RunConfig, gen: torch.Generator) -> float:
    """One meta-update: adapt a copy of the init to each task, move the init toward their mean.

    Returns the size of the move (L2 norm of ``outer_lr * mean(W_i - phi)``).
    """
    import torch

    params = _params(model)
    phi = [p.detach().clone() for p in params]
    delta = [torch.zeros_like(p) for p in params]
    for family in tasks:
        with torch.no_grad():
            for p, p0 in zip(params, phi):
                p.copy_(p0)
        adapt(model, family, cfg.meta.inner_steps, cfg, gen)
        with torch.no_grad():
            for d, p, p0 in zip(delta, params, phi):
                d += (p - p0) / len(tasks)
    with torch.no_grad():
        for p, p0, d in zip(params, phi, delta):
            p.copy_(p0 + cfg.meta.outer_lr * d)
    return math.sqrt(sum(float((cfg.meta.outer_lr * d).pow(2).sum()) for d in delta))


def finetune_union(model: Any, train: list[Family], steps: int, cfg: RunConfig, gen: torch.Generator) -> None:
    """The honest baseline: ordinary training on batches mixing all training families."""
    import torch

    params = _params(model)
    opt = torch.optim.Adam(params, lr=cfg.meta.inner_lr)
    per = max(1, cfg.batch_size // len(train))
    for _ in range(steps):
        chosen = [train[int(i)] for i in torch.randint(0, len(train), (max(1, cfg.batch_size // per),), generator=gen)]
        parts = [sample_batch(f, per, cfg.meta.seq_len, gen) for f in chosen]
        ids, labels = torch.cat([a for a, _ in parts]), torch.cat([b for _, b in parts])
        loss, _ = task_loss(model, ids, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def adaptation_curve(model: Any, held: list[Family], cfg: RunConfig, seed: int) -> dict[int, tuple[float, float]]:
    """Mean (loss, accuracy) over held-out families after each of ``meta.eval_steps`` steps,
    each family adapted from the same starting weights; the model is restored afterwards."""
    import torch

    params = _params(model)
    start = [p.detach().clone() for p in params]
    wanted = sorted(set(cfg.meta.eval_steps))
    sums = {s: [0.0, 0.0] for s in wanted}
    for fi, family in enumerate(held):
        gen = torch.Generator().manual_seed(seed * 1000 + fi)
        test_ids, test_labels = sample_batch(family, 256, cfg.meta.seq_len, torch.Generator().manual_seed(99 + fi))
        with torch.no_grad():
            for p, p0 in zip(params, start):
                p.copy_(p0)
        done = 0
        opt = _inner_optimizer(params, cfg.meta.inner_lr)
        for s in wanted:
            for _ in range(s - done):
                ids, labels = sample_batch(family, cfg.batch_size, cfg.meta.seq_len, gen)
                loss, _ = task_loss(model, ids, labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            done = s
            with torch.no_grad():
                loss, acc = task_loss(model, test_ids, test_labels)
            sums[s][0] += loss.item() / len(held)
            sums[s][1] += acc / len(held)
    with torch.no_grad():
        for p, p0 in zip(params, start):
            p.copy_(p0)
    return {s: (v[0], v[1]) for s, v in sums.items()}


@dataclass
class MetaCurves:
    """Per start ('meta', 'base', 'union'): per step, one (loss, accuracy) per seed."""

    steps: list[int]
    curves: dict[str, dict[int, list[tuple[float, float]]]] = field(default_factory=dict)
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)


def run_meta(cfg: RunConfig, *, seeds: int = 1, progress: bool = True) -> MetaCurves:
    """Meta-train (``max_iters`` Reptile steps) and compare adaptation curves, per seed.

    Saves the last seed's meta-learned model in ``cfg.out_dir`` (a standard HF folder;
    the adapters alone with ``meta.lora``) with ``meta_curves.json``.
    """
    import json

    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    result = MetaCurves(steps=sorted(set(cfg.meta.eval_steps)), config=cfg.meta.model_dump())
    model = None
    for s in range(seeds):
        seed = cfg.seed + s
        train, held = families(seed, cfg.meta.train_families, cfg.meta.eval_families)
        gen = torch.Generator().manual_seed(seed)
        starts: dict[str, Any] = {"base": build_meta_model(cfg, seed)}
        model = build_meta_model(cfg, seed)
        rng = random.Random(seed)
        for it in range(cfg.max_iters):
            k = min(cfg.meta.tasks_per_batch, len(train))
            move = reptile_step(model, rng.sample(train, k), cfg, gen)
            if progress and (it % cfg.log_interval == 0 or it == cfg.max_iters - 1):
                print(f"seed {seed} meta-iter {it}: step norm {move:.4f}", flush=True)
        starts["meta"] = model
        union = build_meta_model(cfg, seed)
        finetune_union(union, train, cfg.max_iters * cfg.meta.tasks_per_batch * cfg.meta.inner_steps, cfg, gen)
        starts["union"] = union
        for name in ("meta", "base", "union"):
            curve = adaptation_curve(starts[name], held, cfg, seed)
            for step, pair in curve.items():
                result.curves.setdefault(name, {}).setdefault(step, []).append(pair)
            if progress:
                print(f"seed {seed} {name}: " + ", ".join(f"{st}: {l:.3f}/{a:.2f}" for st, (l, a) in curve.items()),
                      flush=True)
    result.seconds = time.perf_counter() - t0
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if model is not None:
        from mgpt.llm.train.pretrain import quiet_hf

        with quiet_hf():
            model.save_pretrained(out)
    (out / "meta_curves.json").write_text(json.dumps(
        {"steps": result.steps, "curves": {n: {str(k): v for k, v in c.items()} for n, c in result.curves.items()},
         "seconds": result.seconds, "seeds": seeds, "config": result.config}, indent=2), encoding="utf-8")
    return result


def _mean_sd(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.3f}"


def format_curves(r: MetaCurves) -> str:
    """A table: per start, held-out loss and accuracy (mean ± sd over seeds) after each step count."""
    head = "| start | " + " | ".join(f"loss @{s}" for s in r.steps) + " | " + " | ".join(f"acc @{s}" for s in r.steps) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(r.steps))]
    for name in ("meta", "union", "base"):
        c = r.curves.get(name, {})
        lines.append(f"| {name} | " + " | ".join(_mean_sd([l for l, _ in c[s]]) for s in r.steps) + " | "
                     + " | ".join(_mean_sd([a for _, a in c[s]]) for s in r.steps) + " |")
    return "\n".join(lines)


# -- second-order MAML on sine regression (a check of the first-order method) -----------------


def _sine_task(gen: torch.Generator) -> tuple[float, float]:
    import torch

    amp = float(torch.empty(1).uniform_(0.1, 5.0, generator=gen))
    phase = float(torch.empty(1).uniform_(0.0, math.pi, generator=gen))
    return amp, phase


def _sine_batch(task: tuple[float, float], n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    x = torch.empty(n, 1).uniform_(-5.0, 5.0, generator=gen)
    return x, task[0] * torch.sin(x + task[1])


def _sine_net(seed: int) -> torch.nn.Module:
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(1, 40), torch.nn.ReLU(), torch.nn.Linear(40, 40), torch.nn.ReLU(),
                               torch.nn.Linear(40, 1))


def maml_inner(net: torch.nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
               steps: int, lr: float, second_order: bool) -> dict[str, torch.Tensor]:
    """``steps`` SGD steps as a function of ``params``; with ``second_order`` the graph through
    the steps is kept (``create_graph``), so the meta-gradient includes the Hessian terms."""
    import torch
    from torch.func import functional_call

    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(functional_call(net, params, (x,)), y)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=second_order)
        params = {k: v - lr * (g if second_order else g.detach()) for (k, v), g in zip(params.items(), grads)}
    return params


def maml_sine_check(*, meta_iters: int = 300, seed: int = 0, inner_lr: float = 0.01, k: int = 1,
                    tasks_per_batch: int = 5, shots: int = 10) -> dict[str, dict[int, float]]:
    """Second-order MAML, first-order MAML and Reptile on sine regression (Finn et al. 2017's
    toy): held-out MSE after 0, 1 and 10 SGD steps on ``shots`` points, mean over 50 tasks."""
    import torch
    from torch.func import functional_call

    results: dict[str, dict[int, float]] = {}
    for method in ("maml2", "fomaml", "reptile", "scratch"):
        net = _sine_net(seed)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for _ in range(meta_iters if method != "scratch" else 0):
            opt.zero_grad(set_to_none=True)
            params = dict(net.named_parameters())
            if method == "reptile":
                delta = {n: torch.zeros_like(p) for n, p in params.items()}
                for _ in range(tasks_per_batch):
                    task = _sine_task(gen)
                    x, y = _sine_batch(task, shots, gen)
                    adapted = maml_inner(net, {n: p.detach().requires_grad_() for n, p in params.items()}, x, y, max(k, 5), inner_lr,
                                         False)
                    for n in delta:
                        delta[n] += (params[n].detach() - adapted[n].detach()) / tasks_per_batch
                for n, p in params.items():
                    p.grad = delta[n]  # Adam on the Reptile direction, as in the paper's sine runs
            else:
                total = 0.0
                for _ in range(tasks_per_batch):
                    task = _sine_task(gen)
                    xs, ys = _sine_batch(task, shots, gen)
                    xq, yq = _sine_batch(task, shots, gen)
                    adapted = maml_inner(net, params, xs, ys, k, inner_lr, method == "maml2")
                    total = total + torch.nn.functional.mse_loss(functional_call(net, adapted, (xq,)), yq)
                (total / tasks_per_batch).backward()
            opt.step()
        eval_gen = torch.Generator().manual_seed(10_000 + seed)
        curve = {0: 0.0, 1: 0.0, 10: 0.0}
        for _ in range(50):
            task = _sine_task(eval_gen)
            xs, ys = _sine_batch(task, shots, eval_gen)
            xq, yq = _sine_batch(task, 200, eval_gen)
            for steps in curve:
                adapted = maml_inner(net, {n: p.detach().requires_grad_() for n, p in net.named_parameters()},
                                     xs, ys, steps, inner_lr, False)
                with torch.no_grad():
                    curve[steps] += torch.nn.functional.mse_loss(functional_call(net, adapted, (xq,)), yq).item() / 50
        results[method] = curve
    return results

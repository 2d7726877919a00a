"""Learning from test results on the embedded base model: pass@1 before and after RFT and DPO.

One RFT iteration per seed on a handful of training tasks of the code bank (k answers
each, checked in the sandbox, passing ones fine-tuned on), then DPO from the same
checked samples; greedy pass@1 on a small held-out subset (test split) for the base model,
the RFT model and the DPO model, all in one run. Tiny on purpose: a shared 2-core CPU
generates a few tokens per second.

    PYTHONPATH=. python3 benchmarks/bench_reinforce.py --model /tmp/local_home/models/smollm2-135m-instruct \
        --train-tasks 4 --eval-tasks 6 --k 4 --max-new-tokens 200 --seeds 1

Writes a JSON summary (``--out``, default runs/bench_reinforce/summary.json) and prints a
markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def greedy_sampler(max_new_tokens: int):
    """rft's sampler signature, greedy: one decoded answer repeated ``k`` times."""

    def sample(model, tokenizer, messages, k):
        from mgpt.llm.eval.batch_sampling import SampleRequest, generate_batched

        return generate_batched(model, tokenizer, [SampleRequest(messages, k, 0.0, max_new_tokens)])[0]

    return sample


def pass_at_1(model_dir, tasks, max_new_tokens: int, check, extract) -> tuple[float, list[str]]:
    from mgpt.llm.train.rft import collect_samples
    from mgpt.llm.train.sft import load_model_folder

    model, tok = load_model_folder(model_dir)
    model.eval()
    samples = collect_samples(model, tok, tasks, sample=greedy_sampler(max_new_tokens), check=check,
                              extract=extract, k=1)
    return sum(s.passed for s in samples) / len(samples), [s.task for s in samples if s.passed]


TOY_TASKS = ["digit_sum", "transpose_matrix", "count_vowels"]


def sampled_pass_rate(model_dir, tasks, n: int, max_new_tokens: int, check, extract, seed: int,
                      temperature: float) -> float:
    """Share of ``n`` sampled answers per task that pass: pass@1 at ``temperature`` estimated as c/n."""
    import torch

    from mgpt.llm.train.rft import collect_samples, hf_sampler
    from mgpt.llm.train.sft import load_model_folder

    torch.manual_seed(seed)
    model, tok = load_model_folder(model_dir)
    samples = collect_samples(model, tok, tasks, sample=hf_sampler(temperature, max_new_tokens), check=check,
                              extract=extract, k=n)
    return sum(s.passed for s in samples) / len(samples)


def toy(args) -> None:
    """A tiny char-level model trained from scratch on three bank tasks, half of its examples
    the reference and half the wrong solution, so it passes about half the time; then one RFT
    round and, separately, DPO from the same checked samples, per seed."""
    import torch

    from mgpt.llm.parsing import extract_code
    from mgpt.llm.eval.tasks import load_tasks
    from mgpt.llm.train.config import load_config
    from mgpt.llm.train.dpo import dpo, preference_pairs_from_samples
    from mgpt.llm.train.pretrain import pretrain
    from mgpt.llm.train.rft import Sample, prompt_messages, rft
    from mgpt.llm.eval.code_sandbox import sandbox_check

    torch.set_num_threads(2)
    by_id = {t.id: t for t in load_tasks("train")}
    tasks = [by_id[i] for i in TOY_TASKS]
    check = lambda t, c: sandbox_check(t, c, timeout=20)  # noqa: E731
    out = args.out / "toy"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for t in tasks:
        for code in (t.reference, t.wrong):
            rows.append({"messages": [*prompt_messages(t), {"role": "assistant", "content": f"```python\n{code}```"}]})
    (out / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows * 4))
    t0 = time.perf_counter()
    base = load_config(None, {
        "data.path": str(out / "chat.jsonl"), "data.val_fraction": 0.0, "data.keep": "end", "out_dir": str(out / "base"),
        "device": "cpu", "threads": 2, "model.n_layer": 2, "model.n_head": 4, "model.n_embd": 64, "block_size": 640,
        "batch_size": 8, "max_iters": args.toy_iters, "eval_interval": args.toy_iters, "eval_iters": 2,
        "log_interval": 50, "optim.lr": 3e-3, "optim.min_lr": 3e-4, "schedule.warmup_iters": 20, "seed": 0})
    if args.toy_reuse and (out / "base" / "config.json").is_file():
        print(f"toy base reused from {out / 'base'}", flush=True)
    else:
        pretrain(base, progress=False)
        print(f"toy base trained in {time.perf_counter() - t0:.0f}s", flush=True)
    n, mnt = args.k * 2, 120
    before = sampled_pass_rate(out / "base", tasks, n, mnt, check, extract_code, seed=0, temperature=args.toy_temperature)
    print(f"toy base: sampled pass rate {before:.3f} ({n} per task)", flush=True)
    runs = []
    for seed in args.seeds:
        cfg = load_config(None, {
            "init_from": str(out / "base"), "out_dir": str(out / f"rft_seed{seed}"), "device": "cpu", "threads": 2,
            "seed": seed, "batch_size": 4, "block_size": 640, "eval_iters": 2, "log_interval": 10,
            "data.keep": "end", "optim.weight_decay": 0.0, "reinforce.k": args.k, "reinforce.temperature": args.toy_temperature,
            "reinforce.max_new_tokens": mnt, "reinforce.lr": 1e-3, "reinforce.steps": args.toy_steps, "reinforce.beta": 0.1})
        res = rft(cfg, tasks, check=check, extract=extract_code, progress=False)
        it = res.iterations[0]
        row = {"seed": seed, "rft_sampled_pass_rate": it.pass_rate, "kept": it.kept,
               "loss_before": it.loss_before, "loss_after": it.loss_after}
        if it.model_dir:
            row["after_rft"] = sampled_pass_rate(it.model_dir, tasks, n, mnt, check, extract_code, seed=100 + seed,
                                                 temperature=args.toy_temperature)
        samples = [Sample(**json.loads(x)) for x in (out / f"rft_seed{seed}" / "iter_1" / "samples.jsonl")
                   .read_text().splitlines()]
        pairs = preference_pairs_from_samples(samples, lambda i: prompt_messages(by_id[i]), per_task=args.k)
        row["dpo_pairs"] = len(pairs)
        if pairs:
            dcfg = cfg.model_copy(deep=True)
            dcfg.out_dir = str(out / f"dpo_seed{seed}")
            dcfg.reinforce.lr = args.toy_dpo_lr
            dres = dpo(dcfg, pairs, progress=False)
            row["dpo_loss"] = [round(dres.first_loss, 4), round(dres.last_loss, 4)]
            row["after_dpo"] = sampled_pass_rate(dres.model_dir, tasks, n, mnt, check, extract_code, seed=100 + seed,
                                                 temperature=args.toy_temperature)
        if args.toy_grpo_steps:
            from mgpt.llm.train.grpo import grpo

            gcfg = cfg.model_copy(deep=True)
            gcfg.out_dir = str(out / f"grpo_seed{seed}")
            gcfg.reinforce.steps, gcfg.reinforce.lr = args.toy_grpo_steps, args.toy_grpo_lr
            gres = grpo(gcfg, tasks, check=check, extract=extract_code, progress=False)
            row["grpo_reward"] = [round(gres.first_rewards, 3), round(gres.last_rewards, 3)]
            row["after_grpo"] = sampled_pass_rate(gres.model_dir, tasks, n, mnt, check, extract_code, seed=100 + seed,
                                                  temperature=args.toy_temperature)
        print(row, flush=True)
        runs.append(row)
    summary = {"toy_tasks": TOY_TASKS, "dpo_lr": args.toy_dpo_lr, "before": before, "runs": runs, "seconds": time.perf_counter() - t0}
    for key in ("after_rft", "after_dpo", "after_grpo"):
        vals = [r[key] for r in runs if key in r]
        if vals:
            summary[key] = {"mean": statistics.mean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="/tmp/local_home/models/smollm2-135m-instruct")
    ap.add_argument("--families", nargs="*", default=["lists", "math"])
    ap.add_argument("--train-tasks", type=int, default=4)
    ap.add_argument("--eval-tasks", type=int, default=6)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=200)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seeds", type=int, nargs="*", default=[1])
    ap.add_argument("--no-dpo", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("runs/bench_reinforce"))
    ap.add_argument("--toy", action="store_true", help="a tiny model trained from scratch instead (minutes)")
    ap.add_argument("--toy-temperature", type=float, default=0.7, help="--toy: sampling temperature")
    ap.add_argument("--toy-iters", type=int, default=300, help="--toy: pretraining steps of the tiny model")
    ap.add_argument("--toy-dpo-lr", type=float, default=1e-3, help="--toy: DPO learning rate")
    ap.add_argument("--toy-grpo-steps", type=int, default=0, help="--toy: also run GRPO for this many steps")
    ap.add_argument("--toy-grpo-lr", type=float, default=1e-4, help="--toy: GRPO learning rate")
    ap.add_argument("--toy-reuse", action="store_true", help="--toy: reuse OUT/toy/base if it is there")
    ap.add_argument("--toy-steps", type=int, default=15, help="--toy: RFT and DPO steps")
    args = ap.parse_args()
    if args.toy:
        return toy(args)

    import torch

    from mgpt.llm.parsing import extract_code
    from mgpt.llm.eval.tasks import load_tasks
    from mgpt.llm.train.config import load_config
    from mgpt.llm.train.dpo import dpo, preference_pairs_from_samples
    from mgpt.llm.train.rft import Sample, prompt_messages, rft
    from mgpt.llm.eval.code_sandbox import sandbox_check

    torch.set_num_threads(2)
    train = load_tasks("train", args.families)[: args.train_tasks]
    held = load_tasks("test", args.families)[: args.eval_tasks]
    check = lambda t, c: sandbox_check(t, c, timeout=20)  # noqa: E731
    t0 = time.perf_counter()
    base_p1, base_ok = pass_at_1(args.model, held, args.max_new_tokens, check, extract_code)
    print(f"base pass@1 {base_p1:.3f} on {len(held)} held-out tasks ({base_ok}) [{time.perf_counter() - t0:.0f}s]",
          flush=True)
    runs = []
    for seed in args.seeds:
        out = args.out / f"seed{seed}"
        cfg = load_config(None, {
            "init_from": args.model, "out_dir": str(out / "rft"), "device": "cpu", "threads": 2, "seed": seed,
            "batch_size": args.batch_size, "block_size": 512, "eval_iters": 2, "log_interval": 1, "data.keep": "end",
            "optim.weight_decay": 0.0, "reinforce.k": args.k, "reinforce.iterations": 1,
            "reinforce.temperature": 0.8, "reinforce.max_new_tokens": args.max_new_tokens,
            "reinforce.lr": args.lr, "reinforce.steps": args.steps})
        t1 = time.perf_counter()
        res = rft(cfg, train, check=check, extract=extract_code, progress=True,
                  log=lambda m: print(m, flush=True))
        it = res.iterations[0]
        row = {"seed": seed, "train_pass_rate": it.pass_rate, "kept": it.kept, "tasks_solved": it.tasks_solved,
               "loss_before": it.loss_before, "loss_after": it.loss_after, "rft_seconds": time.perf_counter() - t1}
        if it.model_dir:
            row["rft_pass@1"], row["rft_solved"] = pass_at_1(it.model_dir, held, args.max_new_tokens, check,
                                                             extract_code)
        else:
            row["rft_pass@1"] = None  # nothing passed: no fine-tune, the model is the base
        print(row, flush=True)
        if not args.no_dpo:
            samples = [Sample(**{k: v for k, v in json.loads(line).items()})
                       for line in (out / "rft" / "iter_1" / "samples.jsonl").read_text().splitlines()]
            by_id = {t.id: t for t in train}
            pairs = preference_pairs_from_samples(samples, lambda t: prompt_messages(by_id[t]), per_task=args.k)
            row["dpo_pairs"] = len(pairs)
            if pairs:
                dcfg = cfg.model_copy(deep=True)
                dcfg.out_dir = str(out / "dpo")
                dcfg.reinforce.steps = args.steps
                dres = dpo(dcfg, pairs, progress=True, log=lambda m: print(m, flush=True))
                row["dpo_loss"] = [dres.first_loss, dres.last_loss]
                row["dpo_pass@1"], row["dpo_solved"] = pass_at_1(dres.model_dir, held, args.max_new_tokens, check,
                                                                 extract_code)
            print(row, flush=True)
        runs.append(row)
    summary = {"model": args.model, "train_tasks": [t.id for t in train], "held_out": [t.id for t in held],
               "k": args.k, "max_new_tokens": args.max_new_tokens, "steps": args.steps, "lr": args.lr,
               "base_pass@1": base_p1, "base_solved": base_ok, "runs": runs,
               "seconds": time.perf_counter() - t0, "python": sys.version.split()[0]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    vals = [r["rft_pass@1"] for r in runs if r.get("rft_pass@1") is not None]
    if len(vals) > 1:
        print(f"RFT pass@1 mean {statistics.mean(vals):.3f} sd {statistics.stdev(vals):.3f}")


if __name__ == "__main__":
    main()

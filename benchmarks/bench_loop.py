"""The learning loop on the embedded model: base -> distil -> RFT -> DPO, measured after each step.

Per seed (its own training shuffle and its own sampling), starting from ``--model``:

0. **base**: the model as given.
1. **distil**: full fine-tune (``mgpt.llm.train.sft``) on (i) the golden transcripts' model
   calls, converted by ``mgpt.llm.train.distil`` with some runs held out (split by run), and
   (ii) expert demonstrations: the task bank's TRAIN split, the engineer's prompt answered
   by the reference solution in one ```python block. Never a test-split task. With
   ``--transcripts``, (iii) more recorded runs, e.g. ``benchmarks/record_planning.py``'s:
   the company's planning on the base model under the grammar (no held-out call).
2. **rft** (from 1): ``--k`` answers per train task at ``--rft-temperature``, each checked
   against the hidden tests, the distinct passing ones fine-tuned on.
3. **dpo** (from 2): ``--k`` fresh answers per train task from the step-2 model; passing vs
   failing answers to the same prompt are the DPO pairs (``mgpt.llm.train.dpo``).

After every step, two measures, nothing constrained:

- **pass@1** on the held-out TEST split (64 tasks; the ``dates`` and ``recursion`` families
  are never trained on), estimated as the mean of c/n over ``--n`` sampled answers per task
  at ``--temperature``, plus greedy pass@1; split into seen and held-out families;
- **structured first-try rate**: the company's structured questions (the product manager's
  PRD request for each of a list of ideas none of the golden runs had, built by the real
  ``WritePRD`` action, plus the PRD/design/task calls of the golden runs held out of
  distillation), answered once, unconstrained, and parsed with the parser and pydantic
  schema the roles use (``extract_json`` + ``model_validate``): the share that parses
  (the ideas, the request and the check: ``mgpt.workflows.structured_eval``).

Sampling (``mgpt.llm.eval.batch_sampling.BatchSampler``): on CUDA, HF ``generate`` batched: each model is asked everything in one call
(eval answers, greedy rows, structured answers, the next step's training samples; each row
its own temperature and length), and the base model once for all seeds. On CPU,
FastLlama (int8 weights by default: int4 would erase the fine-tunes, see ``--quant``) one
answer at a time, so CPU runs are small. Checking:
``mgpt.llm.eval.code_sandbox.quick_check`` (one sandboxed subprocess with a deadline per
answer, no pytest start-up), ``--workers`` at a time, scored by
``mgpt.llm.eval.code.score_answers``; the sandbox is ``$MGPT_SANDBOX``
(bubblewrap by default; ``none`` where there is no bubblewrap), printed and recorded. An
eval's checks run on a background thread while the next step trains; ``--merge`` joins
runs of different seeds made by separate processes (``benchmarks/gpu_loop.sh``).

    # the GPU run (H200, 16 cores): the exact command is in docs/benchmarks.md
    MGPT_SANDBOX=none PYTHONUNBUFFERED=1 python3 benchmarks/bench_loop.py --model smol.gguf \
        --device cuda --seeds 1 2 3 --workers 16 --max-minutes 6 --preflight --out OUT --artifacts ART

    # a small CPU run (docs/benchmarks.md has the measured one)
    PYTHONPATH=. python3 benchmarks/bench_loop.py --model /tmp/local_home/models/smollm2-135m-instruct \
        --device cpu --seeds 1 --test-tasks 6 --train-tasks 8 --n 2 --k 2 --ideas 2 --struct-n 1 ...

``--model`` is an HF folder or the embedded model's GGUF file (converted first, to the
same weights ``mgpt models pull`` writes). Writes ``OUT/summary.json`` after every
evaluation (a run stopped by ``--max-minutes`` keeps what it did) and ``OUT/table.md`` at
the end; under ``--artifacts`` (default OUT) the distil data (``distil/``), per seed the
checked samples (``rft_samples.jsonl``, ``dpo_samples.jsonl``), ``rft_train.jsonl`` and
``dpo_pairs.jsonl``, and the preflight's own run. Models go under ``--work`` (default a
temporary folder) and are deleted once used.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Callable

STEPS = ("base", "distil", "rft", "dpo")
GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class OutOfTime(Exception):
    """--max-minutes is up: stop cleanly with what is done."""


class Clock:
    def __init__(self, max_minutes: float | None):
        self.start = time.monotonic()
        self.deadline = self.start + max_minutes * 60 if max_minutes else None

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def check(self, what: str) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise OutOfTime(f"--max-minutes reached before {what}")


# --------------------------------------------------------------------------- checking


def checker(args) -> Callable:
    """The check of one answer's code: the quick sandboxed run of the task's tests."""
    from mgpt.llm.eval.code_sandbox import quick_check

    return lambda task, code: quick_check(task, code, timeout=args.timeout)


def check_samples(tasks, answers: list[list[str]], args) -> list:
    """Training samples: every answer (``answers[i]`` for ``tasks[i]``) checked; rft.Sample each."""
    from mgpt.llm.parsing import extract_code
    from mgpt.llm.train.rft import check_answers

    return check_answers(tasks, answers, check=checker(args), extract=extract_code, workers=args.workers)


def code_scores(tasks, sampled: list[list[str]], greedy: list[list[str]] | None, args) -> dict:
    """pass@1 (mean c/n of the sampled answers) and greedy pass@1 on ``tasks``, by family."""
    from mgpt.llm.eval.code import score_answers
    from mgpt.llm.eval.tasks import HELD_OUT_FAMILIES
    from mgpt.llm.parsing import extract_code

    score = lambda answers: score_answers(tasks, answers, check=checker(args), extract=extract_code,  # noqa: E731
                                          workers=args.workers)
    r = score(sampled)
    per_task = {t.id: t.pass_at["pass@1"] for t in r.tasks}
    samples = [s for t in r.tasks for s in t.samples]
    res = {"pass1": r.pass_at["pass@1"], "n": args.n, "temperature": args.temperature, "per_task": per_task,
           "no_code_block": sum(bool(s.error) for s in samples) / len(samples)}
    seconds = r.seconds
    if greedy is not None:
        g = score(greedy)
        res["greedy_pass1"] = g.pass_at["pass@1"]
        res["greedy_per_task"] = {t.id: t.correct for t in g.tasks}
        seconds += g.seconds
    res["by_family"] = {f: round(v["pass@1"], 4) for f, v in r.by_family.items()}
    for name, keep in (("seen_families", lambda t: t.family not in HELD_OUT_FAMILIES),
                       ("held_out_families", lambda t: t.family in HELD_OUT_FAMILIES)):
        vals = [per_task[t.id] for t in tasks if keep(t)]
        res[name] = {"tasks": len(vals), "pass1": statistics.mean(vals) if vals else None}
    res["check_seconds"] = round(seconds, 1)
    return res


def make_sampler(model_dir: Path, args, clock: Clock):
    """The package's batched sampler for ``model_dir`` with this run's settings; it stops at
    --max-minutes between batches."""
    from mgpt.llm.eval.batch_sampling import BatchSampler, SamplerOptions

    options = SamplerOptions(kind=args.sampler, device="cuda" if args.device == "cuda" else "cpu",
                             quant=None if args.quant == "none" else args.quant, threads=args.threads,
                             gen_batch=args.gen_batch)
    return BatchSampler(model_dir, options, before=clock.check)


def evaluate_model(sampler, tasks, struct_items: list[dict], args, seed: int, *, groups: int = 1,
                   extra: list = ()) -> tuple[Callable[[], list[dict]], list[list[str]]]:
    """Everything one model is asked, in one ``sample`` call: the eval's answers ``groups``
    times over (the base model is evaluated once for every seed: each seed gets its own
    disjoint samples; greedy answers are the same for all) plus the ``extra`` requests
    (training samples). Returns the extra requests' answers and ``score``, which checks the
    eval's answers and returns one eval per group: the caller may run it in the background
    (:class:`Background`) while the next model trains, since nothing downstream needs it."""
    from mgpt.llm.eval.batch_sampling import SampleRequest
    from mgpt.llm.train.rft import prompt_messages

    n, sn, nt, ns = args.n, args.struct_n, len(tasks), len(struct_items)
    reqs = [SampleRequest(prompt_messages(t), n * groups, args.temperature, args.max_new_tokens) for t in tasks]
    reqs += [SampleRequest(prompt_messages(t), 1, 0.0, args.max_new_tokens) for t in tasks] if args.greedy else []
    reqs += [SampleRequest(it["messages"], sn * groups, args.temperature, args.struct_max_new_tokens) for it in struct_items]
    reqs += [SampleRequest(it["messages"], 1, 0.0, args.struct_max_new_tokens) for it in struct_items] \
        if args.struct_greedy else []
    t0 = time.perf_counter()
    answers = sampler.sample(reqs + list(extra), seed)
    gen_s = round(time.perf_counter() - t0, 1)
    code_s, greedy, rest = answers[:nt], answers[nt:2 * nt] if args.greedy else None, \
        answers[2 * nt if args.greedy else nt:len(reqs)]
    struct_s, struct_g = rest[:ns], rest[ns:] if args.struct_greedy else None

    def score() -> list[dict]:
        evals = []
        for g in range(groups):
            ev = {"code": code_scores(tasks, [a[g * n:(g + 1) * n] for a in code_s], greedy, args)}
            ev["code"]["generate_seconds"] = gen_s  # the whole call, training samples and other groups included
            if struct_items:
                ev["structured"] = structured_scores(struct_items, [a[g * sn:(g + 1) * sn] for a in struct_s],
                                                     struct_g, args)
            evals.append(ev)
        return evals

    return score, answers[len(reqs):]


class Background:
    """Runs the eval scoring (checking every test answer) one job at a time on a thread, so
    the checks overlap the next model's training and sampling; ``wait`` re-raises a job's error."""

    def __init__(self):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")
        self.jobs: list = []
        self.lock = threading.Lock()

    def submit(self, fn) -> None:
        self.jobs.append(self.pool.submit(fn))

    def wait(self) -> None:
        try:
            for job in self.jobs:
                job.result()
        finally:
            self.pool.shutdown(wait=True)


# --------------------------------------------------------------------------- structured answers


def structured_scores(items: list[dict], sampled: list[list[str]], greedy: list[list[str]] | None, args) -> dict:
    """Share of the answers that parse as the roles parse them, first try, no constraint."""
    from mgpt.workflows.structured_eval import parses

    ok = [[parses(a, it["schema"]) for a in group] for it, group in zip(items, sampled)]

    def rate(sel):
        vals = [x for it, g in zip(items, ok) if sel(it) for x in g]
        return statistics.mean(vals) if vals else None

    res = {"rate": rate(lambda it: True), "prompts": len(items), "n": args.struct_n,
           "ideas_rate": rate(lambda it: it["source"].startswith("idea")),
           "golden_rate": rate(lambda it: not it["source"].startswith("idea")),
           "per_prompt": {it["source"]: sum(g) / len(g) for it, g in zip(items, ok)}}
    if greedy is not None:
        res["greedy_rate"] = statistics.mean(parses(a[0], it["schema"]) for it, a in zip(items, greedy))
    return res


# --------------------------------------------------------------------------- training


def train_config(args, seed: int, init_from: Path, out_dir: Path, **over):
    from mgpt.llm.train.config import load_config

    cfg = {"init_from": str(init_from), "out_dir": str(out_dir), "device": args.device, "seed": seed,
           "threads": args.threads, "batch_size": args.batch_size, "block_size": args.block_size,
           "data.keep": "end", "optim.weight_decay": 0.0, "eval_iters": 2, "log_interval": 10,
           "reinforce.k": args.k, "reinforce.temperature": args.rft_temperature,
           "reinforce.max_new_tokens": args.max_new_tokens, "reinforce.timeout": args.timeout}
    cfg.update(over)
    return load_config(None, cfg)


def distil_data(args, out: Path, train_tasks) -> dict:
    """distil/train.jsonl: the golden runs' calls (train runs) + the train split's reference answers."""
    from mgpt.llm.train.distil import distil, expand_transcripts
    from mgpt.llm.train.rft import prompt_messages

    d = distil([str(GOLDEN / "**" / "*.jsonl")], out / "distil", val_fraction=args.golden_val_fraction)
    rows = [json.loads(x) for x in Path(d.train_path).read_text().splitlines()]
    demos = [{"messages": [*prompt_messages(t), {"role": "assistant", "content": f"```python\n{t.reference}```"}],
              "meta": {"source": "taskbank", "task": t.id}} for t in train_tasks]
    recorded, info = [], {}
    if args.transcripts:
        # More recorded runs (e.g. benchmarks/record_planning.py: the company's planning on
        # the base model under the grammar), all for training. The golden runs are in already
        # (a held-out one must not come back in this way), and no held-out call is trained on
        # even when another file holds it too.
        golden = {p.resolve() for p in expand_transcripts([GOLDEN])}
        paths = [p for p in expand_transcripts(args.transcripts) if p.resolve() not in golden]
        if not paths:
            raise SystemExit("--transcripts: every file given is a golden run, which distil uses already")
        r = distil(paths, out / "distil_recorded", val_fraction=0.0)
        held_out = {json.dumps(json.loads(x)["messages"], sort_keys=True)
                    for x in (Path(d.val_path).read_text().splitlines() if d.val_path else [])}
        recorded = [row for row in map(json.loads, Path(r.train_path).read_text().splitlines())
                    if json.dumps(row["messages"], sort_keys=True) not in held_out]
        info = {"recorded_runs": len(r.train_runs), "recorded_examples": len(recorded),
                "recorded_dropped_as_held_out": r.train_examples - len(recorded), "recorded_by_action": r.by_action}
    (out / "distil" / "train_all.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows * args.golden_repeat + demos + recorded))
    return {"golden_train_examples": d.train_examples, "golden_val_examples": d.val_examples,
            "golden_train_runs": [Path(r).name for r in d.train_runs],
            "golden_val_runs": d.val_runs, "task_demos": len(demos), "val_path": d.val_path, **info}


def epochs_to_steps(epochs: float, examples: int, batch: int, most: int) -> int:
    """Steps for about ``epochs`` passes over ``examples``, at most ``most``: a handful of kept
    answers would otherwise be repeated dozens of times."""
    return max(1, min(most, math.ceil(epochs * examples / batch)))


def first_last(out_dir: Path) -> dict:
    """Train and val loss at a run's first and last eval, rounded."""
    from mgpt.llm.train.pretrain import eval_rows

    evals = eval_rows(out_dir)
    if not evals:
        return {}
    keep = lambda r: {k: round(v, 4) for k, v in r.items() if k in ("train_loss", "val_loss") and v is not None}  # noqa: E731
    return {"first": keep(evals[0]), "last": keep(evals[-1])}


# --------------------------------------------------------------------------- the loop


def stats(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"mean": statistics.mean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
            "min": min(vals), "max": max(vals), "seeds": len(vals)}


def aggregate(runs: list[dict]) -> dict:
    agg = {}
    for step in STEPS:
        evs = [r["steps"][step] for r in runs if step in r["steps"]]
        if not evs:
            continue
        agg[step] = {
            "pass1": stats([e["code"]["pass1"] for e in evs]),
            "greedy_pass1": stats([e["code"].get("greedy_pass1") for e in evs]),
            "seen_pass1": stats([e["code"]["seen_families"]["pass1"] for e in evs]),
            "held_out_pass1": stats([e["code"]["held_out_families"]["pass1"] for e in evs]),
            "structured_rate": stats([e["structured"]["rate"] for e in evs if "structured" in e]),
            "structured_greedy_rate": stats([e["structured"].get("greedy_rate") for e in evs if "structured" in e]),
        }
    return agg


def table(summary: dict) -> str:
    """The markdown table for docs/benchmarks.md: mean ± sd (min-max) over seeds, per step."""
    def cell(st):
        if not st:
            return "-"
        if st["seeds"] == 1:
            return f"{st['mean']:.3f}"
        return f"{st['mean']:.3f} ± {st['sd']:.3f} ({st['min']:.3f}-{st['max']:.3f})"

    cols = [("pass@1 (sampled)", "pass1"), ("greedy pass@1", "greedy_pass1"), ("seen families", "seen_pass1"),
            ("held-out families", "held_out_pass1"), ("structured first try", "structured_rate"),
            ("structured, greedy", "structured_greedy_rate")]
    agg = summary.get("aggregate", {})
    cols = [(name, key) for name, key in cols if any(a.get(key) for a in agg.values())] or cols[:1]
    rows = ["| step | " + " | ".join(name for name, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for step, a in agg.items():
        rows.append(f"| {step} | " + " | ".join(cell(a.get(key)) for _, key in cols) + " |")
    return "\n".join(rows) + "\n"


def describe(seed, step: str, ev: dict, args) -> None:
    c = ev["code"]
    log(f"seed {seed} {step}: pass@1 {c['pass1']:.3f}" + (f", greedy {c['greedy_pass1']:.3f}" if args.greedy else "")
        + (f", structured first try {ev['structured']['rate']:.3f}" if "structured" in ev else "")
        + f" (generate {c['generate_seconds']}s, check {c['check_seconds']}s)")


def run_seed(seed: int, args, clock: Clock, test_tasks, train_tasks, struct_items, distil_info: dict, run: dict,
             save, background: Background) -> None:
    """Steps 1-3 for one seed (step 0, the base eval, is done for all seeds by :func:`main`)."""
    from mgpt.llm.eval.batch_sampling import SampleRequest
    from mgpt.llm.train.dpo import dpo, preference_pairs_from_samples
    from mgpt.llm.train.rft import keep_passing, prompt_messages, write_jsonl
    from mgpt.llm.train.sft import sft

    seed_dir = args.artifacts / f"seed{seed}"
    work = args.work / f"seed{seed}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    by_id = {t.id: t for t in train_tasks}
    eval_seed = 10_000 + seed

    def evaluate(step: str, model_dir: Path, train: dict, sample_tag: str | None = None):
        """Eval ``step``'s model and, with ``sample_tag``, draw --k training answers per train
        task from it in the same call; returns the checked training samples."""
        clock.check(f"evaluating {step}")
        log(f"seed {seed}: evaluating {step}" + (f" and sampling for {sample_tag}" if sample_tag else ""))
        sampler = make_sampler(model_dir, args, clock)
        extra = [SampleRequest(prompt_messages(t), args.k, args.rft_temperature, args.max_new_tokens)
                 for t in train_tasks] if sample_tag else []
        score, answers = evaluate_model(sampler, test_tasks, struct_items, args,
                                        eval_seed + 100 * STEPS.index(step), extra=extra)
        sampler.close()

        def finish():
            (ev,) = score()
            ev["train"] = train
            with background.lock:
                run["steps"][step] = ev
            describe(seed, step, ev, args)
            save()

        background.submit(finish)
        if not sample_tag:
            return []
        if args.plumbing:  # preflight only: a toy-length sample passes nothing, and RFT/DPO must still train
            answers = [[*a, f"```python\n{t.reference}```", f"```python\n{t.wrong}```"]
                       for t, a in zip(train_tasks, answers)]
        samples = check_samples(train_tasks, answers, args)
        write_jsonl(seed_dir / f"{sample_tag}_samples.jsonl", [asdict(s) for s in samples])
        log(f"seed {seed} {sample_tag}: {sum(s.passed for s in samples)}/{len(samples)} train samples pass")
        return samples

    # step 1: distil
    clock.check("distil")
    t0 = time.perf_counter()
    val = distil_info["val_path"]
    cfg = train_config(args, seed, args.model, work / "distil", **{
        "data.path": str(args.artifacts / "distil" / "train_all.jsonl"), "data.format": "chat",
        "data.val_path": val, "data.val_fraction": 0.0 if not val else 0.1,
        "max_iters": args.distil_steps, "eval_interval": args.distil_steps,
        "optim.lr": args.distil_lr, "optim.min_lr": args.distil_lr / 10,
        "schedule.warmup_iters": max(1, args.distil_steps // 10)})
    sft(cfg, progress=False)
    train = {"seconds": round(time.perf_counter() - t0, 1), "steps": args.distil_steps,
             "loss": first_last(work / "distil")}
    log(f"seed {seed} distil trained in {train['seconds']}s, loss {train['loss']}")
    samples = evaluate("distil", work / "distil", train, "rft")

    # step 2: RFT from 1, on the step-1 model's passing answers
    kept = keep_passing(samples)
    rft_info = {"sample_pass_rate": sum(s.passed for s in samples) / len(samples), "kept": len(kept),
                "tasks_solved": len({s.task for s in kept})}
    rft_dir = work / "distil"
    if kept:
        write_jsonl(seed_dir / "rft_train.jsonl", [
            {"messages": [*prompt_messages(by_id[s.task]), {"role": "assistant", "content": s.answer}],
             "task": s.task} for s in kept])
        clock.check("the RFT fine-tune")
        t0 = time.perf_counter()
        steps = epochs_to_steps(args.rft_epochs, len(kept), args.batch_size, args.rft_steps)
        cfg = train_config(args, seed, work / "distil", work / "rft", **{
            "data.path": str(seed_dir / "rft_train.jsonl"), "data.format": "chat", "data.val_fraction": 0.0,
            "max_iters": steps, "eval_interval": steps, "optim.lr": args.rft_lr,
            "optim.min_lr": args.rft_lr, "schedule.decay_lr": False})
        sft(cfg, progress=False)
        rft_dir = work / "rft"
        rft_info.update(seconds=round(time.perf_counter() - t0, 1), steps=steps, loss=first_last(rft_dir))
        log(f"seed {seed} rft trained on {len(kept)} answers in {rft_info['seconds']}s")
    else:
        rft_info["skipped"] = "no sample passed: the step-1 model is the step-2 model"
    samples = evaluate("rft", rft_dir, rft_info, "dpo")

    # step 3: DPO from 2, on pass/fail pairs of the step-2 model's answers
    pairs = preference_pairs_from_samples(samples, lambda i: prompt_messages(by_id[i]), per_task=args.pairs_per_task)
    write_jsonl(seed_dir / "dpo_pairs.jsonl", pairs)
    dpo_info = {"sample_pass_rate": sum(s.passed for s in samples) / len(samples), "pairs": len(pairs),
                "tasks": len({p["task"] for p in pairs})}
    dpo_dir = rft_dir
    if pairs:
        clock.check("DPO")
        t0 = time.perf_counter()
        steps = epochs_to_steps(args.dpo_epochs, len(pairs), args.dpo_batch_size, args.dpo_steps)
        cfg = train_config(args, seed, rft_dir, work / "dpo", **{
            "reinforce.steps": steps, "reinforce.lr": args.dpo_lr, "reinforce.beta": args.dpo_beta,
            "batch_size": args.dpo_batch_size})
        res = dpo(cfg, pairs, progress=False)
        dpo_dir = Path(res.model_dir)
        dpo_info.update(seconds=round(time.perf_counter() - t0, 1), steps=steps,
                        loss=[round(res.first_loss, 4), round(res.last_loss, 4)],
                        last_batch_accuracy=round(res.last_accuracy, 3))
        log(f"seed {seed} dpo on {len(pairs)} pairs in {dpo_info['seconds']}s, loss {dpo_info['loss']}")
    else:
        dpo_info["skipped"] = "no task had both a passing and a failing answer: the step-2 model is the step-3 model"
    evaluate("dpo", dpo_dir, dpo_info)
    if not args.keep_models:
        shutil.rmtree(work, ignore_errors=True)


def sandbox_isolation() -> str:
    from mgpt.sandbox.isolation import require

    return require()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=None,
                   help="HF model folder, or a .gguf file (converted first, as `mgpt models pull` does); no hub")
    p.add_argument("--merge", type=Path, nargs="+", default=None, metavar="SUMMARY",
                   help="instead of running: merge the summary.json files of runs of other seeds (e.g. one "
                        "process per seed on one GPU) into OUT/summary.json and OUT/table.md")
    p.add_argument("--out", type=Path, default=Path("runs/bench_loop"))
    p.add_argument("--artifacts", type=Path, default=None,
                   help="training data, checked samples, DPO pairs, the preflight (default: --out)")
    p.add_argument("--work", type=Path, default=None, help="where models go (default: a temporary folder)")
    p.add_argument("--keep-models", action="store_true")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="answers checked at once")
    p.add_argument("--threads", type=int, default=None, help="torch threads on CPU")
    p.add_argument("--max-minutes", type=float, default=None, help="stop cleanly after this long")
    p.add_argument("--test-tasks", type=int, default=None, help="first N test tasks (default all 64)")
    p.add_argument("--train-tasks", type=int, default=None, help="first N train tasks (default all 87)")
    p.add_argument("--n", type=int, default=8, help="eval samples per test task")
    p.add_argument("--temperature", type=float, default=0.6, help="eval sampling temperature")
    p.add_argument("--greedy", action=argparse.BooleanOptionalAction, default=True, help="also greedy pass@1")
    p.add_argument("--max-new-tokens", type=int, default=320)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per checked answer")
    p.add_argument("--ideas", type=int, default=24, help="PRD prompts for the structured eval (of EVAL_IDEAS)")
    p.add_argument("--golden-val-fraction", type=float, default=0.34, help="golden runs held out of distil")
    p.add_argument("--golden-repeat", type=int, default=2,
                   help="copies of each golden call in the distil mix (a few runs next to 87 task demos)")
    p.add_argument("--transcripts", nargs="+", default=None,
                   help="more recorded runs for the distil step (files, folders or globs), all trained on, e.g. "
                        "the base model's own grammar-constrained planning (benchmarks/record_planning.py)")
    p.add_argument("--struct-n", type=int, default=4, help="samples per structured prompt")
    p.add_argument("--struct-max-new-tokens", type=int, default=512)
    p.add_argument("--struct-greedy", action=argparse.BooleanOptionalAction, default=False,
                   help="also a greedy structured answer per prompt")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block-size", type=int, default=2048)
    p.add_argument("--distil-steps", type=int, default=24)
    p.add_argument("--distil-lr", type=float, default=5e-5)
    p.add_argument("--k", type=int, default=8, help="samples per train task for RFT and for DPO pairs")
    p.add_argument("--rft-temperature", type=float, default=0.8)
    p.add_argument("--rft-steps", type=int, default=40, help="at most; fewer for few kept answers (--rft-epochs)")
    p.add_argument("--rft-epochs", type=float, default=3.0)
    p.add_argument("--rft-lr", type=float, default=2e-5)
    p.add_argument("--pairs-per-task", type=int, default=4)
    p.add_argument("--dpo-steps", type=int, default=40, help="at most; fewer for few pairs (--dpo-epochs)")
    p.add_argument("--dpo-epochs", type=float, default=2.0)
    p.add_argument("--dpo-lr", type=float, default=3e-6)
    p.add_argument("--dpo-beta", type=float, default=0.1)
    p.add_argument("--dpo-batch-size", type=int, default=8)
    p.add_argument("--gen-batch", type=int, default=2048, help="sequences per generate call (hf sampler)")
    p.add_argument("--sampler", choices=["auto", "hf", "fast"], default="auto",
                   help="hf: batched HF generate (auto on CUDA); fast: FastLlama one at a time (auto on CPU)")
    p.add_argument("--preflight", action="store_true",
                   help="first run every step at toy size (2 tasks, 1 step each) into OUT/preflight, so a "
                        "broken path fails in a minute, not at the end of a long run")
    p.add_argument("--plumbing", action="store_true",
                   help="(the preflight's) add each train task's reference and wrong solution to the sampled "
                        "answers, so RFT and DPO train even when toy-length samples pass nothing; not a measurement")
    p.add_argument("--quant", choices=["int4", "int8", "none"], default="int8",
                   help="CPU sampling weights. Not int4 for the trained steps: the embedded model's weights "
                        "come from a 4-bit GGUF, and int4 puts a fine-tune's small weight changes back onto "
                        "the base's grid, so the step would measure the base again "
                        "(benchmarks/bench_finetune_quant.py; before 2026-11-30 the CPU runs used int4)")
    args = p.parse_args(argv)
    if args.model is None and not args.merge:
        p.error("--model is required (or --merge to merge runs)")
    return args


PREFLIGHT = ["--plumbing", "--seeds", "1", "--test-tasks", "2", "--train-tasks", "2", "--n", "2", "--k", "2", "--ideas", "1",
             "--struct-n", "1", "--max-new-tokens", "16", "--struct-max-new-tokens", "16", "--distil-steps", "1",
             "--rft-steps", "1", "--dpo-steps", "1", "--batch-size", "2", "--dpo-batch-size", "2"]


def merge(paths: list[Path], out: Path) -> dict:
    """One summary from runs of the same benchmark with disjoint seeds: their runs side by
    side, aggregated over all seeds; per run, where it came from and whether it stopped early."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    seeds = [r["seed"] for part in parts for r in part["runs"]]
    if len(seeds) != len(set(seeds)):
        raise SystemExit(f"--merge: a seed occurs twice ({sorted(seeds)}): merge runs of different seeds")
    keys = ("model", "device", "sandbox", "test_tasks", "train_tasks")
    for part, path in zip(parts[1:], paths[1:]):
        differ = [k for k in keys if part.get(k) != parts[0].get(k)]
        if differ:
            raise SystemExit(f"--merge: {path} differs from {paths[0]} in {', '.join(differ)}: not the same benchmark")
    summary = {**parts[0], "runs": [], "merged_from": [str(p) for p in paths],
               "stopped": "; ".join(f"{p}: {part['stopped']}" for p, part in zip(paths, parts) if part["stopped"]),
               "seconds": max(part.get("seconds", 0) for part in parts)}
    for path, part in zip(paths, parts):
        for r in part["runs"]:
            summary["runs"].append({**r, "from": str(path), "seconds": part.get("seconds")})
    summary["runs"].sort(key=lambda r: r["seed"])
    summary["args"] = {**parts[0]["args"], "seeds": sorted(seeds)}
    summary["aggregate"] = aggregate(summary["runs"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "table.md").write_text(table(summary))
    print(table(summary), flush=True)
    return summary


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    clock = Clock(args.max_minutes)  # --max-minutes covers the preflight too
    tmp = None
    if args.work is None:
        tmp = tempfile.mkdtemp(prefix="mgpt-bench-loop-")
        args.work = Path(tmp)
    try:
        return run_loop(argv, args, clock)
    finally:  # the models (and a converted GGUF) go, however the run ended
        if tmp and not args.keep_models:
            shutil.rmtree(tmp, ignore_errors=True)


def run_loop(argv, args, clock: Clock) -> dict:
    source = args.model
    if args.model.suffix == ".gguf" and args.model.is_file():
        # The embedded model as published (94 MiB, Q4_1), e.g. where its 517 MB HF folder cannot travel.
        from mgpt.llm.local.store import convert_gguf

        log(f"converting {args.model} to an HF folder")
        args.model = convert_gguf(args.model, args.work / "base", progress=log)
    if args.preflight:
        argv = list(sys.argv[1:] if argv is None else argv)
        keep = [a for a in argv if a != "--preflight"]
        keep = [f"--model={args.model}" if a.startswith("--model=") else a for a in keep]
        if "--model" in keep:
            keep[keep.index("--model") + 1] = str(args.model)
        log("preflight: every step at toy size")
        pre_dir = (args.artifacts or args.out) / "preflight"
        left = ["--max-minutes", f"{(clock.deadline - time.monotonic()) / 60:.4f}"] if clock.deadline else []
        pre = main([*keep, *PREFLIGHT, "--out", str(pre_dir), "--artifacts", str(pre_dir), *left])
        if pre["stopped"]:
            raise SystemExit(f"preflight did not finish ({pre['stopped']}): not starting the real run")
        log("preflight passed; the real run starts")
    import torch

    from mgpt.actions.documents import PRD
    from mgpt.llm.eval.tasks import load_tasks
    from mgpt.workflows.structured_eval import EVAL_IDEAS, golden_structured_requests, prd_messages

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.sampler == "auto":
        args.sampler = "hf" if args.device == "cuda" else "fast"
    if args.device == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    isolation = sandbox_isolation()
    log(f"device {args.device}, sandbox {isolation} ({'isolated' if isolation == 'bwrap' else 'NOT isolated'}), "
        f"{args.workers} check workers")
    test_tasks = load_tasks("test")[:args.test_tasks]
    train_tasks = load_tasks("train")[:args.train_tasks]
    args.artifacts = args.artifacts or args.out
    args.out.mkdir(parents=True, exist_ok=True)
    args.artifacts.mkdir(parents=True, exist_ok=True)
    ideas_items = [{"source": f"idea{i}", "messages": prd_messages(idea), "schema": PRD}
                   for i, idea in enumerate(EVAL_IDEAS[:args.ideas])]
    # distil data and the held-out golden runs: the same for every seed (the split is by content)
    distil_info = distil_data(args, args.artifacts, train_tasks)
    struct_items = ideas_items + golden_structured_requests(distil_info["golden_val_runs"])
    summary = {"model": str(source), "device": args.device, "sandbox": isolation,
               "torch": torch.__version__, "python": sys.version.split()[0], "cpus": os.cpu_count(),
               "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "test_tasks": len(test_tasks), "train_tasks": len(train_tasks), "distil_data": distil_info,
               "structured_prompts": [it["source"] for it in struct_items], "runs": [], "stopped": ""}
    if args.device == "cuda":
        summary["gpu"] = torch.cuda.get_device_name(0)

    background = Background()

    def save():
        with background.lock:  # the main thread and the scoring thread both save
            summary["aggregate"] = aggregate(summary["runs"])
            summary["seconds"] = round(clock.elapsed(), 1)
            tmp_path = args.out / "summary.json.tmp"
            tmp_path.write_text(json.dumps(summary, indent=1) + "\n")
            os.replace(tmp_path, args.out / "summary.json")

    runs = [{"seed": seed, "steps": {}} for seed in args.seeds]
    summary["runs"] = runs
    try:
        # step 0 for every seed at once: one call, each seed its own disjoint samples
        clock.check("evaluating base")
        log("evaluating base (all seeds)")
        sampler = make_sampler(args.model, args, clock)
        # the base's samples: its own per seed (group), also when each seed runs in a process of its own
        base_seed = 10_000 + 1000 * (args.seeds[0] - 1)
        score, _ = evaluate_model(sampler, test_tasks, struct_items, args, base_seed, groups=len(args.seeds))
        sampler.close()

        def finish_base():
            evals = score()
            with background.lock:
                for run, ev in zip(runs, evals):
                    run["steps"]["base"] = ev
            for run, ev in zip(runs, evals):
                describe(run["seed"], "base", ev, args)
            save()

        background.submit(finish_base)
        for run in runs:
            run_seed(run["seed"], args, clock, test_tasks, train_tasks, struct_items, distil_info, run, save,
                     background)
    except OutOfTime as e:
        summary["stopped"] = str(e)
        log(f"stopped: {e}")
    finally:
        try:
            background.wait()  # the last evals' checks
        finally:
            save()
    (args.out / "table.md").write_text(table(summary))
    print(table(summary), flush=True)
    log(f"done in {clock.elapsed():.0f}s; summary in {args.out / 'summary.json'}")
    return summary


if __name__ == "__main__":
    main()

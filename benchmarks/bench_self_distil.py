"""Self-distillation from constrained decoding: does the embedded model learn to write a
PRD that parses *without* the grammar, from its own grammar-constrained answers?

The company's first step on a local model is the product manager's PRD, decoded under the
PRD schema's grammar (it always parses). This script records those constrained answers for
``--train-ideas`` ideas (``mgpt.workflows.structured_eval.TRAIN_IDEAS``; the real WritePRD
request, ``prd_messages``), keeps the ones the PRD model accepts, fine-tunes the model on
them (chat SFT, full), and then asks both models for PRDs of the held-out ideas
(``EVAL_IDEAS``, none of them trained on) with NO grammar: the share that ``extract_json``
+ ``PRD.model_validate`` accept on the first try, greedy and sampled, per seed.

    PYTHONPATH=. python3 benchmarks/bench_self_distil.py --model ~/.cache/mgpt/models/smollm2-135m-instruct \
        --seeds 1 2 --train-ideas 16 --eval-ideas 12

``--teacher-unconstrained`` makes the next round of the loop: the teacher is ``--model``
itself with no grammar (say, a model this script already trained), and only its answers
that the PRD model accepts are trained on: rejection sampling with the validator as the
reward (expert iteration on structured answers).

Writes ``--out``/summary.json and prints one line per measurement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from mgpt.workflows.structured_eval import EVAL_IDEAS, TRAIN_IDEAS, parses, prd_answers, prd_format, prd_messages


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def answers(model_dir: Path, ideas: list[str], *, output, temperature: float, seed: int,
            max_new_tokens: int, threads: int | None, decoder: str = "fast-int8") -> list[str]:
    """One PRD answer per idea from the agents' own local backend (``decoder``: the lean
    decoder, int8 weights by default), under ``output``'s grammar (an OutputFormat) or none."""
    from mgpt.llm.local.model import LocalModel

    model = LocalModel(model_dir, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                       threads=threads, decoder=decoder)
    return prd_answers(model, ideas, output=output)


def rate(texts: list[str]) -> float:
    from mgpt.actions.documents import PRD

    return statistics.mean(parses(t, PRD) for t in texts)


# What a score depends on: a resumed run reuses the base's score when the eval's settings
# match, and the other seeds' scores when everything but the seeds matches. (Not the thread
# count: it sets the speed, not the answers beyond rounding.)
_EVAL_ARGS = ("model", "eval_ideas", "max_new_tokens", "temperature", "decoder")
_RUN_ARGS = _EVAL_ARGS + ("train_ideas", "steps", "lr", "batch_size", "block_size", "precision", "recorded",
                          "teacher_unconstrained", "teacher_temperature", "teacher_max_string", "teacher_max_items",
                          "teacher_name_length")


def resumable(path: Path, summary: dict) -> dict:
    """The parts of an earlier summary at `path` that a resumed run may keep."""
    if not path.is_file():
        return {}
    try:
        old = json.loads(path.read_text())
        old_args = old["args"]
    except (ValueError, KeyError, TypeError):
        return {}
    now = summary["args"]
    kept: dict = {}
    if "base" in old and all(old_args.get(k) == now.get(k) for k in _EVAL_ARGS):
        kept["base"] = old["base"]
    if all(old_args.get(k) == now.get(k) for k in _RUN_ARGS):
        kept["seeds"] = old.get("seeds", {})
    return kept


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("runs/bench_self_distil"))
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--train-ideas", type=int, default=len(TRAIN_IDEAS))
    p.add_argument("--eval-ideas", type=int, default=12)
    p.add_argument("--max-new-tokens", type=int, default=640)
    p.add_argument("--temperature", type=float, default=0.6, help="the sampled eval answers")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--block-size", type=int, default=1536)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="training; bf16 autocast is ~2x faster than fp32 on a CPU with avx512_bf16")
    p.add_argument("--recorded", nargs="+", default=None, metavar="TRANSCRIPTS",
                   help="train on the product manager's calls of these recorded runs (e.g. "
                        "benchmarks/record_planning.py's, made under the grammar) instead of "
                        "recording the teacher's answers here; the same data for every seed")
    p.add_argument("--decoder", default="fast-int8",
                   help="the eval's decoder. Not fast-int4: the embedded model's weights come from a "
                        "4-bit GGUF, so int4 snaps a fine-tune's small weight changes back onto the "
                        "base's grid and measures the base model again (docs/benchmarks.md)")
    p.add_argument("--resume", action="store_true",
                   help="reuse a seed's training data and model already in --out (a run cut short)")
    p.add_argument("--teacher-unconstrained", action="store_true",
                   help="the teacher answers without a grammar and only the answers the PRD model accepts "
                        "are kept: rejection sampling with the validator as the reward (expert iteration), "
                        "for a --model that already answers in the schema, e.g. a self-distilled one")
    p.add_argument("--teacher-temperature", type=float, default=0.7)
    p.add_argument("--teacher-max-string", type=int, default=None,
                   help="bound every free string of the teacher's grammar (default: the company's, 1000)")
    p.add_argument("--teacher-max-items", type=int, default=None,
                   help="bound every list of the teacher's grammar (default: the company's, 16)")
    p.add_argument("--teacher-name-length", type=int, default=None,
                   help="bound the teacher's project_name (default: the PRD model's)")
    args = p.parse_args()

    from mgpt.actions.documents import PRD
    from mgpt.llm.local.generate import quantized_decoder
    from mgpt.llm.train.config import load_config
    from mgpt.llm.train.sft import sft

    args.out.mkdir(parents=True, exist_ok=True)
    train_ideas, eval_ideas = TRAIN_IDEAS[:args.train_ideas], EVAL_IDEAS[:args.eval_ideas]
    assert not set(train_ideas) & set(eval_ideas)
    summary: dict = {"model": str(args.model), "args": {k: str(v) for k, v in vars(args).items()},
                     "train_ideas": train_ideas, "eval_ideas": eval_ideas, "seeds": {}}

    def save() -> None:
        (args.out / "summary.json").write_text(json.dumps(summary, indent=1))

    def evaluate(model_dir: Path, seed: int) -> dict:
        greedy = answers(model_dir, eval_ideas, output=None, temperature=0.0, seed=seed,
                         max_new_tokens=args.max_new_tokens, threads=args.threads, decoder=args.decoder)
        sampled = answers(model_dir, eval_ideas, output=None, temperature=args.temperature, seed=seed,
                          max_new_tokens=args.max_new_tokens, threads=args.threads, decoder=args.decoder)
        return {"greedy": rate(greedy), "sampled": rate(sampled), "greedy_answers": greedy,
                "sampled_answers": sampled}

    teacher = prd_format(max_string=args.teacher_max_string, max_items=args.teacher_max_items,
                         name_length=args.teacher_name_length)
    t0 = time.perf_counter()
    previous = resumable(args.out / "summary.json", summary) if args.resume else {}
    summary["seeds"].update({s: r for s, r in previous.get("seeds", {}).items() if int(s) not in args.seeds})
    if "base" in previous:
        base = summary["base"] = previous["base"]
        log(f"base: reused from {args.out / 'summary.json'}")
    else:
        base = summary["base"] = evaluate(args.model, 0)
    log(f"base: unconstrained first try, greedy {base['greedy']:.3f}, sampled {base['sampled']:.3f}")
    save()
    recorded = None
    if args.recorded:
        from mgpt.llm.train.distil import distil

        d = distil(args.recorded, args.out / "recorded", val_fraction=0.0, roles=["ProductManager"])
        rows = [json.loads(x) for x in Path(d.train_path).read_text().splitlines()]
        recorded = [r for r in rows if parses(r["messages"][-1]["content"], PRD)]
        leaked = [i for i in eval_ideas if any(i in m["content"] for r in rows for m in r["messages"])]
        if leaked:
            raise SystemExit(f"--recorded: runs of eval ideas would be trained on: {leaked}")
        summary["recorded"] = {"runs": len(d.train_runs), "examples": d.train_examples, "accepted": len(recorded)}
        log(f"recorded: {len(recorded)} accepted PRD answers from {len(d.train_runs)} runs")
    for seed in args.seeds:
        data = args.out / f"seed{seed}_train.jsonl"
        model_dir = args.out / f"seed{seed}_model"
        resumed = args.resume and data.is_file() and (model_dir / "model.safetensors").is_file()
        if resumed:
            kept = data.read_text().splitlines()
            log(f"seed {seed}: reusing {model_dir} ({len(kept)} training answers)")
        elif recorded is not None:
            kept = recorded
            data.write_text("".join(json.dumps({"messages": r["messages"]}) + "\n" for r in recorded))
        else:
            # The teacher: the same model, under the grammar or (--teacher-unconstrained) with
            # none, sampled so each seed records different answers; only what the PRD model
            # accepts is kept. Its decoder follows its weights: int4 for the embedded model
            # (already on a 4-bit grid), int8 for one mgpt trained (int4 would undo the tuning).
            taught = answers(args.model, train_ideas, output=None if args.teacher_unconstrained else teacher,
                             temperature=args.teacher_temperature, seed=seed, max_new_tokens=args.max_new_tokens,
                             threads=args.threads, decoder=quantized_decoder(args.model))
            kept = [(i, a) for i, a in zip(train_ideas, taught) if parses(a, PRD)]
            log(f"seed {seed}: {len(kept)}/{len(taught)} {'unconstrained' if args.teacher_unconstrained else 'constrained'}"
                " answers accepted")
            if not kept:
                raise SystemExit(f"seed {seed}: no teacher answer was accepted: nothing to train on")
            data.write_text("".join(json.dumps({"messages": prd_messages(i) + [{"role": "assistant", "content": a}]})
                                    + "\n" for i, a in kept))
        t1 = time.perf_counter()
        if not resumed:
            sft(load_config(None, {
                "init_from": str(args.model), "out_dir": str(model_dir), "device": "cpu",
                "seed": seed, "threads": args.threads, "batch_size": args.batch_size, "block_size": args.block_size,
                "data.path": str(data), "data.format": "chat", "data.val_fraction": 0.0, "data.keep": "end",
                "max_iters": args.steps, "eval_interval": args.steps, "eval_iters": 1, "log_interval": 4,
                "optim.lr": args.lr, "optim.min_lr": args.lr / 10, "optim.weight_decay": 0.0,
                "schedule.warmup_iters": 2, "precision": args.precision}), progress=False)
        train_seconds = None if resumed else round(time.perf_counter() - t1, 1)
        trained = evaluate(model_dir, seed)
        trained.update(kept=len(kept), train_seconds=train_seconds, resumed=resumed)
        summary["seeds"][str(seed)] = trained
        log(f"seed {seed}: after self-distillation, greedy {trained['greedy']:.3f}, sampled {trained['sampled']:.3f}")
        save()
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    save()
    log(f"done in {summary['seconds']} s")


if __name__ == "__main__":
    main()

"""Does a fine-tune survive the lean decoder's weight quantization?

The embedded model's weights come from a Q4_1 GGUF: every weight already sits on a 4-bit
grid of 32-weight groups, which is why mgpt's int4 decoder costs it almost nothing
(docs/benchmarks.md, "Quality"). A short fine-tune moves each weight by much less than one
grid step, so quantizing the fine-tuned weights to int4 again can put most of them back on
the base model's values, and the decoder then runs the base model. This script measures
that, with the decoder's own kernels (``FastLlama.logits``), on the answers the model was
fine-tuned on (a chat JSONL such as ``bench_self_distil.py``'s ``seedN_train.jsonl``):

the mean negative log-likelihood per answer token of the base and of the tuned model, for
fp32, int8 and int4 weights, and so how much of the fine-tune's gain (base NLL minus tuned
NLL, fp32) each mode keeps.

    PYTHONPATH=. python3 benchmarks/bench_finetune_quant.py --base ~/.cache/mgpt/models/smollm2-135m-instruct \\
        --tuned runs/bench_self_distil/seed1_model --data runs/bench_self_distil/seed1_train.jsonl --examples 16
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

MODES = (("fp32", None), ("int8", "int8"), ("int4", "int4"))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def answer_nll(fast, rows: list[tuple[list[int], list[int]]]) -> float:
    """Mean negative log-likelihood of the answer tokens (labels not -100) under ``fast``."""
    import torch

    total, count = 0.0, 0
    for x, y in rows:
        logits = fast.logits(x)  # [T, V]: the prediction after each input token
        target = torch.tensor(y)
        keep = target != -100
        total += float(torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="sum"))
        count += int(keep.sum())
    return total / count


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", type=Path, required=True)
    p.add_argument("--tuned", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True, help="chat JSONL of the answers the model was tuned on")
    p.add_argument("--examples", type=int, default=16)
    p.add_argument("--block-size", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = p.parse_args()

    import torch
    from transformers import AutoTokenizer

    from mgpt.llm.local.fastllama import FastLlama
    from mgpt.llm.train.dpo import encode_answer

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.tuned)
    rows = []
    for line in args.data.read_text().splitlines()[: args.examples]:
        messages = json.loads(line)["messages"]
        rows.append(encode_answer(tokenizer, messages[:-1], messages[-1]["content"], args.block_size))
    log(f"{len(rows)} answers, {sum(sum(t != -100 for t in y) for _, y in rows)} answer tokens")
    result: dict = {"base": str(args.base), "tuned": str(args.tuned), "data": str(args.data),
                    "examples": len(rows), "modes": {}}
    print("| weights | base NLL | tuned NLL | gain kept |")
    print("|---|---:|---:|---:|")
    full_gain = None
    for label, quant in MODES:
        nll = {}
        for name, folder in (("base", args.base), ("tuned", args.tuned)):
            fast = FastLlama.from_pretrained(folder, quant=quant, threads=args.threads)  # the LM head as the decoder has it
            nll[name] = answer_nll(fast, rows)
            del fast
        gain = nll["base"] - nll["tuned"]
        full_gain = gain if full_gain is None else full_gain
        result["modes"][label] = {"base_nll": nll["base"], "tuned_nll": nll["tuned"],
                                  "gain_kept": gain / full_gain if full_gain else float("nan")}
        print(f"| {label} | {nll['base']:.3f} | {nll['tuned']:.3f} | {gain / full_gain:.0%} |", flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

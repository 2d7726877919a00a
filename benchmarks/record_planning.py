"""Record the planning half of the company on a local model: one transcript per idea.

For each idea, the real product manager, architect and project manager actions (WritePRD,
WriteDesign, WriteTasks) run one after the other on ``--model`` through a
:class:`mgpt.llm.backends.replay.RecordingModel`, sending the requests the company sends (the
actions build them), and every call goes into ``OUT/<nn>-<slug>.jsonl``. With the grammar on (the default, as the
company runs a local model), each structured answer is decoded under its schema. Only
clean runs stay in OUT: a run in which a role had to ask again (a reply it could not use,
e.g. cut off at ``--max-new-tokens``) or a step failed is moved to ``OUT/rejected/``, so
that distilling OUT trains on accepted first answers only (rejection sampling on the
roles' own parsers).

These transcripts are "runs of the company recorded with a model": ``mgpt train sft
--transcripts 'OUT/*.jsonl'`` distils them, and ``benchmarks/bench_loop.py --transcripts``
adds them to its distillation step (the unconstrained model learns the shapes the grammar
enforced). The ideas are ``mgpt.workflows.structured_eval.TRAIN_IDEAS``, none of them among
the ``EVAL_IDEAS`` that ``bench_loop`` evaluates on; the recording is
``mgpt.workflows.structured_eval.record_planning``.

    PYTHONPATH=. python3 benchmarks/record_planning.py --model ~/.cache/mgpt/models/smollm2-135m-instruct \
        --out runs/planning --ideas 40 --threads 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mgpt.workflows.structured_eval import EVAL_IDEAS, TRAIN_IDEAS, record_planning


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="HF model folder")
    p.add_argument("--out", type=Path, default=Path("runs/planning"))
    p.add_argument("--ideas", type=int, default=len(TRAIN_IDEAS), help="first N of mgpt.workflows.structured_eval.TRAIN_IDEAS")
    p.add_argument("--skip", type=int, default=0, help="start at this idea (to extend a recording)")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-new-tokens", type=int, default=640,
                   help="per answer; an answer cut off here is re-asked, and the run rejected")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--decoder", default=None,
                   help="default: fast-int4, or fast-int8 for a model mgpt's trainer wrote (int4 would "
                        "undo most of its fine-tune)")
    p.add_argument("--no-grammar", action="store_true", help="record the unconstrained model instead")
    args = p.parse_args(argv)

    from mgpt.llm.local.generate import quantized_decoder
    from mgpt.llm.local.model import LocalModel

    ideas = TRAIN_IDEAS[args.skip:args.skip + args.ideas]
    if set(ideas) & set(EVAL_IDEAS):
        raise SystemExit("a training idea is also an eval idea (EVAL_IDEAS)")
    local = LocalModel(args.model, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                       seed=args.seed, threads=args.threads, decoder=args.decoder or quantized_decoder(args.model),
                       constrained=not args.no_grammar)
    record_planning(local, ideas, args.out, start=args.skip, log=log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

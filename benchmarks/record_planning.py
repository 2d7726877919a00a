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
enforced). The ideas are ``bench_self_distil.TRAIN_IDEAS``, none of them among the ideas
``bench_loop`` evaluates on.

    PYTHONPATH=. python3 benchmarks/record_planning.py --model ~/.cache/mgpt/models/smollm2-135m-instruct \
        --out runs/planning --ideas 40 --threads 2
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_loop import IDEAS, log  # noqa: E402
from bench_self_distil import TRAIN_IDEAS  # noqa: E402


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


async def plan(model, idea: str) -> list[str]:
    """Run WritePRD -> WriteDesign -> WriteTasks for ``idea`` on ``model``; the steps done."""
    from mgpt.actions.base import ActionContext
    from mgpt.actions.planning import WriteDesign, WritePRD, WriteTasks
    from mgpt.agents.message import Message
    from mgpt.llm.backends.client import LLM
    from mgpt.roles.software import Architect, ProductManager, ProjectManager

    done: list[str] = []
    news = [Message(content=idea)]
    for role, action in ((ProductManager, WritePRD()), (Architect, WriteDesign()), (ProjectManager, WriteTasks())):
        action.bind(LLM(model, role=role.name))
        ctx = ActionContext(role_name=role.name, role_profile=role.profile, role_goal=role.goal, news=list(news))
        payload = await action.run(ctx)
        news.append(Message(content=type(payload).__name__, payload=payload, cause_by=type(action)))
        done.append(type(action).__name__)
    return done


def record(model, ideas: list[str], out: Path, *, start: int = 0) -> int:
    """Plan each idea on ``model`` into ``out/<nn>-<slug>.jsonl``; unclean runs go to
    ``out/rejected/``. Returns how many runs were clean."""
    from mgpt.llm.backends.replay import RecordingModel, Transcript, TranscriptHeader
    from mgpt.workflows.company_eval import RETRY_MARK

    out.mkdir(parents=True, exist_ok=True)
    t0, clean = time.perf_counter(), 0
    for i, idea in enumerate(ideas, start=start):
        path = out / f"{i:03d}-{slug(idea)}.jsonl"
        rec = RecordingModel(model, path, header=TranscriptHeader(model=model.name, idea=idea))
        t1, why = time.perf_counter(), ""
        try:
            done = asyncio.run(plan(rec, idea))
        except Exception as e:  # noqa: BLE001 - one idea's failure is kept aside and the next goes on
            why = f"stopped: {type(e).__name__}: {str(e)[:200]}"
        finally:
            rec.close()
        retries = sum(m.role == "user" and m.content.startswith(RETRY_MARK)
                      for call in Transcript.load(path).calls for m in call.request)
        why = why or (f"{retries} re-ask(s)" if retries else "")
        if why:
            (out / "rejected").mkdir(exist_ok=True)
            path.replace(out / "rejected" / path.name)
            log(f"{path.name}: rejected after {time.perf_counter() - t1:.0f}s ({why})")
        else:
            clean += 1
            log(f"{path.name}: {', '.join(done)} in {time.perf_counter() - t1:.0f}s")
    log(f"{clean}/{len(ideas)} clean runs in {time.perf_counter() - t0:.0f}s; transcripts in {out}")
    return clean


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="HF model folder")
    p.add_argument("--out", type=Path, default=Path("runs/planning"))
    p.add_argument("--ideas", type=int, default=len(TRAIN_IDEAS), help="first N of bench_self_distil.TRAIN_IDEAS")
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
    if set(ideas) & set(IDEAS):
        raise SystemExit("a training idea is also an eval idea (bench_loop.IDEAS)")
    local = LocalModel(args.model, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                       seed=args.seed, threads=args.threads, decoder=args.decoder or quantized_decoder(args.model),
                       constrained=not args.no_grammar)
    record(local, ideas, args.out, start=args.skip)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

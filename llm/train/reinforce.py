"""``mgpt train rft / dpo / grpo``: the trainers, the task bank and the sandbox wired together.

The trainers (:mod:`mgpt.llm.train.rft`, ``dpo``, ``grpo``) take the checker as a
parameter; this module passes :func:`mgpt.llm.eval.code_sandbox.sandbox_check` and
:func:`mgpt.llm.parsing.extract_code` in, as ``mgpt eval code`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from mgpt.llm.parsing import extract_code
from mgpt.llm.eval.tasks import CodeTask, load_tasks
from mgpt.llm.train.config import RunConfig
from mgpt.llm.train.errors import TrainError
from mgpt.llm.eval.code_sandbox import sandbox_check

__all__ = ["bank_tasks", "run_dpo", "run_grpo", "run_reinforce", "run_rft"]


def bank_tasks(cfg: RunConfig, split: str = "train") -> list[CodeTask]:
    """The task bank's ``split``, narrowed by ``reinforce.families`` and ``reinforce.tasks``."""
    try:
        tasks = load_tasks(split, cfg.reinforce.families)
    except ValueError as exc:
        raise TrainError(str(exc)) from None
    return tasks[: cfg.reinforce.tasks] if cfg.reinforce.tasks else tasks


def _check(cfg: RunConfig) -> Callable:
    return lambda task, code: sandbox_check(task, code, timeout=cfg.reinforce.timeout)


def run_rft(cfg: RunConfig, *, split: str = "train", sample=None, progress: bool = True, log=print):
    from mgpt.llm.train.rft import rft

    return rft(cfg, bank_tasks(cfg, split), check=_check(cfg), extract=extract_code, sample=sample,
               progress=progress, log=log)


def run_grpo(cfg: RunConfig, *, split: str = "train", sample=None, progress: bool = True, log=print):
    from mgpt.llm.train.grpo import grpo

    return grpo(cfg, bank_tasks(cfg, split), check=_check(cfg), extract=extract_code, sample=sample,
                progress=progress, log=log)


def run_dpo(cfg: RunConfig, *, pairs: Path | None = None, split: str = "train", sample=None,
            progress: bool = True, log=print):
    """DPO on ``pairs`` (JSONL), or on pairs made by sampling ``reinforce.k`` answers per task from
    the model and checking them (written to ``out_dir/pairs.jsonl`` and ``samples.jsonl`` first)."""
    from dataclasses import asdict

    from mgpt.llm.train.dpo import dpo, preference_pairs_from_samples, read_preference_pairs
    from mgpt.llm.train.rft import collect_samples, hf_sampler, prompt_messages, write_jsonl
    from mgpt.llm.train.sft import load_model_folder

    if pairs is not None:
        rows = read_preference_pairs(pairs)
    else:
        import torch

        tasks = bank_tasks(cfg, split)
        if not tasks:
            raise TrainError("no tasks to sample (check reinforce.families and reinforce.tasks)")
        by_id = {t.id: t for t in tasks}
        torch.manual_seed(cfg.seed)
        model, tokenizer = load_model_folder(cfg.init_from)
        r = cfg.reinforce
        samples = collect_samples(model, tokenizer, tasks, sample=sample or hf_sampler(r.temperature, r.max_new_tokens),
                                  check=_check(cfg), extract=extract_code, k=r.k)
        del model
        rows = preference_pairs_from_samples(samples, lambda t: prompt_messages(by_id[t]), per_task=r.k)
        out = Path(cfg.out_dir)
        write_jsonl(out / "samples.jsonl", [asdict(s) for s in samples])
        write_jsonl(out / "pairs.jsonl", rows)
        if progress:
            log(f"sampled {len(samples)} answers, {sum(s.passed for s in samples)} passed; "
                f"{len(rows)} (passed, failed) pair(s) -> {out / 'pairs.jsonl'}")
    return dpo(cfg, rows, progress=progress, log=log)


def run_reinforce(method: str, cfg: RunConfig, **options: Any):
    """The CLI's one entry point: ``method`` is rft, dpo or grpo."""
    runners = {"rft": run_rft, "dpo": run_dpo, "grpo": run_grpo}
    return runners[method](cfg, **options)

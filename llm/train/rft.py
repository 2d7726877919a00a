"""Rejection-sampling fine-tuning (expert iteration): learn from the answers that passed.

Each iteration samples ``reinforce.k`` answers per training task from the current model,
runs each against the task's hidden tests, keeps the passing ones (one per distinct code
block), and fine-tunes on them with the SFT loop (:func:`mgpt.llm.train.sft.sft`, or
:func:`mgpt.llm.train.lora.train_lora` with ``reinforce.lora``). The next iteration
samples from the model just trained. Per iteration, under ``out_dir/iter_<i>/``::

    samples.jsonl   every answer: task, text, passed, tests passed/failed, why it could not run
    train.jsonl     the kept answers as chat examples (what the fine-tune learns from)
    model/          the fine-tuned model (an adapter with reinforce.lora, merged/ next to it)

and ``out_dir/rft.json`` sums up every iteration (pass rate, kept, loss before and after).

Checking needs the sandbox of ``mgpt.actions``, a layer above this one, so ``check`` and
``extract`` are passed in (as :func:`mgpt.llm.eval.code.evaluate_code` takes them), wired
by :mod:`mgpt.llm.train.reinforce`. ``sample`` is injectable too: tests script it.
The sampling helpers here (:func:`hf_sampler`, :func:`collect_samples`) serve dpo and grpo.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from mgpt.llm.eval.code import ENGINEER_SYSTEM, CheckResult
from mgpt.llm.train.config import RunConfig
from mgpt.llm.train.errors import TrainError

if TYPE_CHECKING:
    from mgpt.llm.eval.tasks import CodeTask

__all__ = ["RftIteration", "RftResult", "Sample", "Sampler", "check_answer", "check_answers", "collect_samples", "hf_sampler", "prompt_messages",
           "first_last_loss", "keep_passing", "rft", "round_config", "write_jsonl"]

#: ``sample(model, tokenizer, messages, k)`` -> k answer texts.
Sampler = Callable[[Any, Any, list[dict[str, str]], int], list[str]]
Check = Callable[["CodeTask", str], CheckResult]
Extract = Callable[[str], str]


def prompt_messages(task: CodeTask) -> list[dict[str, str]]:
    """What the engineer role is asked: the same system prompt and request as ``mgpt eval code``."""
    return [{"role": "system", "content": ENGINEER_SYSTEM}, {"role": "user", "content": task.prompt}]


def hf_sampler(temperature: float, max_new_tokens: int) -> Sampler:
    """Sample ``k`` answers in one batched ``generate`` call
    (:func:`mgpt.llm.eval.batch_sampling.generate_batched`), from the caller's random state."""

    def sample(model: Any, tokenizer: Any, messages: list[dict[str, str]], k: int) -> list[str]:
        from mgpt.llm.eval.batch_sampling import SampleRequest, generate_batched

        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prompt_len = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        n_pos = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
        if n_pos is not None and prompt_len + max_new_tokens > n_pos:
            raise TrainError(f"the prompt ({prompt_len} tokens) and reinforce.max_new_tokens ({max_new_tokens}) "
                             f"exceed the model's {n_pos} positions; lower reinforce.max_new_tokens")
        was_training = model.training
        model.eval()
        try:
            return generate_batched(model, tokenizer, [SampleRequest(messages, k, temperature, max_new_tokens)])[0]
        finally:
            model.train(was_training)

    return sample


@dataclass
class Sample:
    """One answer and how it did against its task's hidden tests."""

    task: str
    answer: str
    passed: bool
    code: str = ""
    tests_passed: int = 0
    tests_failed: int = 0
    error: str = ""
    """Why it could not run (no code block), else ''."""

    @property
    def reward(self) -> float:
        """1 for a pass, else the share of tests passed, halved (so a pass always ranks first)."""
        if self.passed:
            return 1.0
        total = self.tests_passed + self.tests_failed
        return 0.5 * self.tests_passed / total if total else 0.0


def check_answer(task: CodeTask, answer: str, check: Check, extract: Extract) -> Sample:
    try:
        code = extract(answer)
    except ValueError as exc:
        return Sample(task.id, answer, False, error=f"no code: {exc}")
    r = check(task, code)
    return Sample(task.id, answer, r.passed, code=code, tests_passed=r.tests_passed, tests_failed=r.tests_failed)


def check_answers(tasks: Sequence[CodeTask], answers: Sequence[Sequence[str]], *, check: Check, extract: Extract,
                  workers: int = 1) -> list[Sample]:
    """Every answer (``answers[i]`` for ``tasks[i]``) checked, ``workers`` at a time; in order."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(t, a) for t, group in zip(tasks, answers) for a in group]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda job: check_answer(job[0], job[1], check, extract), jobs))


def collect_samples(model: Any, tokenizer: Any, tasks: Sequence[CodeTask], *, sample: Sampler, check: Check,
                    extract: Extract, k: int, on_sample: Callable[[Sample], None] | None = None) -> list[Sample]:
    """``k`` answers per task from ``sample``, each checked; in task order."""
    out = []
    for task in tasks:
        answers = sample(model, tokenizer, prompt_messages(task), k)
        if len(answers) != k:
            raise TrainError(f"the sampler returned {len(answers)} answers for {task.id}, not k={k}")
        for answer in answers:
            s = check_answer(task, answer, check, extract)
            out.append(s)
            if on_sample:
                on_sample(s)
    return out


def keep_passing(samples: Sequence[Sample]) -> list[Sample]:
    """The passing samples, one per (task, code) — the same program twice teaches nothing new."""
    seen, kept = set(), []
    for s in samples:
        key = (s.task, s.code.strip())
        if s.passed and key not in seen:
            seen.add(key)
            kept.append(s)
    return kept


def write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def round_config(cfg: RunConfig, init_from: str | Path, data: Path, out_dir: Path) -> RunConfig:
    """The SFT run of one round: ``reinforce.steps`` steps at a constant ``reinforce.lr`` on ``data``,
    every example for training (the held-out measure is pass@1 on other tasks, not this loss)."""
    ft = cfg.model_copy(deep=True)
    ft.init_from, ft.out_dir = str(init_from), str(out_dir)
    ft.data.path, ft.data.format, ft.data.val_path, ft.data.val_fraction = str(data), "chat", None, 0.0
    ft.max_iters = cfg.reinforce.steps
    ft.eval_interval = cfg.reinforce.steps
    ft.optim.lr = ft.optim.min_lr = cfg.reinforce.lr
    ft.schedule.decay_lr = False
    return ft


def first_last_loss(out_dir: Path) -> tuple[float | None, float | None]:
    """Train loss (on the round's own examples) at the first and the last eval of a run."""
    from mgpt.llm.train.pretrain import eval_rows

    evals = eval_rows(out_dir)
    return (evals[0]["train_loss"], evals[-1]["train_loss"]) if evals else (None, None)


@dataclass
class RftIteration:
    iteration: int
    samples: int
    passed: int
    pass_rate: float
    tasks_solved: int
    kept: int
    model_dir: str | None
    loss_before: float | None = None
    loss_after: float | None = None


@dataclass
class RftResult:
    out_dir: Path
    model_dir: str
    """The last model trained (the input model if no round had anything to learn)."""
    iterations: list[RftIteration] = field(default_factory=list)
    stopped: str = ""
    """Why the loop ended before ``reinforce.iterations`` rounds, else ''."""


def _rank_world() -> tuple[int, int]:
    """torchrun's rank and world size; each rank samples its own share of the tasks."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def rft(cfg: RunConfig, tasks: Sequence[CodeTask], *, check: Check, extract: Extract, sample: Sampler | None = None,
        progress: bool = True, log: Callable[[str], None] = print) -> RftResult:
    """Expert iteration from ``cfg.init_from`` on ``tasks`` for ``reinforce.iterations`` rounds."""
    import torch

    from mgpt.llm.train.pretrain import gather_ranks, setup_runtime
    from mgpt.llm.train.sft import load_model_folder

    if not tasks:
        raise TrainError("no tasks to sample (check the split, reinforce.families and reinforce.tasks)")
    r = cfg.reinforce
    sample = sample or hf_sampler(r.temperature, r.max_new_tokens)
    out_dir = Path(cfg.out_dir)
    model_dir = cfg.init_from
    if not model_dir or not (Path(model_dir) / "config.json").is_file():
        load_model_folder(model_dir)  # raises the error that says what is wrong, before any sampling
    rank, world = _rank_world()
    result = RftResult(out_dir=out_dir, model_dir=str(model_dir))
    for it in range(1, r.iterations + 1):  # bounded: reinforce.iterations rounds at most
        it_dir = out_dir / f"iter_{it}"
        rt = setup_runtime(cfg)  # joins the DDP group under torchrun (once per process)
        torch.manual_seed(cfg.seed + 1000 * it + rank)
        model, tokenizer = load_model_folder(model_dir)
        model.to(rt.device)
        mine = list(tasks)[rank::world]  # rank-sharded tasks
        got = collect_samples(model, tokenizer, mine, sample=sample, check=check, extract=extract, k=r.k,
                              on_sample=(lambda s: log(f"  {s.task}: {'pass' if s.passed else 'fail'}"))
                              if progress and rt.master else None)
        del model
        samples = [s for part in gather_ranks(got, rt) for s in part]
        kept = keep_passing(samples)
        passed = sum(s.passed for s in samples)
        if rt.master:
            write_jsonl(it_dir / "samples.jsonl", [asdict(s) for s in samples])
            write_jsonl(it_dir / "train.jsonl", [
                {"messages": [*prompt_messages(next(t for t in tasks if t.id == s.task)),
                              {"role": "assistant", "content": s.answer}], "task": s.task} for s in kept])
        rt.barrier()
        record = RftIteration(it, len(samples), passed, passed / len(samples), len({s.task for s in kept}), len(kept),
                              None)
        result.iterations.append(record)
        if rt.master:
            log(f"iteration {it}: {passed}/{len(samples)} samples passed ({record.pass_rate:.1%}), "
                f"{record.tasks_solved} task(s) solved, {len(kept)} distinct passing answer(s) kept")
        if not kept:
            result.stopped = f"iteration {it}: no sample passed, nothing to fine-tune on"
            break
        ft = round_config(cfg, model_dir, it_dir / "train.jsonl", it_dir / "model")
        if r.lora:
            from mgpt.llm.train.lora import train_lora

            train_lora(ft, progress=progress, merge_to=it_dir / "merged")
            model_dir = str(it_dir / "merged")
        else:
            from mgpt.llm.train.sft import sft

            sft(ft, progress=progress)
            model_dir = str(it_dir / "model")
        record.model_dir = model_dir
        record.loss_before, record.loss_after = first_last_loss(it_dir / "model")
        result.model_dir = model_dir
        if rank == 0:
            _write_summary(result)
    if rank == 0:
        _write_summary(result)
    return result


def _write_summary(result: RftResult) -> None:
    result.out_dir.mkdir(parents=True, exist_ok=True)
    (result.out_dir / "rft.json").write_text(json.dumps({
        "model_dir": result.model_dir, "stopped": result.stopped,
        "iterations": [asdict(i) for i in result.iterations]}, indent=1) + "\n", encoding="utf-8")

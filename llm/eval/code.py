"""Functional correctness on the code task bank: pass@1 and pass@k.

For each task the model is asked ``n`` times (the engineer's prompt, :attr:`CodeTask.prompt`);
each answer's code block is run against the task's hidden tests, and ``c`` of the ``n``
pass. pass@k is the unbiased estimator of the Codex paper (Chen et al. 2021, eq. 1),

    pass@k = 1 - C(n - c, k) / C(n, k)      averaged over tasks,

the chance that at least one of k answers drawn from the n passes; it needs n >= k.

This module samples and scores. Running a candidate is the caller's ``check``
(:func:`mgpt.llm.eval.code_sandbox.sandbox_check` runs it in the sandbox), and so is
``extract`` (:func:`mgpt.llm.parsing.extract_code`), so tests can pass plain functions.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from math import comb
from typing import Callable, Sequence

from mgpt.agents.secrets import redact

from mgpt.llm.backends.base import CallContext, ChatMessage, Model
from mgpt.llm.eval.errors import EvalInputError
from mgpt.llm.eval.tasks import CodeTask

__all__ = ["CheckResult", "CodeEvalResult", "SampleResult", "TaskResult", "check_sample", "evaluate_code", "pass_at_k",
           "score_answers", "task_result", "ENGINEER_SYSTEM"]

#: The engineer role's system prompt, so the eval asks exactly what the company asks.
ENGINEER_SYSTEM = "You are Engineer, a software engineer. Your goal: correct, readable, tested Python."

#: Candidate output kept per sample in the results (the tail, where pytest's summary is).
OUTPUT_CHARS = 1500


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one task with ``c`` of ``n`` samples correct (needs ``k <= n``)."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"need 0 <= c <= n and k >= 1 (n={n}, c={c}, k={k})")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per task, got n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


@dataclass
class CheckResult:
    """How one candidate did against the hidden tests."""

    passed: bool
    tests_passed: int = 0
    tests_failed: int = 0
    timed_out: bool = False
    seconds: float = 0.0
    output: str = ""


@dataclass
class SampleResult:
    passed: bool
    error: str = ""
    """Why the sample could not run (no code in the answer), else ''."""
    tests_passed: int = 0
    tests_failed: int = 0
    timed_out: bool = False
    completion_tokens: int = 0
    output: str = ""


@dataclass
class TaskResult:
    id: str
    family: str
    n: int
    correct: int
    pass_at: dict[str, float]
    samples: list[SampleResult] = field(default_factory=list)


@dataclass
class CodeEvalResult:
    """The whole run; :meth:`to_dict` is what ``--json`` writes."""

    model: str
    split: str
    n: int
    ks: list[int]
    temperature: float | None
    tasks: list[TaskResult]
    seconds: float
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def pass_at(self) -> dict[str, float]:
        """pass@k averaged over tasks."""
        if not self.tasks:
            return {f"pass@{k}": 0.0 for k in self.ks}
        return {f"pass@{k}": sum(t.pass_at[f"pass@{k}"] for t in self.tasks) / len(self.tasks) for k in self.ks}

    @property
    def by_family(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for family in sorted({t.family for t in self.tasks}):
            ts = [t for t in self.tasks if t.family == family]
            out[family] = {"tasks": len(ts), **{f"pass@{k}": sum(t.pass_at[f"pass@{k}"] for t in ts) / len(ts)
                                                for k in self.ks}}
        return out

    def to_dict(self) -> dict:
        return {
            "model": self.model, "split": self.split, "n": self.n, "ks": self.ks, "temperature": self.temperature,
            "tasks_evaluated": len(self.tasks), **self.pass_at, "by_family": self.by_family,
            "seconds": round(self.seconds, 2), "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "tasks": [asdict(t) for t in self.tasks],
        }


Check = Callable[[CodeTask, str], CheckResult]


async def evaluate_code(
    model: Model,
    tasks: Sequence[CodeTask],
    *,
    check: Check,
    extract: Callable[[str], str],
    n: int = 1,
    ks: Sequence[int] = (1,),
    split: str = "",
    temperature: float | None = None,
    on_sample: Callable[[CodeTask, int, SampleResult], None] | None = None,
) -> CodeEvalResult:
    """Ask ``model`` ``n`` times per task, check every answer, and compute pass@k for ``ks``.

    ``extract(answer)`` returns the code to run and raises ``ValueError`` when there is
    none (that sample fails); ``check(task, code)`` runs it against the task's tests.
    Each call carries ``CallContext(role="Engineer", action="CodeEval:<task id>", turn=i)``.
    """
    if n < 1:
        raise EvalInputError(f"-n must be at least 1, not {n}")
    bad = [k for k in ks if k < 1 or k > n]
    if bad:
        raise EvalInputError(f"pass@{bad[0]} needs 1 <= k <= n, and n is {n}: raise -n or lower --k")
    if not tasks:
        raise EvalInputError("no tasks to evaluate (check --split and --family)")
    start = time.perf_counter()
    results, prompt_tokens, completion_tokens = [], 0, 0
    for task in tasks:
        messages = [ChatMessage(role="system", content=ENGINEER_SYSTEM), ChatMessage(role="user", content=task.prompt)]
        samples = []
        for i in range(1, n + 1):
            completion = await model.complete(
                messages, context=CallContext(role="Engineer", action=f"CodeEval:{task.id}", turn=i))
            prompt_tokens += completion.usage.prompt_tokens
            completion_tokens += completion.usage.completion_tokens
            sample = check_sample(task, completion.text, check, extract, completion.usage.completion_tokens)
            samples.append(sample)
            if on_sample:
                on_sample(task, i, sample)
        results.append(task_result(task, samples, ks))
    return CodeEvalResult(
        model=getattr(model, "name", type(model).__name__), split=split, n=n, ks=list(ks), temperature=temperature,
        tasks=results, seconds=time.perf_counter() - start, prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens)


def check_sample(task: CodeTask, text: str, check: Check, extract: Callable[[str], str],
                 completion_tokens: int = 0) -> SampleResult:
    """One answer checked: its code block (``extract``) run against the task's tests (``check``);
    an answer without code fails with the reason in ``error``."""
    try:
        code = extract(text)
    except ValueError as exc:
        return SampleResult(passed=False, error=f"no code: {exc}", completion_tokens=completion_tokens)
    r = check(task, code)
    return SampleResult(passed=r.passed, tests_passed=r.tests_passed, tests_failed=r.tests_failed,
                        timed_out=r.timed_out, completion_tokens=completion_tokens,
                        output=redact(r.output[-OUTPUT_CHARS:]))


def task_result(task: CodeTask, samples: Sequence[SampleResult], ks: Sequence[int]) -> TaskResult:
    c = sum(s.passed for s in samples)
    n = len(samples)
    return TaskResult(task.id, task.family, n, c, {f"pass@{k}": pass_at_k(n, c, k) for k in ks}, list(samples))


def score_answers(tasks: Sequence[CodeTask], answers: Sequence[Sequence[str]], *, check: Check,
                  extract: Callable[[str], str], ks: Sequence[int] = (1,), workers: int = 1, model: str = "",
                  split: str = "", temperature: float | None = None) -> CodeEvalResult:
    """:func:`evaluate_code` for answers already sampled (``answers[i]`` for ``tasks[i]``, the
    same number for each), checked ``workers`` at a time: for callers that sample in batches."""
    from concurrent.futures import ThreadPoolExecutor

    if len(answers) != len(tasks) or len({len(a) for a in answers}) > 1:
        raise EvalInputError(f"need the same number of answers for each of the {len(tasks)} tasks")
    n = len(answers[0]) if answers else 0
    if any(k < 1 or k > n for k in ks):
        raise EvalInputError(f"pass@k needs 1 <= k <= n, and n is {n}")
    start = time.perf_counter()
    jobs = [(t, a) for t, group in zip(tasks, answers) for a in group]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        checked = list(pool.map(lambda job: check_sample(job[0], job[1], check, extract), jobs))
    results = [task_result(t, checked[i * n:(i + 1) * n], ks) for i, t in enumerate(tasks)]
    return CodeEvalResult(model=model, split=split, n=n, ks=list(ks), temperature=temperature, tasks=results,
                          seconds=time.perf_counter() - start)

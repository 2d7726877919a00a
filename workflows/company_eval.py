"""``mgpt eval company``: run the whole software company on a list of ideas and measure it.

Per idea, in a fresh workspace: did the generated project's tests pass, how many of the
structured answers (PRD, design, task list: JSON the actions validate) parsed on the
first try, tokens and time. Across ideas: the shares and the totals. A run that fails
(an action gives up, the budget runs out) counts as a project whose tests did not pass,
with the error kept; the next idea still runs.

First-try parsing is read from each run's transcript (``WS/.mgpt/transcript.jsonl``): a
structured request is one whose prompt asks for "one JSON object" (the wording of
:meth:`mgpt.actions.base.Action.ask_structured`), and a retry carries the re-ask message
of :meth:`~mgpt.actions.base.Action.ask_parsed` ("That reply could not be used"). A
request with exactly one re-ask in it means the first answer did not parse.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from mgpt.agents.errors import MgptError
from mgpt.llm.backends.base import Model
from mgpt.llm.eval.errors import EvalInputError
from mgpt.llm.backends.replay import Transcript

from mgpt.workflows.software_company import run_company

if TYPE_CHECKING:
    from mgpt.agents.runner import RunnerOptions, TaskOutcome

__all__ = ["CompanyEvalResult", "IdeaResult", "RETRY_MARK", "STRUCTURED_MARK", "idea_result", "run_company_eval",
           "slug", "structured_first_try"]

STRUCTURED_MARK = "Reply with one JSON object"
RETRY_MARK = "That reply could not be used"


@dataclass
class IdeaResult:
    idea: str
    workspace: str
    tests_passed: bool
    stop_reason: str = ""
    error: str = ""
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    structured_asks: int = 0
    structured_first_try: int = 0


@dataclass
class CompanyEvalResult:
    model: str
    ideas: list[IdeaResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def tests_pass_share(self) -> float:
        return sum(i.tests_passed for i in self.ideas) / len(self.ideas) if self.ideas else 0.0

    @property
    def first_try_parse_share(self) -> float | None:
        asks = sum(i.structured_asks for i in self.ideas)
        return sum(i.structured_first_try for i in self.ideas) / asks if asks else None

    def to_dict(self) -> dict:
        return {
            "model": self.model, "ideas_evaluated": len(self.ideas), "tests_pass_share": self.tests_pass_share,
            "first_try_parse_share": self.first_try_parse_share,
            "prompt_tokens": sum(i.prompt_tokens for i in self.ideas),
            "completion_tokens": sum(i.completion_tokens for i in self.ideas),
            "seconds": round(self.seconds, 2), "ideas": [asdict(i) for i in self.ideas],
        }


def structured_first_try(transcript: Transcript) -> tuple[int, int]:
    """(structured questions asked, answered parseably on the first try) in one run."""
    asks = first_failed = 0
    for call in transcript.calls:
        if not any(STRUCTURED_MARK in m.content for m in call.request if m.role == "user"):
            continue
        retries = sum(m.role == "user" and m.content.startswith(RETRY_MARK) for m in call.request)
        asks += retries == 0
        first_failed += retries == 1
    return asks, asks - first_failed


def slug(text: str) -> str:
    """A folder-name form of ``text``: lower-case words joined by dashes, at most 40 characters."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "idea"


def run_company_eval(
    model: str | Callable[[str], Model],
    ideas: list[str],
    out_dir: Path,
    *,
    max_rounds: int = 12,
    fix_rounds: int = 2,
    json_out: Path | None = None,
    on_idea: Callable[[IdeaResult], None] | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    runner: RunnerOptions | None = None,
    api_key_file: Path | None = None,
) -> CompanyEvalResult:
    """Run the company on every idea, each into ``out_dir/NN-slug``. ``model`` is a spec
    (a fresh backend per run) or a function from the idea to a backend.

    ``runner``: run the ideas on the task runner (``--workers``, ``--ray``), each into
    ``out_dir/NNN-slug``; ``model`` is then a spec, and workers read the key from
    ``api_key_file`` or their own environment (a key never travels in a task)."""
    if not ideas:
        raise EvalInputError("no ideas to run")
    if runner is not None:
        return _eval_on_runner(model, ideas, out_dir, runner, json_out=json_out, on_idea=on_idea,
                               settings={"max_rounds": max_rounds, "fix_rounds": fix_rounds, "base_url": base_url,
                                         "api_key_file": api_key_file})
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise EvalInputError(f"{out_dir} is not empty: give a new --out folder for the runs' workspaces")
    if isinstance(model, str):
        from mgpt.llm.models import infer_model

        spec = model
        make = lambda idea: infer_model(spec, base_url=base_url, api_key=api_key)  # noqa: E731
        name = spec
    else:
        make, name = model, ""
    result = CompanyEvalResult(model=name)
    start = time.perf_counter()
    for i, idea in enumerate(ideas, 1):
        ws = out_dir / f"{i:02d}-{slug(idea)}"
        backend = make(idea)
        result.model = result.model or getattr(backend, "name", "")
        t0 = time.perf_counter()
        item = IdeaResult(idea=idea, workspace=str(ws), tests_passed=False)
        try:
            run = asyncio.run(run_company(idea, model=backend, workspace=ws, max_rounds=max_rounds,
                                          fix_rounds=fix_rounds))
            spend = run.run.spend
            item.tests_passed, item.stop_reason = run.tests_passed, run.run.stop_reason
            item.calls, item.prompt_tokens, item.completion_tokens = spend.calls, spend.prompt_tokens, spend.completion_tokens
        except MgptError as exc:
            item.error = str(exc).splitlines()[0][:300]
        item.seconds = round(time.perf_counter() - t0, 2)
        transcript = ws / ".mgpt" / "transcript.jsonl"
        if transcript.is_file():
            try:
                recorded = Transcript.load(transcript)
                item.structured_asks, item.structured_first_try = structured_first_try(recorded)
                if item.error:  # the run raised before reporting its spend: count what was recorded
                    item.calls = len(recorded.calls)
                    item.prompt_tokens = sum(c.response.usage.prompt_tokens for c in recorded.calls)
                    item.completion_tokens = sum(c.response.usage.completion_tokens for c in recorded.calls)
            except MgptError:
                pass  # a run cut off mid-write: its tests and tokens still count
        result.ideas.append(item)
        if on_idea:
            on_idea(item)
    result.seconds = time.perf_counter() - start
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    return result


def _eval_on_runner(model, ideas: list[str], out_dir: Path, runner: "RunnerOptions", *, json_out: Path | None,
                    on_idea: Callable[[IdeaResult], None] | None, settings: dict) -> CompanyEvalResult:
    """:func:`run_company_eval` with each idea a task of the runner (a run of
    :func:`mgpt.workflows.batch.run_item`); the measures are read back from the results and
    the transcripts that came back."""
    from dataclasses import replace

    from mgpt.workflows.batch import BatchItem, BatchSettings, make_tasks
    from mgpt.agents.runner import run_tasks

    if not isinstance(model, str):
        raise EvalInputError("with --workers or --ray the model is named by its spec (each worker builds its own), "
                             "e.g. 'openai:gpt-4o-mini', not given as a function")
    batch = BatchSettings(model=model, base_url=settings["base_url"],
                          api_key_file=str(settings["api_key_file"]) if settings["api_key_file"] else None,
                          options={"max_rounds": settings["max_rounds"], "fix_rounds": settings["fix_rounds"]})
    tasks = make_tasks([BatchItem(idea=idea) for idea in ideas], batch)
    by_id = {t.id: t.args["idea"] for t in tasks}

    def on_update(update) -> None:
        if runner.on_update is not None:
            runner.on_update(update)
        if on_idea is not None and update.outcome is not None:
            on_idea(idea_result(update.outcome, by_id[update.id]))

    done = run_tasks(tasks, replace(runner, out=Path(out_dir), on_update=on_update))
    result = CompanyEvalResult(model=model, ideas=[idea_result(o, by_id[o.id]) for o in done.outcomes],
                               seconds=done.seconds)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    return result


def idea_result(outcome: "TaskOutcome", idea: str) -> IdeaResult:
    """What the company evaluation measures of one run, from its outcome on the runner."""
    run = outcome.result if isinstance(outcome.result, dict) else {}
    item = IdeaResult(idea=idea, workspace=str(outcome.workdir), tests_passed=outcome.ok,
                      stop_reason=run.get("stop_reason", outcome.status), error=outcome.error.splitlines()[0][:300]
                      if outcome.error else "", calls=run.get("calls", 0), prompt_tokens=run.get("prompt_tokens", 0),
                      completion_tokens=run.get("completion_tokens", 0), seconds=round(outcome.seconds, 2))
    if outcome.transcript is not None:
        try:
            recorded = Transcript.load(outcome.transcript)
        except MgptError:
            return item
        item.structured_asks, item.structured_first_try = structured_first_try(recorded)
        if not run:  # it stopped before reporting its spend: count what was recorded
            item.calls = len(recorded.calls)
            item.prompt_tokens = sum(c.response.usage.prompt_tokens for c in recorded.calls)
            item.completion_tokens = sum(c.response.usage.completion_tokens for c in recorded.calls)
    return item

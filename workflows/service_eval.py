"""``mgpt eval service``: the support team on every task of τ²-bench's retail split, scored as
τ²-bench scores it.

Each task is played ``trials`` times: a simulated customer (the task's ``user_scenario``)
talks to the support team on a fresh copy of the store (:func:`mgpt.workflows.service.converse`),
and the conversation is graded by the store's end state against the gold actions' and by the
``communicate_info`` the agent said (:func:`mgpt.domains.retail.grade`). Conversations run
one after another in this process, or in parallel on the task runner (``--workers N``,
``--ray``: :mod:`mgpt.agents.runner`, each conversation a task in its own process), each
reported when it ends.

pass^k is τ²-bench's (from the τ-bench paper): for each task, the chance that ``k`` trials
drawn from its ``n`` all pass, ``C(c, k) / C(n, k)`` with ``c`` passing trials, averaged over
the tasks. pass^1 is the mean pass rate.

The output folder holds one workspace per conversation (``task-<id>-trial-<k>/``: the run
log, the replayable transcript, ``trajectory.json`` and the HTML report), ``results.json`` and
``index.html`` (every conversation, linked to its report). ``replay=`` an earlier output
folder plays every conversation again from its transcripts, offline, and grades it again.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import os
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from mgpt.actions.service import was_declined
from mgpt.agents.errors import MgptError
from mgpt.agents.tools import ToolExchange
from mgpt.domains.retail import (
    WRITE_TOOLS, RetailData, RetailStore, Task, Trajectory, expected_store, load_tasks, replay_trajectory,
)
from mgpt.llm.backends.base import Model
from mgpt.llm.eval.errors import EvalInputError
from mgpt.workflows.harness import RunOptions
from mgpt.workflows.report import write_report
from mgpt.workflows.service import Conversation, ServiceOptions, converse, task_judge

if TYPE_CHECKING:  # pragma: no cover
    from mgpt.agents.runner import RunnerOptions

__all__ = [
    "ANCHORS", "CONVERSATION_TASK", "ConversationResult", "ServiceEvalOptions", "ServiceEvalResult",
    "conversation_task", "gold_model", "markdown_table", "pass_hat_k", "run_service_eval",
]

DOMAINS = ("retail",)


def pass_hat_k(trials: int, passed: int, k: int) -> float:
    """The chance that ``k`` of a task's ``trials`` trials, drawn without replacement, all
    pass when ``passed`` of them did: ``C(passed, k) / C(trials, k)`` (τ²-bench's pass^k)."""
    if not 1 <= k <= trials:
        raise ValueError(f"pass^k needs 1 <= k <= trials, not k={k} with {trials} trial(s)")
    return math.comb(passed, k) / math.comb(trials, k)


@dataclass
class ServiceEvalOptions:
    """What ``mgpt eval service`` runs, and how."""

    #: the model spec of the support team (openai:<name>, local, hf:<dir>...)
    model: str
    #: a new folder for the conversations' workspaces, results.json and index.html
    out: Path
    domain: str = "retail"
    split: str = "test"
    #: only these task ids (default: the whole split)
    task_ids: list[str] | None = None
    #: only the first N tasks (after ``task_ids``)
    limit: int | None = None
    #: conversations per task (pass^k for k up to this)
    trials: int = 1
    #: messages the customer may send before the conversation is stopped
    max_turns: int = 10
    #: a policy checker reviews each state-changing call (False: the agent alone)
    checker: bool = True
    #: tool calls the agent may make in one turn (None: AnswerCustomer's default)
    max_tool_steps: int | None = None
    #: the simulated customer's model (default: the team's)
    customer_model: str | None = None
    #: an earlier output folder: answer every model call from its transcripts
    replay: Path | None = None
    base_url: str | None = None
    api_key: str | None = None
    #: read the API key from this file (on the task runner each worker reads it: a key never
    #: travels in a task)
    api_key_file: Path | None = None
    timeout: float | None = None
    #: completion tokens one model call may use
    max_tokens: int | None = None
    threads: int | None = None
    #: a retail data folder (db.json, tasks.json, split_tasks.json, policy.md) instead of
    #: τ²-bench's, fetched into $MGPT_HOME
    data_dir: Path | None = None

    def settings(self) -> dict[str, Any]:
        """The options as JSON data for a runner task (never the key itself, nor ``out``)."""
        plain = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("out", "api_key")}
        return {k: str(v) if isinstance(v, Path) else v for k, v in plain.items()}

    @classmethod
    def from_settings(cls, settings: dict[str, Any], out: Path) -> "ServiceEvalOptions":
        paths = {"replay", "api_key_file", "data_dir"}
        return cls(out=out, **{k: Path(v) if k in paths and v is not None else v for k, v in settings.items()})

    def load_data(self) -> RetailData:
        return RetailData(Path(self.data_dir)) if self.data_dir is not None else RetailData.load()


@dataclass
class ConversationResult:
    """One conversation's outcome."""

    task_id: str
    trial: int
    passed: bool
    state_matches: bool
    missing_info: list[str]
    ended: str
    detail: str
    turns: int
    tool_calls: int
    #: calls to state-changing tools the agent asked for, the checker declined, and the store served
    writes_asked: int
    writes_declined: int
    writes_done: int
    #: the store changed, but not into the expected state
    wrong_change: bool
    #: the recorded trajectory, replayed on a fresh store, gives the same end state
    rebuilt_matches: bool
    seconds: float
    prompt_tokens: int
    completion_tokens: int
    workspace: str


@dataclass
class ServiceEvalResult:
    """Every conversation's outcome, and pass^k over them."""

    options: dict[str, Any]
    conversations: list[ConversationResult] = field(default_factory=list)
    seconds: float = 0.0

    def pass_hat(self) -> dict[int, float]:
        """pass^k for k = 1 .. trials, averaged over the tasks."""
        by_task: dict[str, list[bool]] = defaultdict(list)
        for c in self.conversations:
            by_task[c.task_id].append(c.passed)
        if not by_task:
            return {}
        trials = min(len(v) for v in by_task.values())
        return {k: sum(pass_hat_k(len(v), sum(v), k) for v in by_task.values()) / len(by_task)
                for k in range(1, trials + 1)}

    def totals(self) -> dict[str, Any]:
        cs = self.conversations
        ended: dict[str, int] = defaultdict(int)
        for c in cs:
            ended[c.ended] += 1
        return {
            "count": len(cs), "tasks": len({c.task_id for c in cs}), "passed": sum(c.passed for c in cs),
            "state_matches": sum(c.state_matches for c in cs), "ended": dict(sorted(ended.items())),
            "tool_calls": sum(c.tool_calls for c in cs), "writes_asked": sum(c.writes_asked for c in cs),
            "writes_declined": sum(c.writes_declined for c in cs), "writes_done": sum(c.writes_done for c in cs),
            "wrong_changes": sum(c.wrong_change for c in cs), "rebuilt_matches": sum(c.rebuilt_matches for c in cs),
            "turns": sum(c.turns for c in cs), "prompt_tokens": sum(c.prompt_tokens for c in cs),
            "completion_tokens": sum(c.completion_tokens for c in cs),
            "seconds_per_conversation": round(sum(c.seconds for c in cs) / len(cs), 2) if cs else 0.0,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.options, "pass_hat": {str(k): v for k, v in self.pass_hat().items()}, **self.totals(),
            "seconds": round(self.seconds, 2), "conversations": [asdict(c) for c in self.conversations],
        }


def _counts(conversation: Conversation) -> tuple[int, int, int, int]:
    """(tool calls asked, writes asked, writes declined by the checker, writes the store served)."""
    calls = asked = declined = done = 0
    for message in conversation.messages:
        if not isinstance(message.payload, ToolExchange):
            continue
        results = {r.call_id: r for r in message.payload.results}
        for call in message.payload.calls:
            calls += 1
            if call.name not in WRITE_TOOLS:
                continue
            asked += 1
            result = results.get(call.id)
            declined += result is not None and was_declined(result.content)
            done += result is not None and not result.is_error
    return calls, asked, declined, done


@dataclass
class _Job:
    task: Task
    trial: int

    @property
    def folder(self) -> str:
        return f"task-{self.task.id}-trial-{self.trial}"


class _Eval:
    """One evaluation's fixed parts: the tasks, the start store and the expected end states,
    the policy, and how models are built."""

    def __init__(self, options: ServiceEvalOptions, data: RetailData, tasks: list[Task],
                 make_model: Callable[[str, "_Job"], Model]):
        self.options = options
        self.data = data
        self.policy = data.policy()
        self.tasks = tasks
        self.start = RetailStore.from_json(data.db_json())
        self.start_digest = self.start.digest()
        self.expected = {t.id: expected_store(t, self.start) for t in tasks}
        self.make_model = make_model

    def model_for(self, job: _Job) -> Model:
        o = self.options
        if o.replay is not None:
            transcript = Path(o.replay) / job.folder / ".mgpt" / "transcript.jsonl"
            return self.make_model(f"replay:{transcript}", job)
        team = self.make_model(o.model, job)
        if not o.customer_model:
            return team
        from mgpt.llm.backends.routing import ModelPerRole

        return ModelPerRole(team, {"Customer": self.make_model(o.customer_model, job)})

    async def one(self, job: _Job, run: RunOptions | None = None) -> ConversationResult:
        """One conversation into ``run.workspace`` (default: the job's folder under ``out``)."""
        o = self.options
        store = self.start.copy()
        run = run or RunOptions(workspace=Path(o.out) / job.folder)
        run = replace(run, max_rounds=2 * o.max_turns, sandbox="none", history=False)
        expected = self.expected[job.task.id]
        # a replay's tools never run: grade the store its calls rebuild
        judge = task_judge(job.task, self.start, expected, rebuild=o.replay is not None)
        conversation = await converse(
            job.task.user_scenario.describe(), store, self.policy, model=self.model_for(job), options=run,
            service=ServiceOptions(checker=o.checker, max_tool_steps=o.max_tool_steps),
            idea=f"retail task {job.task.id}, trial {job.trial}",
            task_id=job.task.id, judge=judge,
        )
        return self.result(job, conversation, expected)

    def rebuilt(self, trajectory: Trajectory) -> RetailStore:
        """A fresh copy of the start store with the trajectory's calls replayed on it."""
        store = self.start.copy()
        replay_trajectory(trajectory, store)
        return store

    def result(self, job: _Job, conversation: Conversation, expected: RetailStore) -> ConversationResult:
        verdict = conversation.verdict or {}
        rebuilt = self.rebuilt(conversation.trajectory).digest()
        end_digest = rebuilt if self.options.replay is not None else conversation.store.digest()
        calls, asked, declined, done = _counts(conversation)
        workspace = conversation.workspace
        (workspace / "trajectory.json").write_text(conversation.trajectory.model_dump_json(indent=1) + "\n",
                                                   encoding="utf-8")
        write_report(workspace)
        spend = conversation.spend
        return ConversationResult(
            task_id=job.task.id, trial=job.trial, passed=bool(verdict.get("passed")),
            state_matches=bool(verdict.get("state_matches")), missing_info=list(verdict.get("missing_info") or []),
            ended=conversation.ended, detail=conversation.detail, turns=conversation.turns, tool_calls=calls,
            writes_asked=asked, writes_declined=declined, writes_done=done,
            wrong_change=end_digest != self.start_digest and end_digest != expected.digest(),
            # A replayed conversation's tools never ran: its end state is the rebuilt one.
            rebuilt_matches=rebuilt == end_digest,
            seconds=round(conversation.seconds, 2), prompt_tokens=spend.prompt_tokens,
            completion_tokens=spend.completion_tokens, workspace=str(workspace),
        )


def gold_model(task: Task, start: RetailStore, *, confirm: bool = True) -> Model:
    """A scripted model that plays ``task``'s reference conversation through the whole team:
    the customer agrees ("yes, please") and then says the stop token; the agent first
    authenticates the customer (by the email of the user the gold actions concern), then makes
    the gold calls one by one and says every ``communicate_info``. A check of the harness: it
    should pass every task, with nothing declined by the checker.

    ``confirm=False``: the customer never says yes ("Please go ahead."), so every change the
    agent makes is unconfirmed, against the policy: what the checker is there to stop."""
    from mgpt.agents.tools import ToolCall
    from mgpt.domains.retail import RetailError, RetailTools
    from mgpt.llm.backends.testing import FunctionModel

    gold = [(a.name, a.arguments) for a in task.evaluation_criteria.actions or []]
    service = RetailTools(start)
    user_id = next((args["user_id"] for _, args in gold if "user_id" in args), None)
    for _, args in gold:
        if user_id is None and "order_id" in args:
            try:
                user_id = service.get_order_details(args["order_id"])["user_id"]
            except RetailError:  # a gold call the service refuses
                continue
    if user_id is not None and not any(name.startswith("find_user_id") for name, _ in gold):
        gold.insert(0, ("find_user_id_by_email", {"email": service.get_user_details(user_id)["email"]}))
    info = "; ".join(task.evaluation_criteria.communicate_info or []) or "Your request is done."

    def reply(messages: list, context: Any, tools: Any = None) -> Any:
        if context.role == "Customer":  # done once the agent has said what the task asks
            if messages[-1].content == info:
                return "###STOP###"
            return "Yes, please go ahead." if confirm else "Please go ahead."
        done = sum(m.role == "tool" for m in messages)
        if done >= len(gold):
            return info
        if tools is None or tools.choice == "none":  # the turn's bound: go on in the next one
            return "I am still working on it."
        name, arguments = gold[done]
        return [ToolCall.of(name, arguments, id=f"gold_{done}")]

    return FunctionModel(reply, name="gold")


def _jobs(tasks: list[Task], trials: int) -> list[_Job]:
    return [_Job(task, trial) for trial in range(1, trials + 1) for task in tasks]


def select_tasks(data: RetailData, options: ServiceEvalOptions) -> list[Task]:
    """The tasks of the split, narrowed to ``task_ids`` and ``limit``."""
    tasks = load_tasks(data, options.split)
    if options.task_ids:
        known = {t.id for t in tasks}
        unknown = [i for i in options.task_ids if i not in known]
        if unknown:
            raise EvalInputError(f"no task {', '.join(unknown)} in the {options.split} split "
                                 f"(its ids: {', '.join(sorted(known, key=_id_order))})")
        wanted = set(options.task_ids)
        tasks = [t for t in tasks if t.id in wanted]
    return tasks[: options.limit] if options.limit else tasks


def _id_order(task_id: str) -> tuple[int, str]:
    return (int(task_id), "") if task_id.isdigit() else (1 << 30, task_id)


#: What a replay takes from the eval it replays: the conversations as they ran.
RECORDED = ("domain", "split", "task_ids", "limit", "trials", "max_turns", "max_tool_steps", "checker")


def as_recorded(options: ServiceEvalOptions) -> ServiceEvalOptions:
    """``options`` of a replay, with the tasks, trials and team of the eval it replays (read
    from its results.json). Setting any of them otherwise is refused: a replay plays the
    conversations as they were."""
    from dataclasses import replace

    path = Path(options.replay or "") / "results.json"
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalInputError(f"cannot read {path} ({exc}): give the --out folder of an earlier eval") from None
    defaults = ServiceEvalOptions(model="", out=Path())
    changed = [name for name in RECORDED if getattr(options, name) != getattr(defaults, name)]
    if changed:
        flags = {"task_ids": "--task", "checker": "--no-checker"}
        shown = ", ".join(flags.get(name, "--" + name.replace("_", "-")) for name in changed)
        raise EvalInputError(f"a replay plays the recorded eval as it ran: leave out {shown} "
                             "(they are read from its results.json)")
    return replace(options, **{name: recorded.get(name, getattr(defaults, name)) for name in RECORDED})


def _check(options: ServiceEvalOptions) -> None:
    if options.domain not in DOMAINS:
        raise EvalInputError(f"no service domain {options.domain!r}: the domains are {', '.join(DOMAINS)}")
    for name in ("trials", "max_turns"):
        if getattr(options, name) < 1:
            raise EvalInputError(f"{name} must be at least 1")
    out = Path(options.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EvalInputError(f"{out} is not an empty folder: give a new --out folder for the conversations")


def run_service_eval(
    options: ServiceEvalOptions,
    *,
    on_done: Callable[[ConversationResult, int, int], None] | None = None,
    make_model: Callable[[str, Any], Model] | None = None,
    data: RetailData | None = None,
    runner: "RunnerOptions | None" = None,
) -> ServiceEvalResult:
    """Run every (task, trial) conversation of ``options`` and grade it; ``on_done(result,
    finished, total)`` is called as each ends. Writes ``results.json`` and ``index.html``
    into ``options.out``.

    Without ``runner`` the conversations run one after another in this process, and
    ``make_model(spec, job)`` may build their models (default: :func:`mgpt.llm.models.infer_model`;
    tests and the reference conversations script them). With ``runner`` (``--workers``,
    ``--ray``) each conversation is a task of the task runner (:mod:`mgpt.agents.runner`):
    its own process, its folder under ``out``, the batch's budget, retried when its worker
    dies; the models are then named by their specs and built on the workers."""
    _check(options)
    if options.replay is not None:
        options = as_recorded(options)
    data = data or options.load_data()
    tasks = select_tasks(data, options)
    if not tasks:
        raise EvalInputError("no tasks to run: check --task and --limit")
    jobs = _jobs(tasks, options.trials)
    out = Path(options.out)
    started = time.perf_counter()
    if runner is not None:
        if make_model is not None:
            raise EvalInputError("on the task runner the models are named by their specs (each worker builds its "
                                 "own), not given as a function")
        results = _on_runner(options, jobs, runner, on_done)
    else:
        out.mkdir(parents=True, exist_ok=True)
        evaluation = _Eval(options, data, tasks, make_model or _infer(options))
        results = asyncio.run(_one_by_one(evaluation, jobs, on_done))
    result = ServiceEvalResult(options=_described(options, runner), conversations=sorted(
        results, key=lambda c: (_id_order(c.task_id), c.trial)), seconds=time.perf_counter() - started)
    (out / "results.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    (out / "index.html").write_text(index_html(result), encoding="utf-8")
    return result


async def _one_by_one(evaluation: _Eval, jobs: list[_Job],
                      on_done: Callable[[ConversationResult, int, int], None] | None) -> list[ConversationResult]:
    finished: list[ConversationResult] = []
    for job in jobs:
        finished.append(await evaluation.one(job))
        if on_done is not None:
            on_done(finished[-1], len(finished), len(jobs))
    return finished


#: The task function each conversation is on the runner.
CONVERSATION_TASK = "mgpt.workflows.service_eval:conversation_task"


def _on_runner(options: ServiceEvalOptions, jobs: list[_Job], runner: "RunnerOptions",
               on_done: Callable[[ConversationResult, int, int], None] | None) -> list[ConversationResult]:
    from mgpt.agents.runner import Task, run_tasks

    settings = options.settings()
    tasks = [Task(id=job.folder, fn=CONVERSATION_TASK, args={"task_id": job.task.id, "trial": job.trial,
                                                             "settings": settings}) for job in jobs]
    by_id = {job.folder: job for job in jobs}
    finished: list[ConversationResult] = []

    def on_update(update: Any) -> None:
        if runner.on_update is not None:
            runner.on_update(update)
        if update.outcome is not None:
            finished.append(_from_outcome(update.outcome, by_id[update.id]))
            if on_done is not None:
                on_done(finished[-1], len(finished), len(jobs))

    done = run_tasks(tasks, replace(runner, out=Path(options.out), on_update=on_update))
    return [_from_outcome(o, by_id[o.id]) for o in done.outcomes]


def _from_outcome(outcome: Any, job: _Job) -> ConversationResult:
    """A conversation's result as its runner task returned it; a task that failed (a bug, a
    worker that died past its retries) is a failed conversation with the error as its detail."""
    names = {f.name for f in fields(ConversationResult)}
    if isinstance(outcome.result, dict) and names <= set(outcome.result):
        return ConversationResult(**{k: v for k, v in outcome.result.items() if k in names})
    return ConversationResult(
        task_id=job.task.id, trial=job.trial, passed=False, state_matches=False, missing_info=[], ended="error",
        detail=(outcome.error or outcome.status).splitlines()[0][:300], turns=0, tool_calls=0, writes_asked=0,
        writes_declined=0, writes_done=0, wrong_change=False, rebuilt_matches=False,
        seconds=round(outcome.seconds, 2), prompt_tokens=outcome.spend.prompt_tokens,
        completion_tokens=outcome.spend.completion_tokens, workspace=str(outcome.workdir or ""))


def conversation_task(ctx: Any) -> dict[str, Any]:
    """The runner task of one conversation (``ctx.args``: ``task_id``, ``trial``, ``settings``):
    run in ``ctx.workdir`` on the batch's budget, continued when ``ctx.resume``, graded; the
    result is the :class:`ConversationResult` (``ok``: it passed)."""
    options = ServiceEvalOptions.from_settings(ctx.args["settings"], out=Path(ctx.workdir).parent)
    data = options.load_data()
    task = next(t for t in load_tasks(data, "base") if t.id == ctx.args["task_id"])
    evaluation = _Eval(options, data, [task], _infer(options))
    run = RunOptions(workspace=ctx.workdir, budget=ctx.budget, resume=ctx.resume, force=True)
    result = asyncio.run(evaluation.one(_Job(task, int(ctx.args["trial"])), run))
    return {"ok": result.passed, **asdict(result)}


def _infer(options: ServiceEvalOptions) -> Callable[[str, Any], Model]:
    from mgpt.llm.models import infer_model

    api_key = options.api_key
    if api_key is None and options.api_key_file is not None:
        try:
            api_key = Path(options.api_key_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise EvalInputError(f"cannot read the API key file {options.api_key_file}: {exc.strerror}") from None

    def make(spec: str, job: Any) -> Model:
        return infer_model(spec, base_url=options.base_url, api_key=api_key, timeout=options.timeout,
                           max_tokens=options.max_tokens, threads=options.threads)

    return make


def _described(options: ServiceEvalOptions, runner: "RunnerOptions | None" = None) -> dict[str, Any]:
    """The options as results.json records them (never the API key)."""
    where = "this process, one at a time" if runner is None else (
        f"the task runner: {f'Ray {runner.ray}' if runner.ray else f'{runner.workers or 1} local worker(s)'}")
    return {
        "model": options.model, "customer_model": options.customer_model or options.model,
        "domain": options.domain, "split": options.split, "task_ids": options.task_ids, "limit": options.limit,
        "trials": options.trials, "ran_on": where, "max_turns": options.max_turns,
        "max_tool_steps": options.max_tool_steps, "checker": options.checker,
        "team": "SupportAgent + PolicyChecker" if options.checker else "SupportAgent",
        "constrained": os.environ.get("MGPT_CONSTRAINED", "1"), "max_tokens": options.max_tokens,
        "replay": str(options.replay) if options.replay else None,
    }


#: Published pass^1 on τ-bench / τ²-bench retail: (source, model, pass^1).
ANCHORS = [
    ("τ-bench README", "gpt-4o", 0.604), ("τ-bench README", "claude-3.5-sonnet", 0.692),
    ("τ²-bench leaderboard (user: gpt-4.1)", "gpt-4.1", 0.740),
    ("τ²-bench leaderboard (user: gpt-4.1)", "gpt-4.1-mini", 0.614),
    ("τ²-bench leaderboard (user: gpt-4.1)", "claude-3.7-sonnet", 0.721),
]


def markdown_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """Evaluations side by side as a markdown table, the published anchors beside them:
    ``rows`` are (label, an eval's ``results.json``)."""
    lines = [
        "| configuration | model | tasks × trials | pass^1 | store as expected | state-changing calls made / asked "
        "(declined) | left the store wrong | tool calls | customer turns | s / conversation |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in rows:
        n = r["count"]
        lines.append(
            f"| {label} | {r['model']} | {r['tasks']} × {r['trials']} | {float(r['pass_hat']['1']):.3f} "
            f"| {r['state_matches']}/{n} | {r['writes_done']} / {r['writes_asked']} ({r['writes_declined']}) "
            f"| {r['wrong_changes']}/{n} | {r['tool_calls']} | {r['turns']} | {r['seconds_per_conversation']:.0f} |")
    lines += ["", "Published pass^1 on retail, beside it:", "", "| source | model | pass^1 |", "|---|---|---:|"]
    lines += [f"| {source} | {model} | {score:.3f} |" for source, model, score in ANCHORS]
    return "\n".join(lines)


def index_html(result: ServiceEvalResult) -> str:
    """The evaluation as one self-contained page: pass^k, the totals, and every conversation
    linked to its report."""
    esc = html.escape
    o, t = result.options, result.totals()
    passes = "".join(f"<li>pass^{k}: <b>{v:.3f}</b></li>" for k, v in result.pass_hat().items())
    rows = []
    for c in result.conversations:
        link = f"{esc(Path(c.workspace).name)}/.mgpt/report.html"
        state = "passed" if c.passed else "failed"
        why = "" if c.passed else ("store not as expected" if not c.state_matches else
                                   "not said: " + ", ".join(c.missing_info))
        rows.append(
            f'<tr class="{state}"><td>{esc(c.task_id)}</td><td>{c.trial}</td><td>{state}</td><td>{esc(why)}</td>'
            f"<td>{esc(c.ended)}</td><td>{c.turns}</td><td>{c.tool_calls}</td>"
            f"<td>{c.writes_done}/{c.writes_asked} ({c.writes_declined} declined)</td><td>{c.seconds:.1f}</td>"
            f'<td><a href="{link}">report</a></td></tr>'
        )
    head = "".join(f"<th>{h}</th>" for h in ["task", "trial", "verdict", "why", "ended", "customer turns",
                                             "tool calls", "writes done/asked", "seconds", ""])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>mgpt eval service: {esc(str(o["model"]))}</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px 32px;color:#111}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #e5e7eb;padding:4px 10px;text-align:left}}tr.passed td:nth-child(3){{color:#15803d}}
tr.failed td:nth-child(3){{color:#b91c1c}}code{{background:#f3f4f6;padding:0 4px}}</style></head><body>
<h1>Customer service on τ²-bench {esc(str(o["domain"]))} ({esc(str(o["split"]))})</h1>
<p>team <code>{esc(str(o["team"]))}</code> on <code>{esc(str(o["model"]))}</code>, customer on
<code>{esc(str(o["customer_model"]))}</code>; {t["tasks"]} task(s) × {o["trials"]} trial(s), at most
{o["max_turns"]} customer turns each; {result.seconds:.0f} s.</p>
<ul>{passes}</ul>
<p>{t["passed"]}/{t["count"]} conversations passed; store as expected in {t["state_matches"]};
{t["writes_done"]} state-changing calls made of {t["writes_asked"]} asked ({t["writes_declined"]} declined by the
checker); {t["wrong_changes"]} conversation(s) left the store changed but wrong.</p>
<table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>
</body></html>
"""

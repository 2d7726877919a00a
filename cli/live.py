"""What the terminal shows while a run works: who is doing what, tokens and cost.

On a terminal a rich live table updates in place, with each call in flight and the tokens
that have reached it so far (``llm_progress`` events while an answer streams in);
elsewhere (CI logs, pipes) each step is one plain line. Both are fed the run's events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.console import Console
from rich.live import Live
from rich.table import Table

from mgpt.agents.runlog import Event


@dataclass
class _RoleState:
    status: str = "waiting"
    calls: int = 0
    tokens: int = 0
    cost: float = 0.0
    cost_known: bool = True
    #: Calls in flight: (action, turn) -> tokens streamed in so far (None: none yet).
    streaming: dict[tuple[str, int], int] = field(default_factory=dict)


class RunView:
    """Turns events into a live table (terminal) or progress lines (anything else)."""

    def __init__(self, console: Console, roles: list[str]):
        self.console = console
        self.roles = {name: _RoleState() for name in roles}
        self.started = time.perf_counter()
        self.round = 0
        self.live: Live | None = None

    def __enter__(self) -> "RunView":
        if self.console.is_terminal:
            self.live = Live(self._table(), console=self.console, refresh_per_second=8, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.__exit__(*exc)

    def __call__(self, event: Event) -> None:
        state = self.roles.get(event.role)
        if state is None and event.kind == "action_start" and event.role:  # a role the SOP did not list
            state = self.roles[event.role] = _RoleState()
        if event.kind == "round":
            self.round += 1
        elif event.kind == "action_start" and state:
            state.status = f"working: {event.detail}"
            self._line(f"{event.role}: {event.detail}…")
        elif event.kind == "action_end" and state:
            state.status = f"done: {event.detail}"
            state.streaming.clear()
        elif event.kind == "llm_progress" and state:
            state.streaming[(event.detail, int(event.data.get("turn") or 0))] = int(event.data.get("pieces") or 0)
        elif event.kind == "llm_call" and state:
            state.streaming.pop((event.detail, int(event.data.get("turn") or 0)), None)
            state.calls += 1
            state.tokens += event.data.get("prompt_tokens", 0) + event.data.get("completion_tokens", 0)
            if event.data.get("cost") is None:
                state.cost_known = False
            else:
                state.cost += event.data["cost"]
        elif event.kind == "message" and event.role and event.role != "user":
            self._line(f"  {event.role} → {', '.join(event.data.get('to', [])) or 'nobody'}: {event.detail}")
        if self.live is not None:
            self.live.update(self._table())

    def _line(self, text: str) -> None:
        if self.live is None:
            self.console.print(text, markup=False, highlight=False)

    def _table(self) -> Table:
        elapsed = time.perf_counter() - self.started
        table = Table(title=f"mgpt — round {self.round}, {elapsed:.1f} s", expand=False)
        for column in ("role", "status", "calls", "tokens", "cost"):
            table.add_column(column, justify="right" if column in ("calls", "tokens", "cost") else "left")
        for name, s in self.roles.items():
            cost = f"${s.cost:.4f}" + ("" if s.cost_known else "+?")
            table.add_row(name, s.status + _streaming(s.streaming), str(s.calls), str(s.tokens), cost)
        return table


def _streaming(calls: dict[tuple[str, int], int]) -> str:
    """The calls in flight and the tokens each has received: `` · #2 312 tok, #3 40 tok``."""
    if not calls:
        return ""
    shown = [f"#{turn} {tokens} tok" for (_, turn), tokens in sorted(calls.items())[:6]]
    more = f", +{len(calls) - 6}" if len(calls) > 6 else ""
    return " · " + ", ".join(shown) + more


@dataclass
class _TaskState:
    status: str = "queued"
    attempt: int = 0
    worker: str = ""
    detail: str = ""


class BatchView:
    """A batch's tasks as a live table (terminal) or one line per change (anything else).

    Fed :class:`mgpt.agents.runner.TaskUpdate`\\ s by the runner; ``describe(outcome)``
    says what a finished task's result was (tests passed, pass@1...)."""

    #: rows shown on a terminal: the running and retrying tasks first, then the latest
    ROWS = 20

    def __init__(self, console: Console, title: str = "mgpt batch", describe=None):
        self.console = console
        self.title = title
        self.describe = describe or (lambda outcome: "")
        self.tasks: dict[str, _TaskState] = {}
        self.started = time.perf_counter()
        self.live: Live | None = None

    def __enter__(self) -> "BatchView":
        if self.console.is_terminal:
            self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.__exit__(*exc)

    def __call__(self, update) -> None:
        state = self.tasks.setdefault(update.id, _TaskState())
        state.status, state.attempt = update.status, update.attempt or state.attempt
        state.worker = update.worker or state.worker
        detail = update.detail
        if update.outcome is not None:
            detail = self.describe(update.outcome) or update.outcome.error
            if update.outcome.status == "done":
                state.status = "passed" if update.outcome.ok else "failed"
        state.detail = " ".join(detail.split())[:100]
        if self.live is not None:
            self.live.update(self._table())
        elif update.status != "queued":
            attempt = f" (attempt {state.attempt})" if state.attempt > 1 else ""
            where = f" on {state.worker}" if state.worker and update.status in ("running", "retrying") else ""
            tail = f": {state.detail}" if state.detail else ""
            self.console.print(f"{update.id}: {state.status}{attempt}{where}{tail}", markup=False, highlight=False,
                               soft_wrap=True)

    def _table(self) -> Table:
        counts: dict[str, int] = {}
        for s in self.tasks.values():
            counts[s.status] = counts.get(s.status, 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        table = Table(title=f"{self.title} — {summary}, {time.perf_counter() - self.started:.0f} s", expand=False)
        for column in ("task", "status", "try", "worker", "detail"):
            table.add_column(column)
        order = {"running": 0, "retrying": 0}
        rows = sorted(self.tasks.items(), key=lambda kv: order.get(kv[1].status, 1))[: self.ROWS]
        for task_id, s in rows:
            table.add_row(task_id, s.status, str(s.attempt or ""), s.worker, s.detail)
        if len(self.tasks) > self.ROWS:
            table.caption = f"{len(self.tasks) - self.ROWS} more task(s) not shown"
        return table

"""What the terminal shows while a run works: who is doing what, tokens and cost.

On a terminal a rich live table updates in place; elsewhere (CI logs, pipes) each step is
one plain line. Both are fed the run's events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

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
        elif event.kind == "llm_call" and state:
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
            table.add_row(name, s.status, str(s.calls), str(s.tokens), cost)
        return table

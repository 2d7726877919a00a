"""A team: roles hired onto one bus, run in rounds until the work is done or a bound stops it.

Each round, every role with unread messages takes a turn, concurrently. The run stops when
no role has anything to do (``idle``), after ``max_rounds`` rounds, or when the budget is
spent, and :class:`RunResult` says which. A run that fails instead (an exception escapes:
a model error, a bad setting found mid-run, Ctrl-C) logs an ``error`` event before the
exception goes on, so the run log always ends with ``stop`` or ``error`` unless the process
was killed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from mgpt.agents.budget import Budget, Spend
from mgpt.agents.environment import Environment, Member
from mgpt.agents.errors import BudgetExceeded
from mgpt.agents.message import Message, UserRequirement
from mgpt.agents.runlog import Event
from mgpt.agents.secrets import redact


@dataclass
class RunContext:
    """What a team hands each role it hires. Passed in, never global.

    ``model`` is an :class:`mgpt.llm.Model` (typed loosely here: the kernel sits below the
    LLM layer). ``settings`` carries workflow options such as the number of fix rounds.
    """

    env: Environment
    model: Any = None
    budget: Budget = field(default_factory=Budget)
    workspace: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Worker(Member, Protocol):
    """A bus member the team can run: a :class:`~mgpt.roles.Role` is one."""

    def attach(self, context: RunContext) -> None: ...

    def has_news(self) -> bool: ...

    def begin_round(self) -> None: ...

    async def run(self) -> list[Message]: ...


StopReason = Literal["idle", "max_rounds", "budget"]


@dataclass
class RunResult:
    """How a team run ended."""

    stop_reason: StopReason
    rounds: int
    seconds: float
    spend: Spend
    messages: list[Message]
    detail: str = ""


class Team:
    """Hire roles, give them a model, a budget and a workspace, and run them."""

    def __init__(
        self,
        *,
        model: Any = None,
        env: Environment | None = None,
        budget: Budget | None = None,
        workspace: str | Path | None = None,
        settings: dict[str, Any] | None = None,
    ):
        self.env = env or Environment()
        self.context = RunContext(
            env=self.env,
            model=model,
            budget=budget or Budget(),
            workspace=Path(workspace) if workspace is not None else None,
            settings=dict(settings or {}),
        )
        self.roles: list[Worker] = []

    def hire(self, *roles: Worker) -> "Team":
        for role in roles:
            self.env.add(role)
            role.attach(self.context)
            self.roles.append(role)
        return self

    def publish(self, idea: str, *, send_to: str | None = None) -> Message:
        """Put a user's requirement on the bus."""
        message = Message(
            content=idea,
            sent_from="user",
            send_to=frozenset({send_to}) if send_to else frozenset(),
            cause_by=UserRequirement,
        )
        self.env.publish(message)
        return message

    async def run(self, idea: str | None = None, *, max_rounds: int = 20) -> RunResult:
        """Publish ``idea`` (if given) and run rounds until idle or a bound stops the run."""
        import asyncio  # here, not at the top: defining roles should not load the event loop machinery

        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        start = time.perf_counter()
        if idea is not None:
            self.publish(idea)
        rounds = 0
        reason: StopReason = "max_rounds"
        detail = f"stopped after the round limit of {max_rounds} (raise it with --max-rounds)"
        try:
            while True:
                busy = [r for r in self.roles if r.has_news()]
                if not busy:
                    reason, detail = "idle", "no role has anything left to do"
                    break
                if rounds >= max_rounds:
                    break
                rounds += 1
                self.env.emit(
                    Event(kind="round", detail=f"round {rounds}", data={"roles": [r.name for r in busy]})
                )
                # Every busy role sees the messages published before this round, whatever
                # order the concurrent turns run in: rounds are deterministic.
                for role in busy:
                    role.begin_round()
                # Roles with work run concurrently; an error in one is raised after all finish.
                results = await asyncio.gather(*(r.run() for r in busy), return_exceptions=True)
                errors = [e for e in results if isinstance(e, BaseException)]
                if errors:
                    raise errors[0]
        except BudgetExceeded as exc:
            reason, detail = "budget", str(exc)
        except BaseException as exc:  # Ctrl-C arrives as CancelledError or KeyboardInterrupt
            self._log_error(exc, rounds)
            raise
        finally:
            await self._close_roles()
        result = RunResult(
            stop_reason=reason,
            rounds=rounds,
            seconds=time.perf_counter() - start,
            spend=self.context.budget.total,
            messages=list(self.env.history),
            detail=detail,
        )
        self.env.emit(Event(kind="stop", detail=detail, data={"reason": reason, "rounds": rounds}))
        return result

    async def _close_roles(self) -> None:
        """Let each role release what it started (its tools' MCP servers): ``aclose``."""
        for role in self.roles:
            close = getattr(role, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # closing is best effort; the run's outcome stands
                    pass

    def _log_error(self, exc: BaseException, rounds: int) -> None:
        """Log the ``error`` event of a failed run; never hides the original error."""
        import asyncio

        interrupted = isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError))
        detail = "interrupted (Ctrl-C or cancelled)" if interrupted else (str(exc) or type(exc).__name__)
        try:
            self.env.emit(
                Event(
                    kind="error",
                    detail=redact(detail),
                    data={"type": type(exc).__name__, "rounds": rounds, "interrupted": interrupted},
                )
            )
        except Exception:  # a full disk must not replace the error the user needs to see
            pass

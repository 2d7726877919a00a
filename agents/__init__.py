"""The runtime kernel: typed messages, the environment bus with its durable log, teams."""

from .budget import Budget, Spend
from .environment import Environment
from .errors import BudgetExceeded, MgptError
from .message import EVERYONE, Message, UserRequirement
from .runlog import Event, RunLog, read_log
from .team import RunContext, RunResult, Team

__all__ = [
    "Budget", "BudgetExceeded", "EVERYONE", "Environment", "Event", "Message", "MgptError",
    "RunContext", "RunLog", "RunResult", "Spend", "Team", "UserRequirement", "read_log",
]

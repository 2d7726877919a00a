"""The runtime kernel: typed messages, the environment bus with its durable log, teams, tools.

Names load on first use (PEP 562): importing :mod:`mgpt.agents.errors` alone stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mgpt._lazy import lazy_exports

_EXPORTS = {
    "Budget": "budget", "Spend": "budget", "Environment": "environment",
    "BudgetExceeded": "errors", "MgptError": "errors", "EVERYONE": "message",
    "Message": "message", "UserRequirement": "message", "Event": "runlog", "RunLog": "runlog",
    "read_log": "runlog", "RunContext": "team", "RunResult": "team", "Team": "team",
    "Tool": "tools", "ToolCall": "tools", "ToolError": "tools", "ToolResult": "tools", "Toolbox": "tools",
    "tool": "tools", "MCPServer": "mcp",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from mgpt.agents.budget import Budget, Spend
    from mgpt.agents.environment import Environment
    from mgpt.agents.errors import BudgetExceeded, MgptError
    from mgpt.agents.message import EVERYONE, Message, UserRequirement
    from mgpt.agents.runlog import Event, RunLog, read_log
    from mgpt.agents.team import RunContext, RunResult, Team
    from mgpt.agents.tools import Tool, ToolCall, Toolbox, ToolError, ToolResult, tool
    from mgpt.agents.mcp import MCPServer


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

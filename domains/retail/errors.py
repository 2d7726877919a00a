"""The retail domain's two kinds of error: the service refusing a request (the model can
fix that: it is a tool result) and the domain's data missing (the user must fix that)."""

from __future__ import annotations

from mgpt.agents.errors import MgptError


class RetailError(MgptError):
    """The store refused a request: unknown ids, a rule of the policy broken, bad arguments.

    The message is the service's answer, worded as τ²-bench's retail tools word it
    (``Non-pending order cannot be cancelled``); a tool call that raises it changes nothing."""


class RetailDataError(MgptError):
    """The retail data (the store, the tasks, the policy) is not here, could not be fetched,
    or is not the data mgpt pinned. The message names the command that gets it."""

"""The root of mgpt's errors. Every layer's errors derive from :class:`MgptError`, which the
CLI prints as a one-line message (no traceback): it always says what the user can do."""

from __future__ import annotations


class MgptError(Exception):
    """An error mgpt reports to users as a message, not a traceback."""


class BudgetExceeded(MgptError):
    """The run's cost or token budget is spent; raised before the next model call."""

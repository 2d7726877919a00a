"""The error evaluation raises for input the user must fix."""

from __future__ import annotations

from mgpt.agents.errors import MgptError

__all__ = ["EvalInputError"]


class EvalInputError(MgptError):
    """An evaluation input is missing, empty, malformed, or does not line up with its
    partner file (the message names the file and what to change)."""

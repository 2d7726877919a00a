"""The few errors the LLM layer raises, each saying what to do about it.

``ModelConfigError`` is the user's to fix (a key, a model name, a URL);
``ModelUnavailableError`` is the service's (it kept failing after retries);
``TranscriptError`` is a replay that does not match the run.
"""

from __future__ import annotations

from mgpt.agents.errors import BudgetExceeded, MgptError

__all__ = ["MgptError", "BudgetExceeded", "ModelConfigError", "ModelUnavailableError", "TranscriptError"]


class ModelConfigError(MgptError):
    """The model is not configured, the key is wrong, or the model name is unknown."""


class ModelUnavailableError(MgptError):
    """The model service kept failing (rate limits, server errors, timeouts) after retries."""


class TranscriptError(MgptError):
    """A replayed transcript has no answer for a call, or cannot be read."""

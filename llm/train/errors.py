"""The one error the trainer raises on purpose, so the CLI can print it and exit 2.

Anything the user must fix (a misspelt config key, a missing data file, a block size
longer than the data, a folder that is not a checkpoint, a loss that went NaN) is a
:class:`TrainError` whose message says what was wrong and, where it helps, what to do.
"""

from __future__ import annotations

from mgpt.agents.errors import MgptError

__all__ = ["TrainError"]


class TrainError(MgptError):
    """A training run cannot start or cannot go on; the message says why."""

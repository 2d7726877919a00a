"""Every model call goes through one small interface (:class:`Model`), whichever backend
answers it: an OpenAI-compatible API, a local transformers model, or a replayed transcript.

Backends and the model workshop (``mgpt.llm.train``, ``mgpt.llm.eval``) import their heavy
dependencies only when used.
"""

from .base import CallContext, ChatMessage, Completion, Model, StreamChunk, Usage
from .client import LLM
from .cost import PriceTable
from .errors import BudgetExceeded, MgptError, ModelConfigError, ModelUnavailableError, TranscriptError
from .models import infer_model

__all__ = [
    "BudgetExceeded", "CallContext", "ChatMessage", "Completion", "LLM", "MgptError", "Model",
    "ModelConfigError", "ModelUnavailableError", "PriceTable", "StreamChunk", "TranscriptError",
    "Usage", "infer_model",
]

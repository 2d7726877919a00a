"""The torch runtime: local models on this machine.

:mod:`~mgpt.llm.local.model` (``LocalModel``: the ``hf:`` and ``local:`` backends),
:mod:`~mgpt.llm.local.generate` (loading and generation), :mod:`~mgpt.llm.local.sampling`
(``SamplingParams``: how an answer is decoded, here and in the serving engine),
:mod:`~mgpt.llm.local.constrained` (grammar-constrained decoding), :mod:`~mgpt.llm.local.fastllama` (the lean Llama-family
decoder), :mod:`~mgpt.llm.local.store` (the embedded model: the catalog, pull, convert, the
model folders in ``$MGPT_HOME``), :mod:`~mgpt.llm.local.embedder` (text embeddings for
retrieval) and :mod:`~mgpt.llm.local.testing` (tiny models built offline for tests).

Nothing here is imported by ``import mgpt``: torch loads when a model does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mgpt._lazy import lazy_exports

_EXPORTS = {"LocalModel": "model", "SamplingParams": "sampling"}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from mgpt.llm.local.model import LocalModel
    from mgpt.llm.local.sampling import SamplingParams


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Text embeddings: load a trained embedder and turn texts into unit vectors.

An embedder folder (written by ``mgpt train embed``) is a standard HF causal-LM folder
(``config.json``, ``model.safetensors``, tokenizer files) plus ``embed_config.json``
(pooling, max length, the base it started from). A text's vector is the mean of the last
hidden layer over its tokens, normalised to unit length, so cosine similarity is a dot
product::

    from mgpt.llm.local.embedder import load_embedder
    embedder = load_embedder("runs/embed")
    vectors = embedder.embed(["parse a date", "def parse(s): ..."])   # lists of floats

An :class:`Embedder` is itself the ``embed(texts) -> vectors`` callable that
:class:`mgpt.memory.retrieval.RetrievalMemory` takes.

Training one (``mgpt train embed``) is the workshop's: :mod:`mgpt.llm.train.embed`, on pairs
mined by :mod:`mgpt.llm.train.pairs`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from mgpt.memory.retrieval import tokenize

from mgpt.llm.errors import ModelConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["EMBED_CONFIG", "Embedder", "backbone", "encode", "load_embedder", "mean_pool", "normalize_text",
           "prepare_tokenizer"]

EMBED_CONFIG = "embed_config.json"


def normalize_text(text: str) -> str:
    """Lower-cased words with identifiers split (``parseDate(s)`` -> ``parse date parsedate s``).

    Used with models trained from scratch: "date" in a docstring and ``_date`` in code are then
    the same token, which a byte-level BPE would otherwise keep apart (``Ġdate`` vs ``date``).
    """
    return " ".join(tokenize(text))


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, C) hidden states, (B, T) mask -> (B, C) mean over the real tokens, unit length."""
    import torch.nn.functional as F

    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
    return F.normalize(pooled, dim=-1)


def encode(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int) -> torch.Tensor:
    """Unit vectors (B, C) for ``texts``; gradients flow when the caller allows them."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    device = next(model.parameters()).device
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    out = backbone(model)(input_ids=ids, attention_mask=mask)
    return mean_pool(out.last_hidden_state, mask)


def backbone(model: Any) -> Any:
    """The transformer under a causal LM (or under its peft wrapper): hidden states without
    the LM head, whose vocabulary-sized logits would cost more than the rest of a small model."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(inner, "base_model", inner)


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Pad on the right with a real pad token (a causal LM's tokenizer may have none: use eos)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


class Embedder:
    """``embed(texts)`` -> unit vectors, from a model folder. Call it like a function too."""

    def __init__(self, model: Any, tokenizer: Any, *, max_length: int = 128, name: str = "embedder",
                 batch_size: int = 32, normalize: bool = False):
        self.model = model.eval()
        self.tokenizer = prepare_tokenizer(tokenizer)
        self.max_length = max_length
        self.batch_size = batch_size
        self.normalize = normalize
        #: Names the vectors' space: a retrieval store re-embeds when it changes.
        self.name = name

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, C) float tensor of unit vectors."""
        import torch

        if not texts:
            hidden = getattr(self.model.config, "hidden_size", None) or self.model.config.n_embd
            return torch.zeros(0, hidden)
        if self.normalize:
            texts = [normalize_text(t) for t in texts]
        with torch.no_grad():
            parts = [encode(self.model, self.tokenizer, texts[i:i + self.batch_size], self.max_length)
                     for i in range(0, len(texts), self.batch_size)]
        return torch.cat(parts).float().cpu()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector (a list of floats) per text; an empty text gets the zero vector."""
        return self.encode(list(texts)).tolist()

    __call__ = embed


def load_embedder(path: str | Path, *, max_length: int | None = None) -> Embedder:
    """The embedder saved in ``path`` (by ``mgpt train embed``), or any HF causal-LM folder
    used as an untrained embedder (mean pooling, no ``embed_config.json`` needed)."""
    from mgpt.llm.local.generate import load_model

    p = Path(path)
    if not (p / "config.json").is_file():
        raise ModelConfigError(f"{p} is not a model folder (no config.json); train one with `mgpt train embed`")
    meta = json.loads((p / EMBED_CONFIG).read_text(encoding="utf-8")) if (p / EMBED_CONFIG).is_file() else {}
    loaded = load_model(p)
    length = max_length or int(meta.get("max_length", 128))
    cfg = loaded.model.config
    n_pos = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)
    length = min(length, n_pos) if n_pos else length  # a longer text is cut, never indexed past the positions
    return Embedder(loaded.model, loaded.tokenizer, max_length=length, normalize=bool(meta.get("normalize", False)),
                    name=f"{p.resolve()}@{meta.get('trained_at', '')}")

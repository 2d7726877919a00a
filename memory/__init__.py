"""What a role remembers: the messages it observed and produced.

:class:`Memory` is the small protocol; :class:`InMemory` the default, and
:class:`JsonlMemory` a durable one that survives a restart. :class:`RetrievalMemory` also
finds messages by similarity (BM25, or an injected embedder) and can persist in a folder
across runs; :func:`select_blocks` picks relevant context under a character budget.
"""

from mgpt.memory.base import InMemory, JsonlMemory, Memory
from mgpt.memory.retrieval import BM25, RetrievalMemory, select_blocks

__all__ = ["BM25", "InMemory", "JsonlMemory", "Memory", "RetrievalMemory", "select_blocks"]

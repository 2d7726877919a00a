"""What a role remembers: the messages it observed and produced.

:class:`Memory` is the small protocol; :class:`InMemory` the default, and
:class:`JsonlMemory` a durable one that survives a restart.
"""

from .base import InMemory, JsonlMemory, Memory
from .retrieval import BM25, RetrievalMemory, select_blocks

__all__ = ["BM25", "InMemory", "JsonlMemory", "Memory", "RetrievalMemory", "select_blocks"]

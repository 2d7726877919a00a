"""What a role remembers: the messages it observed and produced.

:class:`Memory` is the small protocol; :class:`InMemory` the default, and
:class:`JsonlMemory` a durable one that survives a restart.
"""

from .base import InMemory, JsonlMemory, Memory

__all__ = ["InMemory", "JsonlMemory", "Memory"]

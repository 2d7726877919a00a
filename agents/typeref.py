"""Stable names for Python types, so a typed field survives a round trip to JSON.

A message keeps real types in Python (``cause_by=WritePRD``, ``payload=PRD(...)``). On the
wire a type is written as ``"module:QualName"`` and read back by looking it up among
modules that are already imported: reading a log never imports code it names.
"""

from __future__ import annotations

import sys


def type_name(tp: type) -> str:
    """``"module:QualName"`` for ``tp``."""
    return f"{tp.__module__}:{tp.__qualname__}"


def resolve_type(name: str) -> type:
    """The type that :func:`type_name` named. Its module must already be imported."""
    module_name, _, qualname = name.partition(":")
    module = sys.modules.get(module_name)
    if module is None or not qualname:
        raise LookupError(
            f"type {name!r} is not known: import {module_name!r} before reading this message"
        )
    obj: object = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise LookupError(f"type {name!r} is not defined in module {module_name!r}")
    if not isinstance(obj, type):
        raise LookupError(f"{name!r} is not a type")
    return obj

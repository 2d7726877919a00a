"""Actions: the work roles do. :class:`Action` is the base; the software company's
actions live in :mod:`mgpt.actions.sop`."""

from mgpt.actions.base import Action, ActionContext, ActionError, UseTools, describe_schema
from mgpt.llm.parsing import ParseError, extract_code, extract_files, extract_json

__all__ = [
    "Action", "ActionContext", "ActionError", "ParseError", "UseTools", "describe_schema",
    "extract_code", "extract_files", "extract_json",
]

"""Actions: the work roles do. :class:`Action` is the base; the software company's
actions live in :mod:`mgpt.actions.planning` (PRD, design, tasks), :mod:`mgpt.actions.coding`
(code, tests, fixes) and :mod:`mgpt.actions.incremental` (changes to a finished project),
over the documents of :mod:`mgpt.actions.documents`."""

from mgpt.actions.base import Action, ActionContext, ActionError, describe_schema
from mgpt.llm.parsing import ParseError, extract_code, extract_files, extract_json

__all__ = [
    "Action", "ActionContext", "ActionError", "ParseError", "describe_schema",
    "extract_code", "extract_files", "extract_json",
]

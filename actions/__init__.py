"""Actions: the work roles do. :class:`Action` is the base (:mod:`mgpt.actions.base`).

The software company's actions: :mod:`mgpt.actions.planning` (PRD, design, tasks),
:mod:`mgpt.actions.coding` (code, tests, test runs, fixes) and, for an incremental run
(``--inc``), their variants in :mod:`mgpt.actions.incremental`; the documents they pass on
are in :mod:`mgpt.actions.documents`.
"""

from mgpt.actions.base import Action, ActionContext, ActionError, UseTools, describe_schema
from mgpt.llm.parsing import ParseError, extract_code, extract_files, extract_json

__all__ = [
    "Action", "ActionContext", "ActionError", "ParseError", "UseTools", "describe_schema",
    "extract_code", "extract_files", "extract_json",
]

"""Old module paths, kept importable for one release after the 0.2 layout (issue #18).

The package was reorganised into rooms (``sandbox/``, ``llm/backends``, ``llm/local``,
``llm/serve``, ``cli/``). Code that imports a module by its old path still works: the old
name is the new module itself (same object, so a monkeypatch through either name patches
both), and the import warns once with the new path. The aliases go in 0.3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: old module path -> new module path
MOVED = {
    "mgpt.actions.sandbox": "mgpt.sandbox.isolation",
    "mgpt.actions.project_env": "mgpt.sandbox.project_env",
    "mgpt.actions.workspace": "mgpt.sandbox.workspace",
    "mgpt.actions.parsing": "mgpt.llm.parsing",
    "mgpt.llm.base": "mgpt.llm.backends.base",
    "mgpt.llm.client": "mgpt.llm.backends.client",
    "mgpt.llm.cost": "mgpt.llm.backends.cost",
    "mgpt.llm.openai_model": "mgpt.llm.backends.openai_model",
    "mgpt.llm.replay": "mgpt.llm.backends.replay",
    "mgpt.llm.testing": "mgpt.llm.backends.testing",
    "mgpt.llm.generate": "mgpt.llm.local.generate",
    "mgpt.llm.constrained": "mgpt.llm.local.constrained",
    "mgpt.llm.fastllama": "mgpt.llm.local.fastllama",
    "mgpt.llm.embedded": "mgpt.llm.local.store",
    "mgpt.llm.embedded_testing": "mgpt.llm.local.testing",
    "mgpt.llm.embed": "mgpt.llm.local.embedder",
    "mgpt.llm.engine": "mgpt.llm.serve.engine",
    "mgpt.llm.chat": "mgpt.llm.serve.chat",
    "mgpt.llm.models_cli": "mgpt.cli.models",
    "mgpt.llm.train.cli": "mgpt.cli.train",
    "mgpt.llm.eval.cli": "mgpt.cli.eval",
    "mgpt.llm.eval.testing": "mgpt.llm.local.testing",
    "mgpt.llm.eval.tasks.cli": "mgpt.llm.eval.tasks.commandline",
    "mgpt.workflows.code_eval": "mgpt.llm.eval.code_sandbox",
    "mgpt.workflows.reinforce": "mgpt.llm.train.reinforce",
    "mgpt.serve_cli": "mgpt.cli.serve",
    "mgpt.live": "mgpt.cli.live",
    "mgpt.config": "mgpt.cli.config",
}


class _AliasLoader(importlib.abc.Loader):
    """Loads an old path as the module at its new path (the import system then keeps the
    module that ``exec_module`` left in ``sys.modules``)."""

    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def create_module(self, spec):
        return None  # the default empty module, replaced in exec_module

    def exec_module(self, module) -> None:
        warnings.warn(f"{self.old} moved to {self.new}; the old path goes in mgpt 0.3",
                      DeprecationWarning, stacklevel=2)
        sys.modules[self.old] = importlib.import_module(self.new)


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(fullname, new))


def install() -> None:
    """Make the old paths importable (idempotent)."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())  # before an editable install's finder

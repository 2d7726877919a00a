"""Where generated code runs: isolated, with deadlines that hold and capped output.

:mod:`~mgpt.sandbox.isolation` runs commands in a bubblewrap sandbox (own user, PID,
network and mount namespaces); :mod:`~mgpt.sandbox.project_env` gives each generated
project a virtual environment of its own, installed offline from a wheel cache;
:mod:`~mgpt.sandbox.workspace` is the folder a run writes into, and checks every path a
model proposes before anything is written.

Names load on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mgpt._lazy import lazy_exports

_EXPORTS = {
    "Limits": "isolation", "SandboxResult": "isolation", "SandboxUnavailable": "isolation",
    "run_pytest": "isolation", "run_sandboxed": "isolation", "ProjectEnv": "project_env",
    "ProjectEnvError": "project_env", "ensure_project_env": "project_env",
    "UnsafePathError": "workspace", "Workspace": "workspace",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from mgpt.sandbox.isolation import Limits, SandboxResult, SandboxUnavailable, run_pytest, run_sandboxed
    from mgpt.sandbox.project_env import ProjectEnv, ProjectEnvError, ensure_project_env
    from mgpt.sandbox.workspace import UnsafePathError, Workspace


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Roles: the :class:`Role` base and the software company's roles.

The built-in roles load on first use (PEP 562), so ``from mgpt.roles import Role`` does
not pull in the software company's actions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mgpt._lazy import lazy_exports

_EXPORTS = {
    "ReactMode": "base", "Role": "base", "Architect": "software", "Engineer": "software",
    "ProductManager": "software", "ProjectManager": "software", "QaEngineer": "software",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from mgpt.roles.base import ReactMode, Role
    from mgpt.roles.software import Architect, Engineer, ProductManager, ProjectManager, QaEngineer


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

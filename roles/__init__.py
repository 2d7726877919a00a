"""Roles: the :class:`Role` base, the software company's roles and the support desk's
(:mod:`mgpt.roles.service`).

The built-in roles load on first use (PEP 562), so ``from mgpt.roles import Role`` does
not pull in the software company's actions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mgpt._lazy import lazy_exports

_EXPORTS = {
    "ReactMode": "base", "Role": "base", "Architect": "software", "Engineer": "software",
    "ProductManager": "software", "ProjectManager": "software", "QaEngineer": "software",
    "Customer": "service", "PolicyChecker": "service", "SupportAgent": "service",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from mgpt.roles.base import ReactMode, Role
    from mgpt.roles.service import Customer, PolicyChecker, SupportAgent
    from mgpt.roles.software import Architect, Engineer, ProductManager, ProjectManager, QaEngineer


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

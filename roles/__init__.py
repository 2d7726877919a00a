"""Roles: the :class:`Role` base and the software company's roles."""

from .base import ReactMode, Role
from .software import Architect, Engineer, ProductManager, ProjectManager, QaEngineer

__all__ = ["Architect", "Engineer", "ProductManager", "ProjectManager", "QaEngineer", "ReactMode", "Role"]

"""Workflows: SOPs that wire roles into a team. The software company comes first."""

from mgpt.workflows.software_company import CompanyResult, WorkspaceNotEmpty, build_team, run_company

__all__ = ["CompanyResult", "WorkspaceNotEmpty", "build_team", "run_company"]

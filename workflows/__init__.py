"""Workflows: SOPs that wire roles into a team, one module per SOP, chosen by name
(:mod:`~mgpt.workflows.sops`); :mod:`~mgpt.workflows.harness` is the run plumbing they share
(options, workspace, transcript, resume, review). The software company comes first."""

from mgpt.workflows.harness import RunOptions, WorkspaceNotEmpty
from mgpt.workflows.software_company import CompanyOptions, CompanyResult, build_team, run_company
from mgpt.workflows.sops import Sop, available_sops, get_sop, register_sop

__all__ = [
    "CompanyOptions", "CompanyResult", "RunOptions", "Sop", "WorkspaceNotEmpty", "available_sops",
    "build_team", "get_sop", "register_sop", "run_company",
]

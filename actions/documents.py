"""The documents the software company passes along: PRD, design, tasks, code, test report.

Each is a pydantic model (the message payload) with ``to_markdown`` for people; the
workspace keeps both forms under ``docs/``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items) or "- (none)"


class Requirement(BaseModel):
    id: str = Field(description="short id such as R1")
    text: str = Field(description="what the software must do")
    priority: Literal["P0", "P1", "P2"] = Field("P1", description="P0 must have, P1 should, P2 nice to have")


class PRD(BaseModel):
    """Product requirements document (the product manager's output)."""

    # The schema carries the checks the validators below make (pattern, minItems), so a
    # grammar-constrained local model cannot write a PRD that parses but is then refused.
    project_name: str = Field(
        description="snake_case Python package name for the project",
        json_schema_extra={"pattern": _IDENT.pattern},
    )
    summary: str = Field(description="the product in one or two sentences")
    goals: list[str] = Field(description="product goals, at most 3", json_schema_extra={"minItems": 1})
    user_stories: list[str] = Field(
        description="'As a <user>, I want <x> so that <y>'", json_schema_extra={"minItems": 1}
    )
    requirements: list[Requirement] = Field(description="functional requirements", json_schema_extra={"minItems": 1})
    acceptance_criteria: list[str] = Field(
        description="checkable statements a test can verify", json_schema_extra={"minItems": 1}
    )
    anything_unclear: str = Field("", description="open questions, or empty")

    @field_validator("project_name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        value = value.strip()
        if not _IDENT.match(value):
            raise ValueError("project_name must be a snake_case Python identifier, e.g. word_counter")
        return value

    @field_validator("goals", "user_stories", "requirements", "acceptance_criteria")
    @classmethod
    def _not_empty(cls, value: list) -> list:
        if not value:
            raise ValueError("must list at least one item")
        return value

    def to_markdown(self) -> str:
        reqs = "\n".join(f"- **{r.id}** ({r.priority}) {r.text}" for r in self.requirements)
        md = (
            f"# PRD: {self.project_name}\n\n{self.summary}\n\n## Goals\n{_bullets(self.goals)}\n\n"
            f"## User stories\n{_bullets(self.user_stories)}\n\n## Requirements\n{reqs}\n\n"
            f"## Acceptance criteria\n{_bullets(self.acceptance_criteria)}\n"
        )
        if self.anything_unclear:
            md += f"\n## Open questions\n{self.anything_unclear}\n"
        return md

    def brief(self) -> str:
        """What downstream roles need: summary, requirements and acceptance criteria."""
        reqs = "\n".join(f"- {r.id} ({r.priority}): {r.text}" for r in self.requirements)
        return (
            f"Project: {self.project_name}\n{self.summary}\nRequirements:\n{reqs}\n"
            f"Acceptance criteria:\n{_bullets(self.acceptance_criteria)}"
        )


def _strip_fence(text: str) -> str:
    text = text.strip()
    m = re.match(r"^```[\w-]*\n(.*?)\n?```$", text, re.DOTALL)
    return m.group(1).strip() if m else text


class FileSpec(BaseModel):
    path: str = Field(description="relative path such as pkg/module.py")
    purpose: str = Field(description="what the file contains")


class SystemDesign(BaseModel):
    """The architect's output."""

    implementation_approach: str = Field(description="how it will be built, key choices")
    files: list[FileSpec] = Field(description="the source files (not tests), package __init__.py included")
    class_diagram: str = Field(description="mermaid classDiagram of data structures and interfaces")
    sequence_diagram: str = Field(description="mermaid sequenceDiagram of the main call flow")
    anything_unclear: str = Field("", description="open questions, or empty")

    @field_validator("class_diagram", "sequence_diagram")
    @classmethod
    def _mermaid(cls, value: str, info) -> str:
        value = _strip_fence(value)
        keyword = "classDiagram" if info.field_name == "class_diagram" else "sequenceDiagram"
        if not value.lstrip().startswith(keyword):
            raise ValueError(f"must be mermaid text starting with '{keyword}'")
        return value

    @field_validator("files")
    @classmethod
    def _source_files(cls, files: list[FileSpec]) -> list[FileSpec]:
        if not files:
            raise ValueError("must list at least one file")
        paths = [f.path for f in files]
        if len(set(paths)) != len(paths):
            raise ValueError("file paths must be unique")
        for path in paths:
            if path.startswith("tests/") or path.split("/")[-1].startswith("test_"):
                raise ValueError(f"{path}: list source files only; QA writes the tests")
        return files

    def to_markdown(self) -> str:
        files = "\n".join(f"- `{f.path}`: {f.purpose}" for f in self.files)
        md = (
            f"# System design\n\n## Implementation approach\n{self.implementation_approach}\n\n"
            f"## Files\n{files}\n\n## Data structures and interfaces\n```mermaid\n"
            f"{self.class_diagram}\n```\n\n## Program call flow\n```mermaid\n{self.sequence_diagram}\n```\n"
        )
        if self.anything_unclear:
            md += f"\n## Open questions\n{self.anything_unclear}\n"
        return md


class Task(BaseModel):
    path: str = Field(description="the file this task writes (one of the design's files)")
    description: str = Field(description="what to implement in it")
    depends_on: list[str] = Field(default_factory=list, description="paths of files it imports from")


class TaskList(BaseModel):
    """The project manager's output: one task per file, dependencies first."""

    tasks: list[Task] = Field(description="ordered so every file comes after the files it depends on")

    @model_validator(mode="after")
    def _ordered(self) -> "TaskList":
        if not self.tasks:
            raise ValueError("tasks must list at least one task")
        seen: set[str] = set()
        paths = {t.path for t in self.tasks}
        for task in self.tasks:
            for dep in task.depends_on:
                if dep not in paths:
                    raise ValueError(f"task {task.path} depends on {dep}, which no task writes")
                if dep not in seen:
                    raise ValueError(f"task {task.path} comes before its dependency {dep}")
            if task.path in seen:
                raise ValueError(f"{task.path} appears twice")
            seen.add(task.path)
        return self

    def to_markdown(self) -> str:
        rows = "\n".join(
            f"{i}. `{t.path}`: {t.description}"
            + (f" (after {', '.join(t.depends_on)})" if t.depends_on else "")
            for i, t in enumerate(self.tasks, 1)
        )
        return f"# Tasks\n\n{rows}\n"


class CodeBundle(BaseModel):
    """Files the engineer wrote or changed."""

    files: list[str]
    #: For a fix: a unified diff of each changed file (path -> diff; an empty diff when the
    #: file came back unchanged), so the run log shows what every fix did. Optional: older
    #: logs and the first writes leave it empty.
    diffs: dict[str, str] = Field(default_factory=dict)

    def to_markdown(self) -> str:
        return "Wrote " + ", ".join(self.files)


class TestReport(BaseModel):
    """QA's result of running the project's tests."""

    __test__ = False  # not a pytest class

    passed: int
    failed: int
    errors: int
    exit_code: int
    timed_out: bool = False
    output: str = Field("", description="the tail of pytest's output")
    fix_round: int = 0
    final: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def to_markdown(self) -> str:
        status = "PASSED" if self.ok else "FAILED"
        return (
            f"# QA report\n\nStatus: **{status}** — {self.passed} passed, {self.failed} failed, "
            f"{self.errors} errors (exit code {self.exit_code}"
            + (", timed out" if self.timed_out else "")
            + f"; fix rounds used: {self.fix_round})\n\n```\n{self.output}\n```\n"
        )

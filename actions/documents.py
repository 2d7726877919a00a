"""The documents the software company passes along: PRD, design, tasks, code, test report.

Each is a pydantic model (the message payload) with ``to_markdown`` for people; the
workspace keeps both forms under ``docs/``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

#: A package name: snake_case, at most 64 characters. The bound is in the pattern itself
#: (and so in a local model's grammar), because a small model under an unbounded pattern
#: can fill the name until its token budget ends, and a name of hundreds of characters is
#: a path the file system refuses ("File name too long").
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")

#: The characters of a path segment in a generated project.
_SEGMENT_CHARS = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


def _char_class(chars: str) -> str:
    """A regex character class of exactly ``chars`` (runs written as ranges)."""
    codes = sorted(set(map(ord, chars.replace("-", ""))))
    out, i = [], 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        lo, hi = (re.escape(chr(codes[i])), re.escape(chr(codes[j])))
        out.append(lo if i == j else f"{lo}{hi}" if j == i + 1 else f"{lo}-{hi}")
        i = j + 1
    # A hyphen goes last, unescaped: every regex dialect reads it there as itself.
    return "[" + "".join(out) + ("-" if "-" in chars else "") + "]"


#: The longest path segment (directory or file stem) the schemas allow.
_SEGMENT_MAX = 40


def _run_not_starting_with(word: str, chars: str = _SEGMENT_CHARS, longest: int = _SEGMENT_MAX) -> str:
    """A regex (no lookahead: grammar engines have none) for the runs of 1 to ``longest``
    ``chars`` that do not start with ``word``: they leave it at some letter, or stop short."""
    alternatives = [
        re.escape(word[:i]) + _char_class(chars.replace(c, "")) + _char_class(chars) + f"{{0,{longest - i - 1}}}"
        for i, c in enumerate(word)
    ]
    alternatives += [re.escape(word[:i]) for i in range(1, len(word))]
    return "(?:" + "|".join(alternatives) + ")"


#: A source file's path as the design and the tasks name it: relative, segments of letters,
#: digits, ``_`` and ``-`` (at most 40 each), a file name with an extension; not a test (not under ``tests/``,
#: no ``test_`` file), since QA writes those. The schema carries it as a ``pattern``, so a
#: grammar-constrained model can only write such paths.
_FILE_NAME = _run_not_starting_with("test_") + r"\.[A-Za-z0-9]{1,8}"
#: (Written ``name|dir/name``, not ``(dir/)?name``: xgrammar 0.2.9 reads an optional group
#: holding a starred group too loosely, and would let ``tests/x.py`` through.)
SOURCE_PATH = (
    f"^(?:{_FILE_NAME}|(?:{_run_not_starting_with('tests')}|tests{_char_class(_SEGMENT_CHARS)}{{1,{_SEGMENT_MAX - 5}}})/"
    f"(?:{_char_class(_SEGMENT_CHARS)}{{1,{_SEGMENT_MAX}}}/)*{_FILE_NAME})$"
)


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
            raise ValueError(
                "project_name must be a snake_case Python identifier of at most 64 characters, e.g. word_counter"
            )
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
    path: str = Field(description="relative path such as pkg/module.py", json_schema_extra={"pattern": SOURCE_PATH})
    purpose: str = Field(description="what the file contains")


def _merge_files(files: list[FileSpec]) -> list[FileSpec]:
    """One entry per path, in first-listed order; a path listed again adds its purpose to
    the first entry's (nothing is dropped but exact repeats)."""
    merged: dict[str, FileSpec] = {}
    for spec in files:
        kept = merged.get(spec.path)
        if kept is None:
            merged[spec.path] = spec
        elif spec.purpose and spec.purpose not in kept.purpose.split("; "):
            purpose = f"{kept.purpose}; {spec.purpose}" if kept.purpose else spec.purpose
            merged[spec.path] = FileSpec(path=spec.path, purpose=purpose)
    return list(merged.values())


def _diagram(keyword: str, description: str):
    """A mermaid diagram field: the schema says it starts with ``keyword`` (a pattern the
    grammar of a constrained model enforces); the validator also takes it fenced."""
    return Field(description=description, json_schema_extra={"pattern": f"^{keyword}"})


class SystemDesign(BaseModel):
    """The architect's output."""

    implementation_approach: str = Field(description="how it will be built, key choices")
    files: list[FileSpec] = Field(
        description="the source files (not tests), package __init__.py included",
        json_schema_extra={"minItems": 1, "maxItems": 12},
    )
    class_diagram: str = _diagram("classDiagram", "mermaid classDiagram of data structures and interfaces")
    sequence_diagram: str = _diagram("sequenceDiagram", "mermaid sequenceDiagram of the main call flow")
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
        files = _merge_files(files)  # a repeated path is one file: lossless, so no re-ask
        for path in (f.path for f in files):
            if path.startswith("tests/") or path.split("/")[-1].startswith("test_"):
                raise ValueError(f"{path}: list source files only; QA writes the tests")
        return files

    @classmethod
    def package_schema(cls, package: str) -> dict:
        """This model's JSON schema with file paths narrowed to Python modules of
        ``package`` (``package/x.py``, ``package/sub/x.py``) and a top-level
        ``requirements.txt``: the project
        shape the prompt asks for. Every path it admits also fits :data:`SOURCE_PATH`, so an
        answer of this schema is a valid design; a grammar-constrained model then cannot
        wander off into paths such as ``python3.10``."""
        if not _IDENT.match(package):
            raise ValueError(f"{package!r} is not a Python package name")
        schema = cls.model_json_schema()
        seg = _char_class(_SEGMENT_CHARS)
        module = _run_not_starting_with("test_") + "\\.py"
        # At most one subpackage deep (alternatives, not an optional group: see SOURCE_PATH).
        schema["$defs"]["FileSpec"]["properties"]["path"]["pattern"] = (
            f"^(?:{package}/{module}|{package}/{seg}{{1,{_SEGMENT_MAX}}}/{module}|requirements\\.txt)$"
        )
        return schema

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
    path: str = Field(
        description="the file this task writes (one of the design's files)", json_schema_extra={"pattern": SOURCE_PATH}
    )
    description: str = Field(description="what to implement in it")
    depends_on: list[str] = Field(default_factory=list, description="paths of files it imports from")


class TaskList(BaseModel):
    """The project manager's output: one task per file, dependencies first.

    Slips that can be undone without losing anything are repaired rather than refused: a
    path listed twice becomes one task (descriptions and dependencies joined), a file
    "depending" on itself loses that entry, and tasks are put in dependency order (stable:
    the given order wherever it already works). A dependency no task writes, or a cycle,
    is still an error: no order fixes those.
    """

    tasks: list[Task] = Field(
        description="ordered so every file comes after the files it depends on", json_schema_extra={"minItems": 1}
    )

    @model_validator(mode="after")
    def _ordered(self) -> "TaskList":
        if not self.tasks:
            raise ValueError("tasks must list at least one task")
        merged: dict[str, Task] = {}
        for task in self.tasks:
            kept = merged.get(task.path)
            if kept is None:
                merged[task.path] = task.model_copy(update={"depends_on": list(task.depends_on)})
                continue
            if task.description and task.description not in kept.description.split("; "):
                kept.description = f"{kept.description}; {task.description}" if kept.description else task.description
            kept.depends_on += task.depends_on
        for task in merged.values():
            task.depends_on = [d for d in dict.fromkeys(task.depends_on) if d != task.path]
            for dep in task.depends_on:
                if dep not in merged:
                    raise ValueError(f"task {task.path} depends on {dep}, which no task writes")
        ordered: list[Task] = []
        done: set[str] = set()
        waiting = list(merged.values())
        while waiting:  # at most len(tasks) passes: each takes at least one task or stops
            ready = next((t for t in waiting if all(d in done for d in t.depends_on)), None)
            if ready is None:
                cycle = ", ".join(t.path for t in waiting)
                raise ValueError(f"the tasks {cycle} depend on each other in a cycle")
            ordered.append(ready)
            done.add(ready.path)
            waiting.remove(ready)
        self.tasks = ordered
        return self

    @classmethod
    def plan_schema(cls, paths: list[str]) -> dict:
        """The JSON schema of a plan for exactly these files, keyed by path in this order:
        each an object with ``description`` and ``depends_on``, which may name only files
        before it. Every answer of this shape is a valid task list (:meth:`from_plan`), so
        a grammar-constrained model cannot miss a file, repeat one, or make a cycle."""
        files: dict[str, dict] = {}
        for i, path in enumerate(paths):
            earlier = paths[:i]
            deps: dict = {"type": "array", "description": "files listed before this one that it imports from"}
            deps.update({"items": {"enum": earlier}, "maxItems": len(earlier)} if earlier else {"items": {"type": "string"}, "maxItems": 0})
            files[path] = {
                "type": "object",
                "properties": {"description": {"type": "string", "description": "what to implement in it"}, "depends_on": deps},
                "required": ["description", "depends_on"],
                "additionalProperties": False,
            }
        return {"title": "TaskList", "type": "object", "properties": files, "required": list(paths), "additionalProperties": False}

    @classmethod
    def from_plan(cls, data: object, paths: list[str]) -> "TaskList":
        """A task list from a :meth:`plan_schema` answer (path -> description and
        dependencies), or from a plain ``{"tasks": [...]}`` answer (a backend that does not
        enforce the schema may write that)."""
        if isinstance(data, dict) and isinstance(data.get("tasks"), list):
            return cls.model_validate(data)
        if not isinstance(data, dict) or not data:
            raise ValueError("expected an object with one entry per file, keyed by its path")
        unknown = [p for p in data if p not in paths]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not a file of the design ({', '.join(paths)})")
        tasks = []
        for path in [p for p in paths if p in data]:
            entry = data[path]
            if not isinstance(entry, dict):
                raise ValueError(f"{path}: expected an object with description and depends_on")
            tasks.append({"path": path, "description": entry.get("description", ""), "depends_on": entry.get("depends_on") or []})
        return cls.model_validate({"tasks": tasks})

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


# -- incremental runs (``mgpt run --inc``): documents that change a finished project ---------


def slugify(text: str, limit: int = 40) -> str:
    """``"Add due dates!"`` -> ``add_due_dates``: a file-name-safe, identifier-safe slug."""
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit].strip("_")
    return slug or "change"


class ChangeRequest(BaseModel):
    """The product manager's output in an incremental run: what changes in a finished
    product. Applied to the old PRD it gives the updated one (:meth:`apply`)."""

    title: str = Field(description="the change in a few words, e.g. 'due dates'")
    summary: str = Field(description="what changes for the user and why, in one or two sentences")
    user_stories: list[str] = Field(description="'As a <user>, I want <x> so that <y>' for the change")
    requirements: list[Requirement] = Field(
        description="new or changed requirements; reusing an existing id replaces that requirement"
    )
    removed_requirements: list[str] = Field(default_factory=list, description="ids of requirements dropped, or empty")
    acceptance_criteria: list[str] = Field(description="checkable statements a test of the change can verify")
    anything_unclear: str = Field("", description="open questions, or empty")

    @field_validator("user_stories", "requirements", "acceptance_criteria")
    @classmethod
    def _not_empty(cls, value: list) -> list:
        if not value:
            raise ValueError("must list at least one item")
        return value

    def apply(self, prd: PRD | None, project_name: str) -> PRD:
        """The PRD after this change. Without an old PRD (a project mgpt did not make) the
        change request is the first PRD of the project's known requirements."""
        if prd is None:
            return PRD(
                project_name=project_name,
                summary=f"An existing project, extended: {self.summary}",
                goals=[self.title],
                user_stories=self.user_stories,
                requirements=self.requirements,
                acceptance_criteria=self.acceptance_criteria,
                anything_unclear=self.anything_unclear,
            )
        new = {r.id: r for r in self.requirements}
        dropped = set(self.removed_requirements)
        kept = [new.pop(r.id, r) for r in prd.requirements if r.id not in dropped]
        return prd.model_copy(update={
            "user_stories": [*prd.user_stories, *(s for s in self.user_stories if s not in prd.user_stories)],
            "requirements": [*kept, *new.values()] or prd.requirements,
            "acceptance_criteria": [*prd.acceptance_criteria,
                                    *(c for c in self.acceptance_criteria if c not in prd.acceptance_criteria)],
            "anything_unclear": self.anything_unclear,
        })

    def brief(self) -> str:
        """What downstream roles need: the change, its requirements and criteria."""
        reqs = "\n".join(f"- {r.id} ({r.priority}): {r.text}" for r in self.requirements)
        removed = f"Removed requirements: {', '.join(self.removed_requirements)}\n" if self.removed_requirements else ""
        return (
            f"Change: {self.title}\n{self.summary}\nNew or changed requirements:\n{reqs}\n{removed}"
            f"Acceptance criteria of the change:\n{_bullets(self.acceptance_criteria)}"
        )

    def to_markdown(self) -> str:
        reqs = "\n".join(f"- **{r.id}** ({r.priority}) {r.text}" for r in self.requirements)
        md = (
            f"# Change request: {self.title}\n\n{self.summary}\n\n## User stories\n"
            f"{_bullets(self.user_stories)}\n\n## New or changed requirements\n{reqs}\n"
        )
        if self.removed_requirements:
            md += f"\n## Removed requirements\n{_bullets(self.removed_requirements)}\n"
        md += f"\n## Acceptance criteria\n{_bullets(self.acceptance_criteria)}\n"
        if self.anything_unclear:
            md += f"\n## Open questions\n{self.anything_unclear}\n"
        return md


class DesignChange(BaseModel):
    """The architect's output in an incremental run: which files change, which are new,
    and the interfaces after the change. Applied to the old design it gives the new one."""

    implementation_approach: str = Field(description="how the change is made, key choices")
    changed_files: list[FileSpec] = Field(description="existing source files that must change (purpose after the change)")
    new_files: list[FileSpec] = Field(default_factory=list, description="source files to add (not tests), or empty")
    class_diagram: str = _diagram(
        "classDiagram", "mermaid classDiagram of the data structures and interfaces after the change"
    )
    sequence_diagram: str = _diagram("sequenceDiagram", "mermaid sequenceDiagram of the changed call flow")
    anything_unclear: str = Field("", description="open questions, or empty")

    _mermaid = field_validator("class_diagram", "sequence_diagram")(SystemDesign._mermaid.__func__)  # type: ignore[attr-defined]

    @model_validator(mode="after")
    def _files(self) -> "DesignChange":
        paths = [f.path for f in [*self.changed_files, *self.new_files]]
        if not paths:
            raise ValueError("changed_files and new_files are both empty: name the files the change touches")
        if len(set(paths)) != len(paths):
            raise ValueError("a file is listed twice (a file is either changed or new)")
        for path in paths:
            if path.startswith("tests/") or path.split("/")[-1].startswith("test_"):
                raise ValueError(f"{path}: list source files only; QA writes the tests")
        return self

    @property
    def paths(self) -> list[str]:
        return [f.path for f in [*self.changed_files, *self.new_files]]

    def apply(self, design: SystemDesign | None, existing: dict[str, str]) -> SystemDesign:
        """The design after the change: the old files (``existing`` path -> purpose when
        there is no old design), changed purposes updated, new files added."""
        files = list(design.files) if design is not None else [FileSpec(path=p, purpose=s) for p, s in existing.items()]
        changed = {f.path: f for f in self.changed_files}
        files = [changed.pop(f.path, f) for f in files]
        files += [*changed.values(), *(f for f in self.new_files if f.path not in {g.path for g in files})]
        return SystemDesign(
            implementation_approach=(
                f"{design.implementation_approach}\n\nChange: {self.implementation_approach}"
                if design is not None else self.implementation_approach
            ),
            files=files,
            class_diagram=self.class_diagram,
            sequence_diagram=self.sequence_diagram,
            anything_unclear=self.anything_unclear,
        )

    def to_markdown(self) -> str:
        changed = "\n".join(f"- `{f.path}`: {f.purpose}" for f in self.changed_files) or "- (none)"
        new = "\n".join(f"- `{f.path}`: {f.purpose}" for f in self.new_files) or "- (none)"
        return (
            f"## Design change\n\n{self.implementation_approach}\n\n### Changed files\n{changed}\n\n"
            f"### New files\n{new}\n"
        )

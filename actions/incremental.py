"""Incremental development: the software company's steps, run against a finished project.

An incremental run (``mgpt run "add due dates" -w EXISTING --inc``) uses the same five
roles, each holding the incremental variants of its steps (the roles declare them as
``incremental_actions``). A variant is its own action: it subclasses the step it replaces
and publishes as that step (:attr:`~mgpt.actions.base.Action.step`), so routing, review,
resume and history work unchanged. The variants read the project from the team's settings
(``settings["incremental"]``, a :class:`ProjectState`):

* :class:`WriteChangeRequest` (the product manager): a :class:`~.documents.ChangeRequest`
  against the old PRD (or, for a project mgpt did not make, against the project map); the
  updated PRD goes to ``docs/prd.*`` and the change itself to ``docs/changes/NNN-<slug>.md``;
* :class:`WriteDesignChange` (the architect): a :class:`~.documents.DesignChange` naming
  the files that change and the new ones; the updated design goes to ``docs/design.*``;
* :class:`WriteChangeTasks` (the project manager): tasks for those files only;
* :class:`WriteChangedCode` (the engineer): rewrites those files, seeing the current code of
  each file it changes and the interfaces of the rest; every other file stays byte for
  byte as it was;
* :class:`WriteChangeTests` (QA): new test files for the change; the old test files are
  never written (:class:`FixBugKeepingOldTests` refuses a fix to one), so the run passes
  only when old and new tests pass.

The project map is the interfaces of the project's modules within a character budget
(``settings["map_budget"]``); a project too big for it gets a truncated map that says
what was left out.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mgpt.agents.message import UserRequirement
from mgpt.agents.scheduler import Launch, run_all, run_graph
from mgpt.llm.backends.base import OutputFormat

from mgpt.actions.base import ActionContext, ActionError, describe_schema
from mgpt.actions.coding import (
    FixBug, WriteCode, WriteTests, code_dependencies, file_interfaces, file_kind, module_name, support_files,
    tests_for_modules,
)
from mgpt.actions.documents import (
    PRD, ChangeRequest, CodeBundle, DesignChange, SystemDesign, Task, TaskList, slugify,
)
from mgpt.actions.interfaces import python_interface
from mgpt.actions.planning import PROJECT_RULES, WriteDesign, WritePRD, WriteTasks, save_document, system_prompt
from mgpt.llm.parsing import ParseError, extract_code, extract_file, extract_json
from mgpt.sandbox.project_env import DECLARING_FILES
from mgpt.sandbox.workspace import UnsafePathError, Workspace

#: Characters of project map a prompt may carry (``map_budget`` setting overrides).
MAP_BUDGET = 6000

#: Folders a scan never enters: environments, build output, caches, VCS.
SKIP_DIRS = {".git", ".mgpt", ".venv", "venv", "env", "build", "dist", "node_modules", "__pycache__",
             ".pytest_cache", ".tox", ".mypy_cache", "site-packages"}


def is_test_file(path: str) -> bool:
    pure = PurePosixPath(path)
    return pure.parts[:1] == ("tests",) or pure.name.startswith("test_") or pure.name == "conftest.py"


@dataclass
class ProjectState:
    """What an incremental run knows of the project before it changes anything."""

    project_name: str
    #: Source files (Python modules and declaring files) -> one-line summary.
    sources: dict[str, str]
    #: The test files the project had: kept, and they must still pass.
    old_tests: list[str]
    #: The interfaces of the source modules, within the budget (with a note if truncated).
    map: str
    #: The number of this change (``docs/changes/NNN-...``).
    number: int
    prd: PRD | None = None
    design: SystemDesign | None = None
    #: Filled as the run goes: the change and the design change.
    change: ChangeRequest | None = field(default=None, repr=False)
    design_change: DesignChange | None = field(default=None, repr=False)

    @property
    def made_by_mgpt(self) -> bool:
        return self.prd is not None and self.design is not None


def _load(path: Path, model):
    try:
        return model.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _summary(path: Path) -> str:
    """The first line of a module's docstring, or what kind of file it is."""
    if path.suffix != ".py":
        return "declares the project's dependencies" if path.name in DECLARING_FILES else "project file"
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8", errors="replace")))
    except SyntaxError:
        doc = None
    return doc.strip().splitlines()[0] if doc else "existing module"


def project_files(root: Path) -> list[str]:
    """The project's own files, relative and sorted (environments and caches left out)."""
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and not path.is_symlink():
            out.append(rel.as_posix())
    return out


def project_map(root: Path, sources: list[str], budget: int, texts: dict[str, str] | None = None) -> str:
    """The interfaces of ``sources`` (Python modules), whole modules in order while they
    fit in ``budget`` characters; when some do not, a closing note (counted in the budget)
    names what was left out (and, when even the names do not fit, how many more).
    ``texts`` gives a module's content instead of the file's (a version not on disk)."""
    blocks: list[tuple[str, str]] = []
    for path in sources:
        if path.endswith(".py"):
            text = (texts or {}).get(path)
            if text is None:
                text = (root / path).read_text(encoding="utf-8", errors="replace")
            blocks.append((path, f"# {path} ({module_name(path)})\n"
                                 f"{python_interface(text).strip() or '# (no public names)'}"))
    kept: list[str] = []
    used = 0
    for _, block in blocks:
        if used + len(block) > budget:
            break
        kept.append(block)
        used += len(block) + 2
    # Make room for the note by leaving out more modules (bounded: one pass over kept).
    while len(kept) < len(blocks):
        note = _left_out_note([p for p, _ in blocks[len(kept):]], budget)
        if used + len(note) <= budget or not kept:
            return "\n\n".join([*kept, note])
        used -= len(kept.pop()) + 2
    return "\n\n".join(kept)


def _left_out_note(left: list[str], budget: int) -> str:
    head = f"# (map truncated to {budget} characters: {len(left)} module(s) left out: "
    room = max(60, budget // 4 - len(head))
    names: list[str] = []
    for path in left:
        if len(", ".join([*names, path])) > room:
            break
        names.append(path)
    more = f" and {len(left) - len(names)} more" if len(names) < len(left) else ""
    return head + ", ".join(names) + more + ")"


def _project_name(root: Path, sources: list[str], prd: PRD | None) -> str:
    if prd is not None:
        return prd.project_name
    packages = [p.split("/")[0] for p in sources if p.count("/") == 1 and p.endswith("/__init__.py")]
    if packages:
        return packages[0]
    modules = [PurePosixPath(p).stem for p in sources if "/" not in p and p.endswith(".py")]
    return slugify(modules[0] if modules else root.name) or "project"


def scan_project(root: Path, budget: int = MAP_BUDGET) -> ProjectState:
    """Read what the project is: mgpt's documents when it made it, its code in any case."""
    docs = root / "docs"
    prd = _load(docs / "prd.json", PRD)
    design = _load(docs / "design.json", SystemDesign)
    files = project_files(root)
    sources = [f for f in files if (f.endswith(".py") and not is_test_file(f)) or f in DECLARING_FILES]
    tests = [f for f in files if f.endswith(".py") and is_test_file(f)]
    changes = docs / "changes"
    number = 1 + (len(list(changes.glob("[0-9][0-9][0-9]-*.md"))) if changes.is_dir() else 0)
    return ProjectState(
        project_name=_project_name(root, sources, prd),
        sources={f: _summary(root / f) for f in sources},
        old_tests=tests,
        map=project_map(root, sources, budget),
        number=number,
        prd=prd,
        design=design,
    )



def state(ctx: ActionContext) -> ProjectState | None:
    """The run's project state when the run is incremental."""
    found = ctx.settings.get("incremental")
    return found if isinstance(found, ProjectState) else None


def require_state(ctx: ActionContext) -> ProjectState:
    """The run's project state; an incremental step outside an incremental run is refused."""
    project = state(ctx)
    if project is None:
        raise ActionError("an incremental step needs the project it extends: run it with --inc "
                          "(settings['incremental'] holds a ProjectState)")
    return project


def _ws(ctx: ActionContext) -> Workspace:
    if ctx.workspace is None:
        raise ActionError("an incremental run works on a workspace: run it in a team with one")
    return Workspace(ctx.workspace)


def _files_list(project: ProjectState) -> str:
    return "\n".join(f"- {p}: {s}" for p, s in project.sources.items()) or "- (none)"


def _change_summary(project: ProjectState) -> str:
    return project.change.summary if project.change else ""


def change_path(project: ProjectState) -> str:
    title = project.change.title if project.change is not None else "change"
    return f"docs/changes/{project.number:03d}-{slugify(title).replace('_', '-')}.md"


# -- the product manager -------------------------------------------------------------------


class WriteChangeRequest(WritePRD):
    """WritePRD in an incremental run: a change request against the product, applied to
    its PRD (``docs/prd.*``) and kept as ``docs/changes/NNN-<slug>.md``."""

    step = WritePRD
    description = "Write a change request against the existing product"

    async def run(self, ctx: ActionContext) -> ChangeRequest:
        project = require_state(ctx)
        idea = ctx.latest(UserRequirement)
        if project.prd is not None:
            known = f"The product's current requirements document:\n{project.prd.brief()}"
        else:
            known = (f"The project has no requirements document. Its files:\n{_files_list(project)}\n\n"
                     f"Its modules (interfaces):\n{project.map}")
        prompt = (
            f"The product `{project.project_name}` exists and works. Write a change request for this "
            f"change:\n{idea.content if idea else ''}\n\n{known}\n\nDescribe only what changes; existing "
            "behaviour stays as it is unless the change says otherwise. Reuse a requirement's id to "
            "change it; give new requirements new ids."
        )
        change = await self.ask_structured(prompt, ChangeRequest, system=system_prompt(ctx))
        project.change = change
        save_document(ctx, "prd", change.apply(project.prd, project.project_name))
        if ctx.workspace is not None:
            _ws(ctx).write(change_path(project), change.to_markdown())
        return change


# -- the architect -------------------------------------------------------------------------


def check_design_change(change: DesignChange, ws: Workspace, project: ProjectState) -> DesignChange:
    """Changed files must exist, new ones must not, and none may be an old test."""
    for spec in change.changed_files:
        if not ws.exists(spec.path):
            raise ValueError(f"changed file {spec.path} does not exist; list it under new_files, or "
                             "name an existing file")
    for spec in change.new_files:
        if ws.exists(spec.path):
            raise ValueError(f"new file {spec.path} already exists; list it under changed_files")
    for path in change.paths:
        try:
            ws.check(path)
        except UnsafePathError as exc:  # the model can fix this one: send it back
            raise ValueError(str(exc)) from None
    return change


class WriteDesignChange(WriteDesign):
    """WriteDesign in an incremental run: which files change and which are new, applied to
    the design (``docs/design.*``) and added to the change's page."""

    step = WriteDesign
    description = "Name the files the change touches and the new ones"

    async def run(self, ctx: ActionContext) -> DesignChange:
        project = require_state(ctx)
        if project.change is None:
            raise ActionError("the design change needs the change request: WriteChangeRequest runs first")
        ws = _ws(ctx)
        change = await self.ask_parsed(
            self._prompt(project),
            lambda reply: check_design_change(DesignChange.model_validate(extract_json(reply)), ws, project),
            system=system_prompt(ctx),
            wanted="DesignChange",
            again="Reply again with only the corrected JSON object.",
            output=OutputFormat.from_model(DesignChange),
        )
        project.design_change = change
        save_document(ctx, "design", change.apply(project.design, project.sources))
        path = change_path(project)
        ws.write(path, ws.read(path) + "\n" + change.to_markdown())
        return change

    @staticmethod
    def _prompt(project: ProjectState) -> str:
        assert project.change is not None
        if project.design is not None:
            current = (f"Current design approach: {project.design.implementation_approach}\n\n"
                       f"Current interfaces (mermaid):\n{project.design.class_diagram}")
        else:
            current = "The project has no design document; its code is the design."
        return (
            f"Change the design of `{project.project_name}` for this change request.\n\n"
            f"{project.change.brief()}\n\n{current}\n\nFiles:\n{_files_list(project)}\n\n"
            f"Modules (interfaces):\n{project.map}\n\n{PROJECT_RULES} Change as few files as the "
            "change needs; every file you do not list stays exactly as it is. List existing files "
            "that must change under changed_files and files to add under new_files (import paths "
            "of existing modules stay valid). The diagrams show the interfaces and the call flow "
            "after the change.\n\nReply with one JSON object with these fields:\n"
            f"{describe_schema(DesignChange)}"
        )


def require_design_change(ctx: ActionContext) -> tuple[ProjectState, DesignChange]:
    """The project state and its design change, which the steps after the architect's build on."""
    project = require_state(ctx)
    if project.design_change is None:
        raise ActionError("this incremental step needs the design change: WriteDesignChange runs first")
    return project, project.design_change


# -- the project manager -------------------------------------------------------------------


class WriteChangeTasks(WriteTasks):
    """WriteTasks in an incremental run: one task per changed or new file, and no other."""

    step = WriteTasks
    description = "Plan one task per file the change touches"

    async def run(self, ctx: ActionContext) -> TaskList:
        project, change = require_design_change(ctx)
        listed = "\n".join([*(f"- {f.path} (changed): {f.purpose}" for f in change.changed_files),
                            *(f"- {f.path} (new): {f.purpose}" for f in change.new_files)])
        prompt = (
            "Plan the change as one task per file, for the files below only (every other file "
            "stays as it is), ordered so that every file comes after the files it imports from. "
            "depends_on names only files from this list.\n\n"
            f"Change: {_change_summary(project)}\n"
            f"Approach: {change.implementation_approach}\n\nFiles to write:\n{listed}\n\n"
            f"Interfaces after the change:\n{change.class_diagram}"
        )
        tasks = await self.ask_structured(prompt, TaskList, system=system_prompt(ctx))
        wanted = change.paths
        kept = [t for t in tasks.tasks if t.path in wanted]
        missing = [p for p in wanted if p not in {t.path for t in kept}]
        # Only the change's files are written: tasks for other files are dropped, forgotten ones added.
        tasks = TaskList(tasks=[*kept, *(Task(path=p, description="as designed") for p in missing)])
        save_document(ctx, "tasks", tasks)
        return tasks


# -- the engineer --------------------------------------------------------------------------


class WriteChangedCode(WriteCode):
    """WriteCode in an incremental run: rewrites the changed files (seeing each one's
    current code) and writes the new ones; every other file stays as it was. Files whose
    dependencies are written are written at once, as in WriteCode."""

    step = WriteCode
    description = "Write the files the change touches, one model call per file, those whose dependencies are written at once"

    async def run(self, ctx: ActionContext) -> CodeBundle:
        project, change = require_design_change(ctx)
        ws = _ws(ctx)
        tasks: TaskList = ctx.latest(WriteTasks).payload  # type: ignore[union-attr, assignment]
        purposes = {f.path: f.purpose for f in [*change.changed_files, *change.new_files]}
        budget = int(ctx.settings.get("map_budget") or MAP_BUDGET)
        by_path = {t.path: t for t in tasks.tasks}
        # The project as it was: a file sees the new version of what it builds on, the old
        # version of every other file the change rewrites, whatever finishes first.
        old = {p: ws.read(p) for p in project_files(ws.root) if p.endswith(".py") and not is_test_file(p)}
        current = {p: ws.read(p) for p in by_path if ws.exists(p)}  # what each task's file holds now
        documents = (f"Change: {_change_summary(project)}\n\nDesign approach: {change.implementation_approach}\n\n"
                     f"Interfaces after the change (mermaid):\n{change.class_diagram}\n")
        turns = dict(zip(by_path, self.llm.reserve_turns(self.name, len(by_path))))

        async def write(job: Launch[str]) -> None:
            task = by_path[job.key]
            texts = {p: (ws.read(p) if p in job.after else old.get(p)) for p in sorted({*old, *by_path})}
            others = [p for p, t in texts.items() if t is not None and p.endswith(".py") and p != task.path]
            interfaces = project_map(ws.root, others, budget, texts={p: str(texts[p]) for p in others})
            now = current.get(task.path)
            context = (
                f"Purpose: {purposes.get(task.path, '')}\nTask: {task.description}\n"
                + (f"\nThe project's other files (interfaces only):\n{interfaces}\n" if interfaces else "")
                + (f"\nThe current content of `{task.path}`:\n```{file_kind(task.path)[1]}\n{now}```\n"
                   if now is not None else "")
            )
            ws.write(task.path, await self._write_file(ctx, task, documents + context, changing=now is not None,
                                                       turn=turns[task.path]))

        await run_graph(by_path, code_dependencies(tasks, purposes), write, limit=self.parallel(ctx))
        return CodeBundle(files=list(by_path))

    async def _write_file(self, ctx: ActionContext, task: Task, context: str, *, changing: bool, turn: int) -> str:
        """One file's new content: a code block for a Python module, the whole text otherwise."""
        kind, fence = file_kind(task.path)
        verb = "Change" if changing else "Write"
        keep = (" Keep everything the change does not touch as it is: existing tests of this file "
                "must still pass." if changing else "")
        if fence == "python":
            prompt = (
                f"{context}\n{verb} the file `{task.path}` (module `{module_name(task.path)}`) as above."
                f"\nImport other project files by their full module path.{keep} Reply with the "
                "complete new file in one ```python code block."
            )
            return await self.ask_code(prompt, system=system_prompt(ctx), turn=turn)
        prompt = (f"{context}{keep}\n{verb} the file `{task.path}`, a {kind}, as above. Reply with the complete "
                  f"content of `{task.path}` in one ```{fence} code block.")
        try:
            return extract_file(await self.ask(prompt, system=system_prompt(ctx), turn=turn), fence)
        except ParseError as exc:
            raise ActionError(f"action {self.name}: {exc}") from None


# -- QA ------------------------------------------------------------------------------------


def new_test_path(ws: Workspace, source: str, slug: str, taken: set[str]) -> str:
    """A test file for ``source`` that overwrites nothing: ``tests/test_<module>.py`` when
    that is free, else ``tests/test_<module>_<change>.py`` (numbered if need be)."""
    base = tests_for_modules([source])[source]
    candidates = [base, base.removesuffix(".py") + f"_{slug}.py",
                  *(base.removesuffix(".py") + f"_{slug}_{n}.py" for n in range(2, 100))]
    for path in candidates:
        if not ws.exists(path) and path not in taken:
            return path
    raise ActionError(f"no free test file name for {source} (tried {candidates[0]} .. {candidates[-1]})")


def old_tests_for(project: ProjectState, source: str) -> list[str]:
    """The old test files that look like ``source``'s (``store.py`` -> ``test_store*.py``;
    ``__main__.py`` -> ``test_*cli*``/``test_*main*``): named in the prompt as kept."""
    stem = PurePosixPath(source).stem
    if stem == "__init__":
        return []
    keys = ("cli", "main") if stem == "__main__" else (stem,)
    return [t for t in project.old_tests if any(k in PurePosixPath(t).stem for k in keys)]


class WriteChangeTests(WriteTests):
    """WriteTests in an incremental run: new test files for the change, beside the old
    tests (which are kept, never written); the modules' tests are written at once."""

    step = WriteTests
    description = "Write pytest tests for the change, in new test files"

    async def run(self, ctx: ActionContext) -> CodeBundle:
        project = require_state(ctx)
        if project.change is None:
            raise ActionError("tests for a change need the change request: WriteChangeRequest runs first")
        ws = _ws(ctx)
        bundle: CodeBundle = ctx.latest(WriteCode).payload  # type: ignore[union-attr, assignment]
        sources = [p for p in bundle.files if p.endswith(".py") and not p.endswith("__init__.py")]
        slug = slugify(project.change.title, limit=24)
        test_paths: dict[str, str] = {}
        for path in sources:  # named in plan order, before any is written: no two collide
            test_paths[path] = new_test_path(ws, path, slug, set(test_paths.values()))
        turns = dict(zip(sources, self.llm.reserve_turns(self.name, len(sources))))

        async def write(job: Launch[str]) -> str:
            path = job.key
            prompt = self._prompt(project, ws, path, sources, test_paths[path])
            reply = await self.ask(prompt, system=system_prompt(ctx), turn=turns[path])
            try:
                code = extract_code(reply)
            except ParseError as exc:
                raise ActionError(f"action {self.name}: {exc}") from None
            ws.write(test_paths[path], code)
            return reply

        replies = await run_all(sources, write, limit=self.parallel(ctx))
        written: list[str] = []
        for path, reply in replies.items():
            written.append(test_paths[path])
            for extra, content in support_files(reply):
                if not ws.exists(extra) and extra not in written:  # old fixtures are kept as they are
                    ws.write(extra, content)
                    written.append(extra)
        return CodeBundle(files=written)

    @staticmethod
    def _prompt(project: ProjectState, ws: Workspace, path: str, sources: list[str], test_path: str) -> str:
        assert project.change is not None
        criteria = "\n".join(f"- {c}" for c in project.change.acceptance_criteria)
        others = file_interfaces(ws, [p for p in sources if p != path])
        old = old_tests_for(project, path)
        old_text = (f"\nIts existing tests ({', '.join(old)}) are kept and must still pass; do not "
                    "repeat them.\n" if old else "")
        return (
            f"Acceptance criteria of the change ({project.change.title}):\n{criteria}\n\n"
            f"Write pytest tests for the change to `{path}` (import it as `{module_name(path)}`).\n\n"
            f"Source of {path}:\n```python\n{ws.read(path)}```\n{old_text}"
            + (f"\nOther changed modules (interfaces):\n{others}\n" if others else "")
            + f"\nThe tests go in the new file `{test_path}`. Tests run from the project root with "
            "`python -m pytest`, offline; use tmp_path for any files. Test behaviour the source "
            "really has. Reply with the complete test file in one ```python code block."
        )


class FixBugKeepingOldTests(FixBug):
    """FixBug in an incremental run: the old tests are the contract, so a fix may not
    write them (it is told so, and such a file is dropped from its answer)."""

    step = FixBug

    def protected(self, ctx: ActionContext) -> set[str]:
        return set(require_state(ctx).old_tests)

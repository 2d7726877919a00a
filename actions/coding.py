"""The building half of the software company: write code, write tests, run them, fix bugs."""

from __future__ import annotations

import ast
from pathlib import PurePosixPath

from mgpt.agents.message import Message
from mgpt.memory.retrieval import recall_fixes, remember_fix, select_blocks

from .base import Action, ActionContext, ActionError
from .documents import PRD, CodeBundle, SystemDesign, TaskList, TestReport
from .interfaces import python_interface
from .parsing import extract_files
from .planning import WriteDesign, WritePRD, WriteTasks, _system
from .sandbox import Limits, run_pytest
from .workspace import Workspace

#: How much of pytest's output travels in a report and a fix prompt.
OUTPUT_TAIL = 4000


async def _latest_payload(ctx: ActionContext, cause_by: type):
    found = await ctx.memory.find(cause_by=cause_by)
    if not found:
        raise ActionError(f"{ctx.role_name} has no {cause_by.__name__} output in memory to work from")
    return found[-1].payload


def _workspace(ctx: ActionContext) -> Workspace:
    if ctx.workspace is None:
        raise ActionError("this action writes files: run it in a team with a workspace")
    return Workspace(ctx.workspace)


def module_name(path: str) -> str:
    """``pkg/sub/mod.py`` -> ``pkg.sub.mod`` (``pkg/__init__.py`` -> ``pkg``)."""
    parts = list(PurePosixPath(path).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _interfaces(ws: Workspace, paths: list[str], ctx: ActionContext | None = None, query: str = "") -> str:
    blocks = []
    for path in paths:
        if ws.exists(path) and path.endswith(".py"):
            interface = python_interface(ws.read(path)).strip()
            blocks.append(f"# {path} ({module_name(path)})\n{interface or '# (no public names)'}")
    if ctx is not None and ctx.settings.get("context_budget") is not None:  # opt-in: the blocks relevant to query
        blocks = select_blocks(query, blocks, int(ctx.settings["context_budget"]), embed=ctx.settings.get("embed"))
    return "\n\n".join(blocks)


def _imported_modules(source: str) -> set[str]:
    """Dotted names a Python file imports (``from a.b import c`` gives a.b and a.b.c)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def files_for_fix(ws: Workspace, output: str) -> list[str]:
    """The files a fix needs to see: those the failure output names, plus the project
    modules the named test files import (a wrong return value shows up only in the test's
    traceback). All project files when the output names none."""
    files = [f for f in ws.files() if f.endswith(".py")]
    named = {f for f in files if f in output}
    if not named:
        return files
    by_module = {module_name(f): f for f in files}
    for path in list(named):
        if path.startswith("tests/"):
            named.update(by_module[m] for m in _imported_modules(ws.read(path)) if m in by_module)
    return [f for f in files if f in named]


class WriteCode(Action):
    description = "Write each file of the task list, one model call per file"

    async def run(self, ctx: ActionContext) -> CodeBundle:
        ws = _workspace(ctx)
        design: SystemDesign = await _latest_payload(ctx, WriteDesign)
        tasks: TaskList = ctx.latest(WriteTasks).payload  # type: ignore[union-attr, assignment]
        purposes = {f.path: f.purpose for f in design.files}
        written: list[str] = []
        for task in tasks.tasks:
            # Lean prompt: the approach, the interfaces diagram, and the interfaces of the
            # files already written (signatures, not bodies; no earlier documents in full).
            deps = _interfaces(ws, written, ctx, f"{task.path} {purposes.get(task.path, '')} {task.description}")
            prompt = (
                f"Write the file `{task.path}` (module `{module_name(task.path)}`).\n"
                f"Purpose: {purposes.get(task.path, '')}\nTask: {task.description}\n\n"
                f"Design approach: {design.implementation_approach}\n\n"
                f"Interfaces (mermaid):\n{design.class_diagram}\n"
                + (f"\nFiles already written (interfaces only):\n{deps}\n" if deps else "")
                + "\nImport other project files by their full module path. Reply with the "
                "complete file in one ```python code block."
            )
            code = await self.ask_code(prompt, system=_system(ctx))
            ws.write(task.path, code)
            written.append(task.path)
        return CodeBundle(files=written)


class WriteTests(Action):
    description = "Write pytest tests for each module the engineer wrote"

    async def run(self, ctx: ActionContext) -> CodeBundle:
        ws = _workspace(ctx)
        prd: PRD = await _latest_payload(ctx, WritePRD)
        bundle: CodeBundle = ctx.latest(WriteCode).payload  # type: ignore[union-attr, assignment]
        sources = [p for p in bundle.files if p.endswith(".py") and not p.endswith("__init__.py")]
        criteria = "\n".join(f"- {c}" for c in prd.acceptance_criteria)
        written: list[str] = []
        for path in sources:
            others = _interfaces(ws, [p for p in sources if p != path], ctx, ws.read(path))
            stem = PurePosixPath(path).stem
            test_path = f"tests/test_{'cli' if stem == '__main__' else stem}.py"
            prompt = (
                f"Write pytest tests for `{path}` (import it as `{module_name(path)}`).\n\n"
                f"Acceptance criteria:\n{criteria}\n\nSource of {path}:\n```python\n{ws.read(path)}```\n"
                + (f"\nOther modules (interfaces):\n{others}\n" if others else "")
                + "\nTests run from the project root with `python -m pytest`, offline; use "
                "tmp_path for any files. Test behaviour the source really has. Reply with the "
                "complete test file in one ```python code block."
            )
            code = await self.ask_code(prompt, system=_system(ctx))
            ws.write(test_path, code)
            written.append(test_path)
        return CodeBundle(files=written)


class RunTests(Action):
    description = "Run the project's tests in the sandbox and report"

    async def run(self, ctx: ActionContext) -> Message:
        ws = _workspace(ctx)
        limits = ctx.settings.get("limits") or Limits()
        fix_rounds = int(ctx.settings.get("fix_rounds", 2))
        rounds_used = len(await ctx.memory.find(cause_by=FixBug))
        result = run_pytest(ws.root, limits)
        report = TestReport(
            passed=result.passed,
            failed=result.failed,
            errors=result.errors,
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            output=result.output[-OUTPUT_TAIL:],
            fix_round=rounds_used,
        )
        if not report.ok and rounds_used < fix_rounds:
            engineer = ctx.settings.get("engineer", "Engineer")
            return Message(content=report.to_markdown(), payload=report, send_to={engineer})
        final = report.model_copy(update={"final": True})
        ws.write("docs/qa_report.md", final.to_markdown())
        return Message(content=final.to_markdown(), payload=final)


class FixBug(Action):
    description = "Fix the code (or a wrong test) so that the failing tests pass"

    async def run(self, ctx: ActionContext) -> CodeBundle:
        ws = _workspace(ctx)
        report: TestReport = ctx.latest(RunTests).payload  # type: ignore[union-attr, assignment]
        named = files_for_fix(ws, report.output)
        sources = "\n\n".join(f"## {f}\n```python\n{ws.read(f)}```" for f in named)
        past = await recall_fixes(ctx.settings.get("recall"), report.output)  # "" unless the run has a recall store
        prompt = (
            f"The project's tests fail.\n\npytest output (tail):\n```\n{report.output}\n```\n\n"
            f"Files involved:\n{sources}\n\n{past}Fix the bug. If a test expects behaviour the "
            "requirements do not ask for, fix the test instead. For each file you change, "
            "write a line with its path, then the complete new file in a ```python code block."
        )
        changes = await self.ask_parsed(
            prompt,
            extract_files,
            system=_system(ctx),
            wanted="files",
            again="Give each changed file as a path line followed by a code block.",
        )
        # Check every path before writing any, so a bad one leaves the workspace untouched.
        for path, _ in changes:
            ws.check(path)
        # What each file held before, so the run log shows what the fix did (read before any write).
        before = {
            path: ws.check(path).read_text(encoding="utf-8", errors="replace") if ws.exists(path) else None
            for path, _ in changes
        }
        for path, content in changes:
            ws.write(path, content)
        diffs = {path: unified_diff(path, before[path], content) for path, content in changes}
        await remember_fix(ctx.settings.get("recall"), report.output, diffs, cause_by=FixBug)
        return CodeBundle(files=[p for p, _ in changes], diffs=diffs)


def unified_diff(path: str, before: str | None, after: str) -> str:
    """``diff -u`` of one file (``before`` None: a new file, shown against /dev/null)."""
    import difflib

    lines = difflib.unified_diff(
        (before or "").splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile="/dev/null" if before is None else f"a/{path}",
        tofile=f"b/{path}",
    )
    # A last line without a newline is marked the way diff(1) marks it, so lines never run together.
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)

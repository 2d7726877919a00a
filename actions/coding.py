"""The building half of the software company: write code, write tests, run them, fix bugs.

An incremental run (``--inc``) uses these steps' variants in :mod:`mgpt.actions.incremental`.
"""

from __future__ import annotations

import ast
import asyncio
import re
import threading
from pathlib import PurePosixPath

from mgpt.agents.message import Message
from mgpt.agents.scheduler import Launch, run_all, run_graph
from mgpt.llm.backends.base import OutputFormat
from mgpt.memory.retrieval import recall_fixes, remember_fix, select_blocks

from mgpt.actions.base import Action, ActionContext, ActionError
from mgpt.actions.documents import PRD, CodeBundle, SystemDesign, TaskList, TestReport
from mgpt.actions.interfaces import python_interface
from mgpt.llm.parsing import ParseError, extract_code, extract_file, extract_files, fenced_blocks
from mgpt.actions.planning import WriteDesign, WritePRD, WriteTasks, system_prompt
from mgpt.sandbox.project_env import DECLARING_FILES, ensure_project_env
from mgpt.sandbox.isolation import Limits, run_pytest
from mgpt.sandbox.workspace import Workspace

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


#: How a non-Python file is asked for: its kind, and the fence language of the answer.
FILE_KINDS = {
    ".md": ("Markdown document", "markdown"),
    ".rst": ("reStructuredText document", "rst"),
    ".txt": ("plain text file", "text"),
    ".json": ("JSON file", "json"),
    ".toml": ("TOML file", "toml"),
    ".yaml": ("YAML file", "yaml"),
    ".yml": ("YAML file", "yaml"),
    ".cfg": ("INI-style configuration file", "ini"),
    ".ini": ("INI-style configuration file", "ini"),
    ".html": ("HTML template", "html"),
    ".j2": ("Jinja template", "jinja"),
    ".csv": ("CSV file", "csv"),
    ".sh": ("shell script", "bash"),
}


def file_kind(path: str) -> tuple[str, str]:
    """``(what the file is, fence language)`` for a task's path."""
    name = PurePosixPath(path).name
    if name == "requirements.txt":
        return "pip requirements file (one dependency per line)", "text"
    if name.endswith(".py"):
        return "Python module", "python"
    return FILE_KINDS.get(PurePosixPath(path).suffix.lower(), ("text file", "text"))


def tests_for_modules(sources: list[str]) -> dict[str, str]:
    """The test file for each source module, unique per module path.

    ``pkg/money.py`` -> ``tests/test_money.py`` (``__main__`` -> ``test_cli``); when two
    modules would share a name (``pkg/cli.py`` and ``pkg/__main__.py``, or ``a/util.py`` and
    ``b/util.py``) each gets its full path instead (``tests/test_pkg_cli.py``,
    ``tests/test_pkg_main.py``), so no test file overwrites another."""

    def short(path: str) -> str:
        stem = PurePosixPath(path).stem
        return f"tests/test_{'cli' if stem == '__main__' else stem}.py"

    def full(path: str) -> str:
        parts = [p.strip("_") or p for p in PurePosixPath(path).with_suffix("").parts if p != "__init__"]
        return f"tests/test_{'_'.join(parts)}.py"

    counts: dict[str, int] = {}
    for path in sources:
        counts[short(path)] = counts.get(short(path), 0) + 1
    return {p: short(p) if counts[short(p)] == 1 else full(p) for p in sources}


def _is_test_support(path: str) -> bool:
    """Files QA may add beside a test file: conftest.py and fixtures or data under tests/
    (not another ``test_*.py``: that would overwrite another module's tests)."""
    pure = PurePosixPath(path)
    if path == "conftest.py":
        return True
    return pure.parts[:1] == ("tests",) and len(pure.parts) > 1 and not pure.name.startswith("test_")


def file_interfaces(ws: Workspace, paths: list[str], ctx: ActionContext | None = None, query: str = "") -> str:
    """The interfaces of the Python files among ``paths`` (signatures, not bodies), one
    block per file; with the run's ``context_budget`` setting, only the blocks most
    relevant to ``query`` that fit."""
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


def project_files(ws: Workspace) -> list[str]:
    """The project's Python files and the files that declare its dependencies."""
    return [f for f in ws.files() if f.endswith(".py")] + [f for f in ws.files() if f in DECLARING_FILES]


def files_for_fix(ws: Workspace, output: str) -> list[str]:
    """The files a fix needs to see: those the failure output names, plus the project
    modules the named test files import (a wrong return value shows up only in the test's
    traceback). All project files when the output names none."""
    files = project_files(ws)
    named = {f for f in files if f in output}
    if not named:
        return files
    by_module = {module_name(f): f for f in files}
    for path in list(named):
        if path.startswith("tests/"):
            named.update(by_module[m] for m in _imported_modules(ws.read(path)) if m in by_module)
    return [f for f in files if f in named]


def code_dependencies(tasks: TaskList, purposes: dict[str, str] | None = None) -> dict[str, list[str]]:
    """What each task's file builds on: its ``depends_on``, plus the earlier files its task
    or its design ``purposes`` (path -> purpose) name by path (``pkg/store.py``) or module
    (``pkg.store``).

    Only earlier files count as named: the task list is in dependency order, so a later file
    named ("used by pkg.cli") is a dependent, not a dependency."""
    purposes = purposes or {}
    order = [t.path for t in tasks.tasks]
    needs: dict[str, list[str]] = {}
    for i, task in enumerate(tasks.tasks):
        text = f"{task.description}\n{purposes.get(task.path, '')}"
        named = [p for p in order[:i] if _names(text, p)]
        needs[task.path] = list(dict.fromkeys([*task.depends_on, *named]))
    return needs


def _names(text: str, path: str) -> bool:
    """Whether ``text`` names the file ``path`` (by path, or by a module name that is not
    just the package's: ``pkg`` alone is in every sentence about the project)."""
    if re.search(rf"(?<![\w/.]){re.escape(path)}(?!\w)", text):
        return True
    if not path.endswith(".py") or PurePosixPath(path).name == "__init__.py":
        return False
    return bool(re.search(rf"(?<![\w.]){re.escape(module_name(path))}(?![\w])", text))


def design_brief(design: SystemDesign) -> str:
    """The design as every file's prompt starts: the same bytes for each, so the prompt
    prefix is shared (a provider's prompt cache, a local model's prefix cache)."""
    return f"Design approach: {design.implementation_approach}\n\nInterfaces (mermaid):\n{design.class_diagram}\n"


class WriteCode(Action):
    description = "Write each file of the task list, one model call per file, those whose dependencies are written at once"

    async def run(self, ctx: ActionContext) -> CodeBundle:
        ws = _workspace(ctx)
        tasks: TaskList = ctx.latest(WriteTasks).payload  # type: ignore[union-attr, assignment]
        design: SystemDesign = await _latest_payload(ctx, WriteDesign)
        purposes = {f.path: f.purpose for f in design.files}
        by_path = {t.path: t for t in tasks.tasks}
        # Keyed by place in the plan: each file's call has its turn before any starts.
        turns = dict(zip(by_path, self.llm.reserve_turns(self.name, len(by_path))))

        async def write(job: Launch[str]) -> None:
            task = by_path[job.key]
            # Lean prompt: the approach, the interfaces diagram, and the interfaces of the
            # files this one builds on (signatures, not bodies; no earlier documents in full).
            deps = file_interfaces(ws, list(job.after), ctx, f"{task.path} {purposes.get(task.path, '')} {task.description}")
            context = (
                f"Purpose: {purposes.get(task.path, '')}\nTask: {task.description}\n"
                + (f"\nFiles it builds on (interfaces only):\n{deps}\n" if deps else "")
            )
            ws.write(task.path, await self.write_file(ctx, task.path, design_brief(design), context, turns[task.path]))

        await run_graph(by_path, code_dependencies(tasks, purposes), write, limit=self.parallel(ctx))
        return CodeBundle(files=list(by_path))

    async def write_file(self, ctx: ActionContext, path: str, documents: str, context: str, turn: int) -> str:
        """One file's content: ``documents`` (the same for every file) first, then what is
        this file's own; a code block for a Python module, the whole text otherwise."""
        kind, fence = file_kind(path)
        if fence == "python":
            prompt = (
                f"{documents}\nWrite the file `{path}` (module `{module_name(path)}`).\n{context}"
                "\nImport other project files by their full module path. Reply with the "
                "complete file in one ```python code block."
            )
            return await self.ask_code(prompt, system=system_prompt(ctx), turn=turn)
        prompt = (
            f"{documents}\nWrite the file `{path}`, a {kind}.\n{context}"
            f"\nReply with the complete content of `{path}` in one ```{fence} "
            "code block (it may itself contain fenced blocks)."
        )
        reply = await self.ask(prompt, system=system_prompt(ctx), turn=turn)
        try:
            return extract_file(reply, fence)
        except ParseError as exc:
            raise ActionError(f"action {self.name}: {exc}") from None


def support_files(reply: str) -> list[tuple[str, str]]:
    """conftest.py and fixture files a test answer adds after its first block: each a
    block whose heading line names a path under tests/ (or ``conftest.py``)."""
    try:
        files = extract_files(reply)
    except ParseError:
        return []
    first = fenced_blocks(reply)[0][1].rstrip() + "\n" if fenced_blocks(reply) else ""
    found = []
    for path, content in files:
        path = path.removeprefix("./")
        if _is_test_support(path) and content != first:
            found.append((path, content))
    return found


class WriteTests(Action):
    description = "Write pytest tests for each module the engineer wrote, the modules at once"

    async def run(self, ctx: ActionContext) -> CodeBundle:
        ws = _workspace(ctx)
        bundle: CodeBundle = ctx.latest(WriteCode).payload  # type: ignore[union-attr, assignment]
        prd: PRD = await _latest_payload(ctx, WritePRD)
        sources = [p for p in bundle.files if p.endswith(".py") and not p.endswith("__init__.py")]
        criteria = "\n".join(f"- {c}" for c in prd.acceptance_criteria)
        names = tests_for_modules(sources)
        turns = dict(zip(sources, self.llm.reserve_turns(self.name, len(sources))))

        async def write(job: Launch[str]) -> str:
            path = job.key
            others = file_interfaces(ws, [p for p in sources if p != path], ctx, ws.read(path))
            # The criteria (the same for every module) first, then this module's own part.
            prompt = (
                f"Acceptance criteria:\n{criteria}\n\nWrite pytest tests for `{path}` (import it as "
                f"`{module_name(path)}`).\n\nSource of {path}:\n```python\n{ws.read(path)}```\n"
                + (f"\nOther modules (interfaces):\n{others}\n" if others else "")
                + "\nTests run from the project root with `python -m pytest`, offline; use "
                "tmp_path for any files. Test behaviour the source really has. Reply with the "
                "complete test file in one ```python code block."
                " If the tests need shared fixtures or data files, add each after it as a line "
                "with its path (tests/conftest.py, tests/data/...) followed by its code block."
            )
            # Local models decode under one fenced block (closed before the token budget
            # runs out: a test file cut off mid-line fails to collect); servers get the
            # plain request and may add support files after it.
            reply = await self.ask(prompt, system=system_prompt(ctx), output=OutputFormat.code_block(), turn=turns[path])
            try:
                code = extract_code(reply)
            except ParseError as exc:
                raise ActionError(f"action {self.name}: {exc}") from None
            ws.write(names[path], code)  # each module's own file: written as it comes
            return reply

        replies = await run_all(sources, write, limit=self.parallel(ctx))
        written: list[str] = []
        for path, reply in replies.items():  # in plan order: a conftest.py two answers add is the later one's
            written.append(names[path])
            for extra, content in support_files(reply):
                ws.write(extra, content)
                if extra not in written:
                    written.append(extra)
        return CodeBundle(files=written)


def _test_report(ws: Workspace, limits: Limits, rounds_used: int, cancel: threading.Event) -> TestReport:
    """Build (or reuse) the project environment, run the tests in the sandbox, report."""
    env = ensure_project_env(ws.root, limits, cancel=cancel)
    if not env.ok:
        # A dependency that does not install is the engineer's to fix, like a failing test.
        declared = ", ".join(f for f in DECLARING_FILES if ws.exists(f)) or "the declared dependencies"
        header = (f"Installing the project's dependencies failed: fix {declared} (or the "
                  "code that needs a package that cannot be installed).\n")
        return TestReport(
            passed=0,
            failed=0,
            errors=1,
            exit_code=env.exit_code or 1,
            timed_out=env.timed_out,
            output=header + env.log[-(OUTPUT_TAIL - len(header)):],
            fix_round=rounds_used,
        )
    result = run_pytest(ws.root, limits, python=str(env.python), path=[str(env.bin)], cancel=cancel)
    return TestReport(
        passed=result.passed,
        failed=result.failed,
        errors=result.errors,
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        output=result.output[-OUTPUT_TAIL:],
        fix_round=rounds_used,
    )


class RunTests(Action):
    description = "Run the project's tests in the sandbox and report"

    async def run(self, ctx: ActionContext) -> Message:
        ws = _workspace(ctx)
        limits = ctx.settings.get("limits") or Limits()
        fix_rounds = int(ctx.settings.get("fix_rounds", 2))
        rounds_used = len(await ctx.memory.find(cause_by=FixBug))
        # The sandbox blocks: it runs in a worker thread (which spawns and waits, as the
        # parent-death signal requires), so Ctrl-C's cancellation reaches this task at once
        # and stops the run through ``cancel``.
        cancel = threading.Event()
        try:
            report = await asyncio.to_thread(_test_report, ws, limits, rounds_used, cancel)
        except BaseException:
            cancel.set()
            raise
        if not report.ok and rounds_used < fix_rounds:
            engineer = ctx.settings.get("engineer", "Engineer")
            return Message(content=report.to_markdown(), payload=report, send_to={engineer})
        final = report.model_copy(update={"final": True})
        ws.write("docs/qa_report.md", final.to_markdown())
        return Message(content=final.to_markdown(), payload=final)


_SECTION = re.compile(r"^_{3,} (.+?) _{3,}$")
_BANNER = re.compile(r"^={3,}.*={3,}$")
_SUMMARY_ITEM = re.compile(r"^(?:FAILED|ERROR) (tests/[^:\s]+\.py)")
_TEST_FILE = re.compile(r"(?<![\w/])(tests/[\w/.-]+\.py)")


def failure_owners(output: str) -> tuple[list[str], list[str | None]] | None:
    """Each line of pytest's output, and the test file whose failure it belongs to (None:
    the frame around the failures: the progress line, banners, the totals). A failure
    section belongs to the first test file it names (its header, or a traceback line); a
    summary line to the file it names. None when a section names no test file."""
    lines = output.splitlines()
    owner: list[str | None] = []
    sections: list[int] = []  # where each section starts
    in_section = False
    for i, line in enumerate(lines):
        if _SECTION.match(line):
            in_section = True
            sections.append(i)
        elif _BANNER.match(line):
            in_section = False
        item = None if in_section else _SUMMARY_ITEM.match(line)
        owner.append(item.group(1) if item else ("" if in_section else None))
    for start in sections:
        end = next((j for j in range(start + 1, len(lines)) if owner[j] != "" or j in sections), len(lines))
        named = next((m.group(1) for line in lines[start:end] if (m := _TEST_FILE.search(line))), None)
        if named is None:
            return None
        owner[start:end] = [named] * (end - start)
    return lines, owner


def failures_of(lines: list[str], owner: list[str | None], tests: list[str]) -> str:
    """The output with only the failures of ``tests`` (and the frame)."""
    return "\n".join(line for line, o in zip(lines, owner) if o is None or o in tests) + "\n"


def failure_groups(ws: Workspace, output: str) -> list[tuple[list[str], str, list[str]]]:
    """Independent fixes: ``(test files, their part of the output, the files involved)``
    for each group of failing test files that share no involved file, in the order pytest
    reported them. One group, ``([], output, files_for_fix(output))``, when the failures
    cannot be told apart or all touch the same files."""
    whole = [([], output, files_for_fix(ws, output))]
    parsed = failure_owners(output)
    if parsed is None:
        return whole
    lines, owner = parsed
    tests = list(dict.fromkeys(o for o in owner if o))
    groups: list[tuple[list[str], set[str]]] = []
    for test in tests:
        involved = set(files_for_fix(ws, failures_of(lines, owner, [test])))
        overlapping = [g for g in groups if g[1] & involved]
        merged = ([t for g in overlapping for t in g[0]] + [test], involved.union(*(g[1] for g in overlapping)))
        groups = [g for g in groups if g not in overlapping] + [merged]
    if len(groups) < 2:
        return whole
    groups.sort(key=lambda g: min(tests.index(t) for t in g[0]))
    order = project_files(ws)
    return [(sorted(g[0], key=tests.index), failures_of(lines, owner, g[0]), [f for f in order if f in g[1]])
            for g in groups]


class FixBug(Action):
    description = "Fix the code (or a wrong test) so that the failing tests pass; independent failures at once"

    def protected(self, ctx: ActionContext) -> set[str]:
        """Files this fix must not write (none here; an incremental run keeps its old tests)."""
        return set()

    async def run(self, ctx: ActionContext) -> CodeBundle:
        ws = _workspace(ctx)
        report: TestReport = ctx.latest(RunTests).payload  # type: ignore[union-attr, assignment]
        if ctx.settings.get("split_fixes", True):
            groups = failure_groups(ws, report.output)
        else:  # one call, as a transcript recorded before the split holds
            groups = [([], report.output, files_for_fix(ws, report.output))]
        protected = self.protected(ctx)
        prompts = []
        for tests, output, named in groups:
            past = await recall_fixes(ctx.settings.get("recall"), output)  # "" unless the run has a recall store
            prompts.append(self._prompt(ws, output, named, past, protected, tests))
        results = await self.ask_parsed_all(
            prompts,
            extract_files,
            system=system_prompt(ctx),
            wanted="files",
            again="Give each changed file as a path line followed by a code block.",
            # Local models decode under this shape, naming only the project's own files.
            outputs=[OutputFormat.files(paths=project_files(ws) or None)] * len(prompts),
            limit=self.parallel(ctx),
        )
        fixed = [(g, r) for g, r in zip(groups, results) if not isinstance(r, ActionError)]
        bundle = await self._apply(ctx, ws, [(g[1], [(p, c) for p, c in r if p not in protected]) for g, r in fixed])
        failed = [r for r in results if isinstance(r, ActionError)]
        if failed:  # the other groups' fixes are written: a resumed run replays them
            raise failed[0]
        return bundle

    def _prompt(self, ws: Workspace, output: str, named: list[str], past: str, protected: set[str], tests: list[str]) -> str:
        sources = "\n\n".join(f"## {f}\n```{file_kind(f)[1]}\n{ws.read(f)}```" for f in named)
        prompt = (
            f"The project's tests fail.\n\npytest output (tail):\n```\n{output}\n```\n\n"
            f"Files involved:\n{sources}\n\n{past}Fix the bug. If a test expects behaviour the "
            "requirements do not ask for, fix the test instead. For each file you change, "
            "write a line with its path, then the complete new file in a ```python code block."
        )
        if tests:
            prompt += (f"\n\nFix the failures in {', '.join(tests)}; the other failing tests are being "
                       "fixed separately (their files are not yours to change).")
        if protected:
            prompt += (f"\n\nThese old tests must pass unchanged (changes to them are refused): "
                       f"{', '.join(sorted(protected))}.")
        return prompt

    async def _apply(self, ctx: ActionContext, ws: Workspace, fixes: list[tuple[str, list[tuple[str, str]]]]) -> CodeBundle:
        """Write each group's changes, in group order; the bundle says what changed."""
        changes = [c for _, group in fixes for c in group]
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
        final = dict(changes)
        diffs = {path: unified_diff(path, before[path], content) for path, content in final.items()}
        for output, group in fixes:
            await remember_fix(ctx.settings.get("recall"), output, {p: diffs[p] for p, _ in group}, cause_by=FixBug)
        return CodeBundle(files=list(final), diffs=diffs)


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

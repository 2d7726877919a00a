"""Human review: pause after a named step, show its document, and approve, edit or revise.

Steps: ``prd`` (ProductManager's PRD), ``design`` (Architect's design), ``tasks``
(ProjectManager's task list), ``code`` (the files Engineer wrote). A *reviewer* is any
callable — sync or async — taking the step name and the document and returning a
:class:`Decision`: :func:`approve`, :func:`edit` with the changed document, or
:func:`feedback` with text the role revises with (at most ``rounds`` revisions per step).
:class:`TerminalReviewer` is the one ``mgpt run --review`` uses; a web UI would plug in
its own.

Decisions are recorded in the run's transcript, so a resumed or replayed run repeats them
without asking.

One more step, ``tools``, is not a document: with it the reviewer is asked before each
call to a tool marked ``needs_approval`` (:func:`tool_approver`). It is shown a
:class:`ToolCallReview`; approve runs the call, an edit runs it with the edited arguments,
feedback declines it and the model reads the feedback. A replayed or resumed run answers
such calls from its transcript, so it does not ask again.
"""

from __future__ import annotations

import inspect
import json
import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Literal, Union

from pydantic import BaseModel, ValidationError

from mgpt.actions.base import Action, ActionContext
from mgpt.actions.coding import WriteCode
from mgpt.actions.documents import PRD, CodeBundle, SystemDesign, TaskList
from mgpt.llm.parsing import ParseError, extract_files
from mgpt.actions.planning import WriteDesign, WritePRD, WriteTasks, save_document
from mgpt.sandbox.workspace import Workspace
from mgpt.agents.errors import MgptError
from mgpt.agents.runlog import Event
from mgpt.agents.tools import Approver, Tool, ToolCall
from mgpt.llm.backends.replay import ReviewRecord

#: step -> (the action that produces it, the document type shown)
STEPS: dict[str, tuple[type[Action], type[BaseModel]]] = {
    "prd": (WritePRD, PRD),
    "design": (WriteDesign, SystemDesign),
    "tasks": (WriteTasks, TaskList),
    "code": (WriteCode, CodeBundle),
}

#: The review step that gates tool calls (not a document step: no action produces it).
TOOLS_STEP = "tools"

#: How many unusable answers (a broken edit, an unknown key) a review tolerates.
MAX_BAD_ANSWERS = 20


class ReviewError(MgptError):
    """A review could not go on (no terminal, input closed, too many unusable answers)."""


def parse_steps(text: str | None) -> list[str]:
    """``"prd,code"`` -> ``["prd", "code"]``; unknown names are refused."""
    if not text:
        return []
    steps = [s.strip().lower() for s in text.split(",") if s.strip()]
    unknown = [s for s in steps if s not in STEPS and s != TOOLS_STEP]
    if unknown:
        raise ReviewError(f"unknown review step {', '.join(unknown)}: choose from {', '.join([*STEPS, TOOLS_STEP])}")
    return list(dict.fromkeys(steps))


class SourceFiles(BaseModel):
    """The ``code`` step's document: the files the engineer wrote, path -> content."""

    files: dict[str, str]

    def to_markdown(self) -> str:
        return "\n".join(f"## {path}\n```python\n{text.rstrip()}\n```\n" for path, text in self.files.items())

    @classmethod
    def from_markdown(cls, text: str) -> "SourceFiles":
        """Parse ``## path`` + code block pairs back (raises ``ValueError`` if there are none)."""
        return cls(files=dict(extract_files(text)))


class ToolCallReview(BaseModel):
    """The ``tools`` step's document: one call a model asked for, before it runs."""

    tool: str
    description: str = ""
    arguments: dict[str, Any]

    def to_markdown(self) -> str:
        args = json.dumps(self.arguments, indent=2, ensure_ascii=False)
        return f"**{self.tool}**: {self.description}\n\n```json\n{args}\n```\n"


def tool_approver(reviewer: Reviewer) -> Approver:
    """An approver for a :class:`~mgpt.agents.tools.Toolbox` that asks ``reviewer``."""

    async def approve(call: ToolCall, tool: Tool) -> bool | str | dict:
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = {}
        answer = reviewer(TOOLS_STEP, ToolCallReview(tool=tool.name, description=tool.description, arguments=arguments))
        if inspect.isawaitable(answer):
            answer = await answer
        decision = _as_decision(answer)
        if decision.kind == "approve":
            return True
        if decision.kind == "edit":
            return coerce(TOOLS_STEP, decision.document).arguments  # type: ignore[attr-defined]
        return decision.feedback or "declined"

    return approve


@dataclass(frozen=True)
class Decision:
    """What a reviewer decided about one document."""

    kind: Literal["approve", "edit", "feedback"]
    document: Any = None
    feedback: str = ""


def approve() -> Decision:
    return Decision("approve")


def edit(document: Any) -> Decision:
    """Use ``document`` (the typed document, its JSON data, or JSON text) instead."""
    return Decision("edit", document=document)


def feedback(text: str) -> Decision:
    """Have the role revise the document with ``text``."""
    return Decision("feedback", feedback=text)


Reviewer = Callable[[str, Any], Union[Decision, Awaitable[Decision]]]


def coerce(step: str, document: Any) -> BaseModel:
    """The typed document for ``step`` from what an edit returned (raises ``ValueError``)."""
    kind = SourceFiles if step == "code" else ToolCallReview if step == TOOLS_STEP else STEPS[step][1]
    if isinstance(document, kind):
        return document
    if isinstance(document, BaseModel):
        document = document.model_dump(mode="json")
    if isinstance(document, str):
        if kind is SourceFiles and not document.lstrip().startswith("{"):
            return SourceFiles.from_markdown(document)
        return kind.model_validate_json(document)
    return kind.model_validate(document)


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:5])
    return str(exc)


class ReviewGate:
    """Wraps the reviewed steps' actions: after the action runs, its document is reviewed
    (decisions come from ``recorded`` first, then from ``reviewer``), and what the role
    publishes is the approved, edited or revised document."""

    def __init__(
        self,
        steps: list[str],
        *,
        reviewer: Reviewer | None = None,
        rounds: int = 2,
        recorded: list[ReviewRecord] | None = None,
        record: Callable[[ReviewRecord], None] | None = None,
        commit: Callable[[str, str], Any] | None = None,
        emit: Callable[[Event], None] | None = None,
    ):
        if rounds < 0:
            raise ValueError("review rounds must be >= 0")
        self.steps = steps
        self.reviewer = reviewer
        self.rounds = rounds
        self._recorded = {(r.step, r.round): r for r in recorded or []}
        self.record = record
        self.commit = commit
        self.emit = emit or (lambda event: None)
        self.asked = 0

    def install(self, roles: list[Any]) -> None:
        """Wrap the reviewed actions of ``roles``. The role keeps its action object (its
        type drives the role's thinking and the message's ``cause_by``); only ``run`` is
        wrapped."""
        for step in self.steps:
            if step not in STEPS:
                continue  # the tools step gates calls (tool_approver), not an action
            kind = STEPS[step][0]
            for role in roles:
                for action in getattr(role, "actions", []):
                    if isinstance(action, kind):
                        inner = action.run

                        async def run(ctx: ActionContext, _inner=inner, _action=action, _step=step):
                            return await self.review(_step, _action, ctx, await _inner(ctx))

                        action.run = run  # type: ignore[method-assign]

    # -- one step ----------------------------------------------------------------------------

    async def review(self, step: str, action: Action, ctx: ActionContext, result: Any) -> Any:
        doc = self._shown(step, ctx, result)
        self._commit(ctx.role_name, f"{action.name}: draft for review ({step})")
        revisions = 0
        bad = 0
        round_no = 0
        while True:  # bounded: each pass is an approval, an edit, a revision (<= rounds) or a bad answer
            round_no += 1
            decision = await self._decide(step, round_no, doc)
            if decision.kind == "approve":
                self.emit(Event(kind="review", role=ctx.role_name, detail=f"{step}: approved"))
                break
            if decision.kind == "edit":
                try:
                    doc = coerce(step, decision.document)
                    self._check_paths(step, ctx, doc)
                except (ValueError, MgptError) as exc:
                    bad += 1
                    self.emit(Event(kind="review", role=ctx.role_name, detail=f"{step}: edit refused: {_short(exc)}"))
                    if bad >= MAX_BAD_ANSWERS:
                        raise ReviewError(f"review of {step}: {bad} unusable edits; last error: {_short(exc)}") from None
                    continue
                self._save(step, ctx, doc)
                self._commit("Reviewer", f"Review {step}: edited by the reviewer")
                self.emit(Event(kind="review", role=ctx.role_name, detail=f"{step}: edited"))
                break
            if revisions >= self.rounds:
                self.emit(Event(kind="bound", role=ctx.role_name,
                                detail=f"{step}: review_rounds={self.rounds} used; keeping the last version"))
                break
            revisions += 1
            doc = await self._revise(step, action, ctx, doc, decision.feedback)
            self._save(step, ctx, doc)
            self._commit(ctx.role_name, f"{action.name}: revised after review feedback (round {revisions})\n\n{decision.feedback}")
            self.emit(Event(kind="review", role=ctx.role_name, detail=f"{step}: revised (round {revisions})"))
        if step == "code":
            files = list(dict.fromkeys([*result.files, *doc.files]))
            return CodeBundle(files=files)
        return doc

    async def _decide(self, step: str, round_no: int, doc: BaseModel) -> Decision:
        record = self._recorded.get((step, round_no))
        if record is not None:
            return Decision(record.decision, document=record.document, feedback=record.feedback)  # type: ignore[arg-type]
        if self.reviewer is None:
            return approve()  # nobody to ask (a replay of a run reviewed only in part)
        self.asked += 1
        answer = self.reviewer(step, doc)
        if inspect.isawaitable(answer):
            answer = await answer
        decision = _as_decision(answer)
        if self.record is not None:
            document = None
            if decision.kind == "edit":
                try:
                    document = coerce(step, decision.document).model_dump(mode="json")
                except ValueError:
                    document = decision.document if isinstance(decision.document, (str, dict)) else None
            self.record(ReviewRecord(step=step, round=round_no, decision=decision.kind,
                                     feedback=decision.feedback, document=document))
        return decision

    def _shown(self, step: str, ctx: ActionContext, result: Any) -> BaseModel:
        if step != "code":
            return result
        ws = Workspace(ctx.workspace) if ctx.workspace else None
        files = {p: ws.read(p) for p in result.files if ws and ws.exists(p)}
        return SourceFiles(files=files)

    def _check_paths(self, step: str, ctx: ActionContext, doc: BaseModel) -> None:
        if step == "code" and ctx.workspace is not None:
            for path in doc.files:  # type: ignore[attr-defined]
                Workspace(ctx.workspace).check(path)

    def _save(self, step: str, ctx: ActionContext, doc: BaseModel) -> None:
        if step == "code":
            if ctx.workspace is not None:
                ws = Workspace(ctx.workspace)
                for path, text in doc.files.items():  # type: ignore[attr-defined]
                    ws.write(path, text)
            return
        save_document(ctx, step, doc)

    def _commit(self, author: str, message: str) -> None:
        """Commit the workspace now (version history), as ``author``."""
        if self.commit is not None:
            self.commit(author, message)

    async def _revise(self, step: str, action: Action, ctx: ActionContext, doc: BaseModel, text: str) -> BaseModel:
        """The role's revision of ``doc`` with the reviewer's ``text`` (its next model turn)."""
        system = f"You are {ctx.role_name}, a {ctx.role_profile}."
        if isinstance(doc, SourceFiles):
            prompt = (
                f"A reviewer read the code you wrote and asks for changes:\n{text}\n\n"
                f"The files:\n{doc.to_markdown()}\n\nFor each file you change, write a line with "
                "its path, then the complete new file in a ```python code block."
            )
            changes = await action.ask_parsed(prompt, extract_files, system=system, wanted="files",
                                              again="Give each changed file as a path line followed by a code block.")
            if ctx.workspace is not None:
                for path, _ in changes:  # every path checked before anything is written
                    Workspace(ctx.workspace).check(path)
            return SourceFiles(files={**doc.files, **dict(changes)})
        prompt = (
            f"A reviewer read your {type(doc).__name__} and asks for changes:\n{text}\n\n"
            f"The current version:\n{doc.model_dump_json(indent=2)}\n\nRevise it."
        )
        return await action.ask_structured(prompt, type(doc), system=system)


def _as_decision(answer: Any) -> Decision:
    if isinstance(answer, Decision):
        return answer
    if answer is None or answer is True:
        return approve()
    if isinstance(answer, str):
        return feedback(answer) if answer.strip() else approve()
    return edit(answer)


# -- the terminal ---------------------------------------------------------------------------


class TerminalReviewer:
    """Shows each document in the terminal and asks: approve (Enter or ``a``), edit in
    ``$EDITOR`` (``e``), or feedback (``f``). A broken edit is shown and the editor opens
    again on the same text, so nothing typed is lost."""

    def __init__(
        self,
        console: Any = None,
        *,
        ask: Callable[[str], str] = input,
        editor: str | None = None,
        pause: Callable[[], Any] | None = None,
    ):
        from rich.console import Console

        self.console = console or Console()
        self.ask = ask
        self.editor = editor or os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        self.pause = pause

    def __call__(self, step: str, document: BaseModel) -> Decision:
        if self.pause is not None:
            with self.pause():
                return self._review(step, document)
        return self._review(step, document)

    def _input(self, prompt: str) -> str:
        try:
            return self.ask(prompt)
        except EOFError:
            raise ReviewError("review input closed before an answer: approve with Enter, or run without --review") from None

    def _show(self, step: str, document: BaseModel) -> None:
        from rich.markdown import Markdown
        from rich.rule import Rule
        from rich.syntax import Syntax

        self.console.print(Rule(f"review: {step}"))
        if isinstance(document, SourceFiles):
            for path, text in document.files.items():
                self.console.print(f"[bold]{path}[/]")
                self.console.print(Syntax(text, "python", line_numbers=True))
        else:
            self.console.print(Markdown(document.to_markdown()))  # type: ignore[attr-defined]

    def _review(self, step: str, document: BaseModel) -> Decision:
        self._show(step, document)
        for _ in range(MAX_BAD_ANSWERS):
            answer = self._input(f"{step}: [a]pprove (Enter), [e]dit, [f]eedback > ").strip().lower()
            if answer in ("", "a", "approve"):
                return approve()
            if answer in ("e", "edit"):
                edited = self._edit(step, document)
                if edited is not None:
                    return edit(edited)
                continue
            if answer in ("f", "feedback"):
                text = self._input("feedback (one line) > ").strip()
                if text:
                    return feedback(text)
                self.console.print("no feedback given")
                continue
            self.console.print(f"unknown answer {answer!r}")
        raise ReviewError(f"review of {step}: no usable answer after {MAX_BAD_ANSWERS} tries")

    def _edit(self, step: str, document: BaseModel) -> BaseModel | None:
        """Open the editor; return the validated document, or ``None`` if the user drops it."""
        code = isinstance(document, SourceFiles)
        text = document.to_markdown() if code else document.model_dump_json(indent=2) + "\n"  # type: ignore[attr-defined]
        with tempfile.TemporaryDirectory(prefix="mgpt-review-") as tmp:
            path = Path(tmp) / (f"{step}.md" if code else f"{step}.json")
            for _ in range(MAX_BAD_ANSWERS):
                path.write_text(text, encoding="utf-8")
                try:
                    proc = subprocess.run([*shlex.split(self.editor), str(path)])
                except OSError as exc:
                    raise ReviewError(f"cannot start the editor {self.editor!r} ({exc}): set $EDITOR") from None
                text = path.read_text(encoding="utf-8")
                if proc.returncode != 0:
                    self.console.print(f"the editor exited with status {proc.returncode}")
                try:
                    return coerce(step, text)
                except (ValueError, ParseError) as exc:
                    self.console.print(f"[red]the edited {step} is not valid:[/] {_short(exc)}")
                answer = self._input("Enter to edit again (your text is kept), d to drop the edit > ").strip().lower()
                if answer in ("d", "drop"):
                    return None
        raise ReviewError(f"review of {step}: no valid edit after {MAX_BAD_ANSWERS} tries")

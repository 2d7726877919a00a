"""The planning half of the software company: PRD, system design, task list.

Prompts carry what each step needs and no more, and no example application: small models
copy examples back instead of answering. An incremental run (``--inc``) uses these steps'
variants in :mod:`mgpt.actions.incremental`.
"""

from __future__ import annotations

from mgpt.agents.message import UserRequirement
from mgpt.llm.backends.base import OutputFormat

from mgpt.actions.base import Action, ActionContext
from mgpt.actions.documents import PRD, SystemDesign, Task, TaskList
from mgpt.llm.parsing import extract_json
from mgpt.sandbox.workspace import Workspace

#: The shape every generated project takes. Third-party packages are allowed when declared
#: (mgpt installs them into the project's own environment before the tests run).
PROJECT_RULES = (
    "The project is Python 3.10+, organised as one package whose modules can be imported by "
    "pytest tests, with a command-line entry point in the package's __main__.py where the "
    "idea calls for one. Prefer the standard library; a third-party package the idea really "
    "needs is allowed when declared in requirements.txt (list that file too)."
)


def system_prompt(ctx: ActionContext) -> str:
    """The system message of a software-company role: who it is and its goal."""
    text = f"You are {ctx.role_name}, a {ctx.role_profile}."
    if ctx.role_goal:
        text += f" Your goal: {ctx.role_goal}."
    return text


def save_document(ctx: ActionContext, stem: str, doc) -> None:
    """Write ``docs/<stem>.md`` and ``docs/<stem>.json`` when the run has a workspace."""
    if ctx.workspace is None:
        return
    ws = Workspace(ctx.workspace)
    ws.write(f"docs/{stem}.md", doc.to_markdown())
    ws.write(f"docs/{stem}.json", doc.model_dump_json(indent=2) + "\n")


class WritePRD(Action):
    description = "Turn the user's idea into a product requirements document"

    async def run(self, ctx: ActionContext) -> PRD:
        idea = ctx.latest(UserRequirement)
        prompt = (
            f"Write a product requirements document for this idea:\n{idea.content if idea else ''}\n\n"
            f"Keep the scope small enough for a few files. {PROJECT_RULES}"
        )
        prd = await self.ask_structured(prompt, PRD, system=system_prompt(ctx))
        save_document(ctx, "prd", prd)
        return prd


class WriteDesign(Action):
    description = "Design the system: approach, files, class and sequence diagrams"

    async def run(self, ctx: ActionContext) -> SystemDesign:
        message = ctx.latest(WritePRD)
        prd: PRD = message.payload  # type: ignore[union-attr, assignment]
        prompt = (
            f"Design the software for this product.\n\n{prd.brief()}\n\n{PROJECT_RULES} "
            f"Put the code in the package `{prd.project_name}/` (list its __init__.py too). "
            "The class diagram shows the data structures with their fields and the interfaces "
            "with their method signatures; the sequence diagram shows the main call flow."
        )
        design = await self.ask_structured(
            prompt, SystemDesign, system=system_prompt(ctx), json_schema=SystemDesign.package_schema(prd.project_name)
        )
        save_document(ctx, "design", design)
        return design


class WriteTasks(Action):
    description = "Break the design into ordered tasks, one per file"

    async def run(self, ctx: ActionContext) -> TaskList:
        message = ctx.latest(WriteDesign)
        design: SystemDesign = message.payload  # type: ignore[union-attr, assignment]
        files = "\n".join(f"- {f.path}: {f.purpose}" for f in design.files)
        paths = [f.path for f in design.files]
        # The answer is keyed by the design's own paths (TaskList.plan_schema): the model
        # writes what each file does and what it imports; it cannot drop, repeat or misname
        # a file, nor make a cycle, so a constrained model's plan is always valid.
        prompt = (
            "Plan the implementation: for each file, what to implement in it and which of "
            "the files listed before it it imports from.\n\n"
            f"Approach: {design.implementation_approach}\n\nFiles:\n{files}\n\n"
            f"Interfaces:\n{design.class_diagram}\n\n"
            "Reply with one JSON object with one key per file path, in the order above, each "
            "holding an object with description (string) and depends_on (list of paths)."
        )
        tasks = await self.ask_parsed(
            prompt,
            lambda reply: TaskList.from_plan(extract_json(reply), paths),
            system=system_prompt(ctx),
            wanted="TaskList",
            again="Reply again with only the corrected JSON object.",
            output=OutputFormat(kind="json_schema", name="TaskList", json_schema=TaskList.plan_schema(paths)),
        )
        missing = {f.path for f in design.files} - {t.path for t in tasks.tasks}
        if missing:
            # Every designed file gets written: add a task for any the plan forgot.
            tasks = TaskList(
                tasks=[*tasks.tasks, *(Task(path=p, description="as designed") for p in sorted(missing))]
            )
        save_document(ctx, "tasks", tasks)
        return tasks

"""τ²-bench's retail tasks: a customer's scenario, and what a correct support call does.

Each task carries the simulated customer's instructions (``user_scenario``) and the
evaluation criteria: the gold ``actions`` (tool calls whose end state is the expected store)
and ``communicate_info`` (strings the agent must tell the customer). ``split_tasks.json``
names the ``train`` (74) and ``test`` (40) splits; ``base`` is all 114.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .data import FETCH_COMMAND, RetailData
from .errors import RetailDataError

__all__ = [
    "SPLITS", "Action", "EvaluationCriteria", "Task", "TaskDescription", "UserInstructions",
    "UserScenario", "load_tasks",
]

SPLITS = ("train", "test", "base")


class _Strict(BaseModel):
    # A field we do not know is a field we might grade wrongly: refuse it.
    model_config = ConfigDict(extra="forbid")


class TaskDescription(_Strict):
    purpose: Optional[str] = None
    relevant_policies: Optional[str] = None
    notes: Optional[str] = None


class UserInstructions(_Strict):
    """What the simulated customer knows and wants."""

    domain: str
    reason_for_call: str
    known_info: Optional[str] = None
    unknown_info: Optional[str] = None
    task_instructions: str


class UserScenario(_Strict):
    persona: Optional[str] = None
    instructions: Union[UserInstructions, str]


class Action(_Strict):
    """A gold tool call: ``name(**arguments)`` on the store."""

    action_id: str
    requestor: Literal["assistant", "user"] = "assistant"
    name: str
    arguments: dict[str, Any]
    info: Optional[str] = None
    compare_args: Optional[list[str]] = None


class EvaluationCriteria(_Strict):
    actions: Optional[list[Action]] = None
    #: Strings the agent must say to the customer (case and commas ignored).
    communicate_info: Optional[list[str]] = None
    #: Judged by a model in τ²-bench; not part of the retail reward.
    nl_assertions: Optional[list[str]] = None
    #: What the reward multiplies: the store's end state (DB) and communicate_info.
    reward_basis: list[Literal["DB", "COMMUNICATE"]] = Field(default_factory=lambda: ["DB", "COMMUNICATE"])


class Task(_Strict):
    """One retail task."""

    id: str
    description: Optional[TaskDescription] = None
    user_scenario: UserScenario
    #: τ²-bench's hook for a non-default start state; no retail task uses it, and mgpt refuses one.
    initial_state: None = None
    evaluation_criteria: EvaluationCriteria


def load_tasks(data: RetailData, split: str = "base") -> list[Task]:
    """The tasks of ``split`` (``train``, ``test`` or ``base``: all), in the file's order."""
    splits = data.splits()
    if split not in splits:
        raise RetailDataError(f"no task split {split!r}: the retail splits are {', '.join(sorted(splits))}")
    wanted = set(splits[split])
    tasks = []
    for raw in data.tasks_json():
        try:
            task = Task.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise RetailDataError(
                f"retail task {raw.get('id', '?')} is not in the shape mgpt reads ({where}: {first['msg']}); "
                f"run `{FETCH_COMMAND}` to fetch the pinned data again"
            ) from None
        if task.id in wanted:
            tasks.append(task)
    return tasks

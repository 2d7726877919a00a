"""One model per role: a team whose roles run on different backends, behind one model.

A team gives every role the run's model. :class:`ModelPerRole` is that model when some roles
should run elsewhere: each call goes to the model of the role asking (the call's
:class:`~mgpt.llm.backends.base.CallContext`), the others to the default. Recording, replay,
resume and budgets wrap it like any model, so one transcript holds every role's calls::

    model = ModelPerRole(infer_model("local"), {"Customer": infer_model("openai:gpt-4.1")})
"""

from __future__ import annotations

from typing import AsyncIterator, Mapping

from mgpt.llm.backends.base import CallContext, ChatMessage, Completion, Model, OutputFormat, StreamChunk, ToolOptions
from mgpt.llm.backends.tool_protocol import call_model

__all__ = ["ModelPerRole"]


class ModelPerRole(Model):
    """Answers each call with ``by_role[context.role]``, or ``default`` for other roles."""

    def __init__(self, default: Model, by_role: Mapping[str, Model]):
        self.default = default
        self.by_role = dict(by_role)
        others = ", ".join(f"{role}={model.name}" for role, model in self.by_role.items())
        self.name = default.name
        #: Priced as the default model (the one most calls go to); the others in the label.
        self.priced_as = getattr(default, "priced_as", "") or default.name
        self.label = f"{default.name} ({others})" if others else default.name

    def route(self, context: CallContext | None) -> Model:
        """The model that answers a call from ``context``'s role."""
        return self.by_role.get(context.role, self.default) if context is not None else self.default

    @property
    def max_tokens(self) -> int | None:
        """The largest per-call cap of the models (None when one sets none): a budget's bound."""
        from mgpt.llm.backends.cost import call_cap

        caps = [call_cap(m) for m in (self.default, *self.by_role.values())]
        return None if any(c is None for c in caps) else max(c for c in caps if c is not None)

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
        tools: ToolOptions | None = None,
    ) -> Completion:
        return await call_model(self.route(context), messages, context=context, output=output, tools=tools)

    async def stream(
        self,
        messages: list[ChatMessage],
        *,
        context: CallContext | None = None,
        output: OutputFormat | None = None,
    ) -> AsyncIterator[StreamChunk]:
        async for chunk in self.route(context).stream(messages, context=context, output=output):
            yield chunk

    async def aclose(self) -> None:
        for model in {id(m): m for m in (self.default, *self.by_role.values())}.values():
            await model.aclose()

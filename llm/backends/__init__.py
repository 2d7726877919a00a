"""The model port: the one small interface every backend implements, and the backends that
need no torch.

:mod:`~mgpt.llm.backends.base` (``Model``, messages, completions, usage),
:mod:`~mgpt.llm.backends.client` (``LLM``: what actions call, with budget and run log),
:mod:`~mgpt.llm.backends.openai_model` (any OpenAI-compatible server),
:mod:`~mgpt.llm.backends.replay` (recorded transcripts: record, replay, resume),
:mod:`~mgpt.llm.backends.testing` (scripted and function models for tests) and
:mod:`~mgpt.llm.backends.cost` (prices). The registry that picks one by a spec string is
:mod:`mgpt.llm.models`.
"""

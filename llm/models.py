"""The model registry: a spec string names a backend; each is imported only when chosen.

=====================  ======================================================
``openai:<model>``     any OpenAI-compatible server (OpenAI, Azure, vLLM, Ollama,
                       llama.cpp, ``mgpt serve``): a base URL and a key
``replay:<file>``      a recorded transcript
``hf:<dir>``           a local HuggingFace transformers checkpoint
``local[:<name>]``     a model folder in ``$MGPT_HOME/models`` (default: the embedded
                       SmolLM2-135M-Instruct that ``mgpt models pull`` fetches)
``test``               :class:`~mgpt.llm.backends.testing.TestModel` with no script (Python use)
=====================  ======================================================

A backend is one entry in :data:`BACKENDS`: the spec's prefix and a factory
``factory(rest, options) -> Model``. A package adds its own without touching mgpt by
declaring an entry point in the group ``mgpt.models``, named by the prefix, pointing at
such a factory::

    [project.entry-points."mgpt.models"]
    mybackend = "my_package.backend:make_model"     # then: mgpt run -m mybackend:whatever

or, from Python, with :func:`register_backend`.
"""

from __future__ import annotations

import os
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable, Mapping

from mgpt.agents import secrets
from mgpt.llm.backends import guard
from mgpt.llm.backends.base import Model
from mgpt.llm.errors import ModelConfigError

#: Completion tokens one call to an OpenAI-compatible server may use unless told otherwise.
#: Always sent, so a budget can bound every call's worst case before making it.
DEFAULT_MAX_TOKENS_PER_CALL = 4096

SPEC_HELP = (
    "choose a model with --model, MGPT_MODEL or the config file, e.g. "
    "'openai:gpt-4o-mini' (with OPENAI_API_KEY or MGPT_API_KEY set), "
    "'openai:qwen2.5-coder' with --base-url http://localhost:11434/v1 for Ollama, "
    "'hf:/path/to/checkpoint', 'local' (the small embedded model, offline), or 'replay:transcript.jsonl'"
)


def _constrained(env) -> bool:
    """``MGPT_CONSTRAINED=0`` turns grammar-constrained decoding off for local models (to
    measure what it buys, or to see what a model writes on its own); anything else, or
    unset, keeps it on."""
    value = (env.get("MGPT_CONSTRAINED") or "1").strip().lower()
    if value not in ("0", "1", "false", "true", "no", "yes", "off", "on"):
        raise ModelConfigError(f"MGPT_CONSTRAINED={value!r}: use 1 (the default) or 0")
    return value in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ModelOptions:
    """What a backend factory may use besides the spec: the server, the key, the limits."""

    base_url: str | None = None
    api_key: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    timeout: float | None = None
    #: completion tokens one call may use (servers: :data:`DEFAULT_MAX_TOKENS_PER_CALL`)
    max_tokens: int | None = None
    #: torch threads for local models (default: ``$MGPT_THREADS``, else the free cores)
    threads: int | None = None


#: A backend factory: the spec's text after the prefix, and the options.
Factory = Callable[[str, ModelOptions], Model]


def _openai(rest: str, opts: ModelOptions) -> Model:
    if not rest:
        raise ModelConfigError(f"model spec 'openai:{rest}' names no model: use openai:<model-name>")
    env = opts.env
    base_url = opts.base_url or env.get("MGPT_BASE_URL") or env.get("OPENAI_BASE_URL") or None
    api_key = opts.api_key or env.get("MGPT_API_KEY") or env.get("OPENAI_API_KEY") or None
    secrets.register(api_key)
    guard.check_model_request(base_url)
    if not base_url and not api_key:
        raise ModelConfigError(
            f"no API key for openai:{rest}: set OPENAI_API_KEY or MGPT_API_KEY, or pass --api-key-file PATH "
            "(for a local server such as vLLM, Ollama or llama.cpp pass --base-url instead)"
        )
    from mgpt.llm.backends.openai_model import OpenAIModel

    options = {"timeout": opts.timeout} if opts.timeout is not None else {}
    return OpenAIModel(
        rest, base_url=base_url, api_key=api_key,
        max_tokens=opts.max_tokens or DEFAULT_MAX_TOKENS_PER_CALL, **options,
    )


def _replay(rest: str, opts: ModelOptions) -> Model:
    if not rest:
        raise ModelConfigError("replay spec names no file: use replay:<transcript.jsonl>")
    from mgpt.llm.backends.replay import ReplayModel

    return ReplayModel(rest)


def _hf(rest: str, opts: ModelOptions) -> Model:
    if not rest:
        raise ModelConfigError("hf spec names no folder: use hf:<checkpoint-dir>")
    from mgpt.llm.local.model import LocalModel

    cap = {"max_new_tokens": opts.max_tokens} if opts.max_tokens else {}
    return LocalModel(Path(rest), threads=opts.threads, constrained=_constrained(opts.env), **cap)


def _local(rest: str, opts: ModelOptions) -> Model:
    from mgpt.llm.local.generate import quantized_decoder
    from mgpt.llm.local.model import LocalModel
    from mgpt.llm.local.store import resolve_local

    name, path = resolve_local(rest, opts.env)
    cap = {"max_new_tokens": opts.max_tokens} if opts.max_tokens else {}
    # The embedded model decodes with int4 weights by default (~3x HF generate on CPU,
    # perplexity +0.3%: docs/benchmarks.md), a model mgpt trained with int8 (int4 would
    # undo most of a fine-tune); MGPT_DECODER=hf gives HF generate.
    decoder = opts.env.get("MGPT_DECODER") or quantized_decoder(path)
    return LocalModel(
        path, threads=opts.threads, name=f"local:{name}", decoder=decoder, constrained=_constrained(opts.env), **cap
    )


def _test(rest: str, opts: ModelOptions) -> Model:
    if rest:
        raise ModelConfigError(f"the test model takes no argument: use 'test', not 'test:{rest}'")
    from mgpt.llm.backends.testing import TestModel

    return TestModel()


#: prefix -> factory. ``local`` alone (no colon) means the embedded model.
BACKENDS: dict[str, Factory] = {
    "openai": _openai, "replay": _replay, "hf": _hf, "local": _local, "test": _test,
}


def register_backend(prefix: str, factory: Factory) -> None:
    """Make ``prefix:<rest>`` specs build models with ``factory`` (replaces an entry)."""
    if not prefix or ":" in prefix:
        raise ValueError(f"a backend prefix is a non-empty name without ':', not {prefix!r}")
    BACKENDS[prefix] = factory


def _plugin(prefix: str) -> Factory | None:
    """A factory declared by an installed package under the ``mgpt.models`` entry points."""
    from importlib.metadata import entry_points

    for point in entry_points(group="mgpt.models"):
        if point.name == prefix:
            try:
                return point.load()
            except Exception as exc:  # a broken plugin is the user's to fix: say which
                raise ModelConfigError(f"the model backend plugin {point.value!r} for '{prefix}:' "
                                       f"failed to load: {exc}") from None
    return None


def infer_model(
    spec: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    max_tokens: int | None = None,
    threads: int | None = None,
) -> Model:
    """Build the backend ``spec`` names. ``base_url`` and ``api_key`` fall back to
    ``MGPT_BASE_URL``/``OPENAI_BASE_URL`` and ``MGPT_API_KEY``/``OPENAI_API_KEY``.

    ``timeout`` is the seconds one request to a server may take; ``max_tokens`` the
    completion tokens one call may use (:data:`DEFAULT_MAX_TOKENS_PER_CALL` for servers,
    the checkpoint's default for ``hf:``). Every key resolved is registered as a secret.
    ``threads`` sizes torch for the local backends (default: ``$MGPT_THREADS``, else the
    free cores). Local models decode structured answers under their grammar unless
    ``MGPT_CONSTRAINED=0``."""
    if not isinstance(spec, str):
        raise ModelConfigError(f"the model spec must be a string, not {spec!r}: {SPEC_HELP}")
    prefix, _, rest = spec.partition(":")
    factory = BACKENDS.get(prefix) or _plugin(prefix)
    if factory is None:
        raise ModelConfigError(f"unknown model spec {spec!r}: {SPEC_HELP}")
    options = ModelOptions(
        base_url=base_url, api_key=api_key, env=os.environ if env is None else env,
        timeout=timeout, max_tokens=max_tokens, threads=threads,
    )
    return factory(rest, options)

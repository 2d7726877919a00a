"""Pick a backend from a spec string; each backend is imported only when chosen.

=====================  ======================================================
``openai:<model>``     any OpenAI-compatible server (OpenAI, Azure, vLLM, Ollama,
                       llama.cpp, ``mgpt serve``): a base URL and a key
``replay:<file>``      a recorded transcript
``hf:<dir>``           a local HuggingFace transformers checkpoint
``local[:<name>]``     a model folder in ``$MGPT_HOME/models`` (default: the embedded
                       SmolLM2-135M-Instruct that ``mgpt models pull`` fetches)
``test``               :class:`~mgpt.llm.testing.TestModel` with no script (Python use)
=====================  ======================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from mgpt.agents import secrets

from .base import Model
from .errors import ModelConfigError

#: Tests set this to False (see tests/conftest.py) so no test can reach a real provider by
#: accident; servers on the loopback interface stay allowed.
ALLOW_MODEL_REQUESTS = True

#: Completion tokens one call to an OpenAI-compatible server may use unless told otherwise.
#: Always sent, so a budget can bound every call's worst case before making it.
DEFAULT_MAX_TOKENS_PER_CALL = 4096

SPEC_HELP = (
    "choose a model with --model, MGPT_MODEL or the config file, e.g. "
    "'openai:gpt-4o-mini' (with OPENAI_API_KEY or MGPT_API_KEY set), "
    "'openai:qwen2.5-coder' with --base-url http://localhost:11434/v1 for Ollama, "
    "'hf:/path/to/checkpoint', 'local' (the small embedded model, offline), or 'replay:transcript.jsonl'"
)


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host in {"localhost", "::1"} or host.startswith("127.")


def _constrained(env) -> bool:
    """``MGPT_CONSTRAINED=0`` turns grammar-constrained decoding off for local models (to
    measure what it buys, or to see what a model writes on its own); anything else, or
    unset, keeps it on."""
    value = (env.get("MGPT_CONSTRAINED") or "1").strip().lower()
    if value not in ("0", "1", "false", "true", "no", "yes", "off", "on"):
        raise ModelConfigError(f"MGPT_CONSTRAINED={value!r}: use 1 (the default) or 0")
    return value in ("1", "true", "yes", "on")


def infer_model(
    spec: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    env: dict[str, str] | None = None,
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
    env = os.environ if env is None else env
    if not isinstance(spec, str):
        raise ModelConfigError(f"the model spec must be a string, not {spec!r}: {SPEC_HELP}")
    kind, _, rest = spec.partition(":")
    if kind == "openai":
        if not rest:
            raise ModelConfigError(f"model spec {spec!r} names no model: use openai:<model-name>")
        base_url = base_url or env.get("MGPT_BASE_URL") or env.get("OPENAI_BASE_URL") or None
        api_key = api_key or env.get("MGPT_API_KEY") or env.get("OPENAI_API_KEY") or None
        secrets.register(api_key)
        if not ALLOW_MODEL_REQUESTS and not (base_url and _is_loopback(base_url)):
            raise ModelConfigError(
                "real model requests are disabled here (tests): use a model from "
                "mgpt.llm.testing, a replay, or a server on 127.0.0.1"
            )
        if not base_url and not api_key:
            raise ModelConfigError(
                f"no API key for {spec}: set OPENAI_API_KEY or MGPT_API_KEY, or pass --api-key-file PATH "
                "(for a local server such as vLLM, Ollama or llama.cpp pass --base-url instead)"
            )
        from .openai_model import OpenAIModel

        options = {"timeout": timeout} if timeout is not None else {}
        return OpenAIModel(
            rest, base_url=base_url, api_key=api_key,
            max_tokens=max_tokens or DEFAULT_MAX_TOKENS_PER_CALL, **options,
        )
    if kind == "replay":
        from .replay import ReplayModel

        if not rest:
            raise ModelConfigError("replay spec names no file: use replay:<transcript.jsonl>")
        return ReplayModel(rest)
    if kind == "hf":
        if not rest:
            raise ModelConfigError("hf spec names no folder: use hf:<checkpoint-dir>")
        from .local import LocalModel

        cap = {"max_new_tokens": max_tokens} if max_tokens else {}
        return LocalModel(Path(rest), threads=threads, constrained=_constrained(env), **cap)
    if kind == "local":
        from .embedded import resolve_local
        from .local import LocalModel

        name, path = resolve_local(rest, env)
        cap = {"max_new_tokens": max_tokens} if max_tokens else {}
        # The embedded model decodes with int4 weights by default (~3x HF generate on CPU,
        # perplexity +0.3%: docs/benchmarks.md), a model mgpt trained with int8 (int4 would
        # undo most of a fine-tune); MGPT_DECODER=hf gives HF generate.
        from .generate import quantized_decoder

        decoder = env.get("MGPT_DECODER") or quantized_decoder(path)
        return LocalModel(
            path, threads=threads, name=f"local:{name}", decoder=decoder, constrained=_constrained(env), **cap
        )
    if spec == "test":
        from .testing import TestModel

        return TestModel()
    raise ModelConfigError(f"unknown model spec {spec!r}: {SPEC_HELP}")

"""The switch that keeps real model requests and downloads off in tests.

Tests set :data:`ALLOW_MODEL_REQUESTS` to ``False`` (see ``tests/conftest.py``), so no
test can reach a real provider or package index by accident. Servers on the loopback
interface, and pip pointed at local wheels or a loopback index, stay allowed: that is how
tests run against servers and wheels they start or build themselves.
"""

from __future__ import annotations

import os
from typing import Mapping
from urllib.parse import urlparse

from mgpt.llm.errors import ModelConfigError

#: False in tests: only loopback servers and local wheels may be reached.
ALLOW_MODEL_REQUESTS = True


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (``localhost``, ``127.x``, ``::1``)."""
    host = urlparse(url).hostname or ""
    return host in {"localhost", "::1"} or host.startswith("127.")


def pip_is_local(env: Mapping[str, str]) -> bool:
    """Whether pip, run with ``env``, can reach only local wheels or a loopback index."""
    if env.get("PIP_NO_INDEX", "").lower() in ("1", "true", "yes", "on"):
        return True
    return (
        is_loopback(env.get("PIP_INDEX_URL", ""))
        and env.get("PIP_CONFIG_FILE") == os.devnull
        and not env.get("PIP_EXTRA_INDEX_URL")
    )


def check_model_request(base_url: str | None) -> None:
    """Refuse a request to a non-loopback server while requests are switched off."""
    if not ALLOW_MODEL_REQUESTS and not (base_url and is_loopback(base_url)):
        raise ModelConfigError(
            "real model requests are disabled here (tests): use a model from "
            "mgpt.llm.backends.testing, a replay, or a server on 127.0.0.1"
        )


def check_download(command: str, env: Mapping[str, str] | None = None, error: type[Exception] = ModelConfigError) -> None:
    """Refuse a pip download from the real index while requests are switched off;
    ``command`` is what the user would run instead."""
    if not ALLOW_MODEL_REQUESTS and not pip_is_local(os.environ if env is None else env):
        raise error(
            "downloads are disabled here (tests): point pip at local wheels "
            f"(PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR) or a 127.0.0.1 index; elsewhere run `{command}`"
        )

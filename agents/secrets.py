"""Known secret values, and their removal from any text that leaves a sandbox.

A key can reach generated code's output in many ways (a test that reads a file, an error
message that quotes a variable). Whatever comes out of the sandbox goes through
:func:`redact` before it reaches a report, a log, a transcript or a prompt. The values are
collected from the environment (variables whose names look like credentials) and from
whatever the configuration resolved (:func:`register`).
"""

from __future__ import annotations

import os
import re

#: Variable names that hold credentials: ``OPENAI_API_KEY``, ``HF_TOKEN``, ``DB_PASSWORD``...
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
#: Shorter values are not treated as secrets: redacting "1" or "true" would garble output.
MIN_LENGTH = 8
MASK = "[redacted]"

_registered: set[str] = set()


def register(value: str | None) -> None:
    """Remember ``value`` as a secret (an API key the configuration resolved)."""
    if value and len(value) >= MIN_LENGTH:
        _registered.add(value)


def known(env: dict[str, str] | None = None) -> set[str]:
    """Every secret value known now: registered ones plus credential-like variables."""
    env = os.environ if env is None else env
    found = {v for k, v in env.items() if SECRET_NAME.search(k) and v and len(v) >= MIN_LENGTH}
    return found | _registered


def redact(text: str, env: dict[str, str] | None = None) -> str:
    """``text`` with every known secret value replaced by ``[redacted]``."""
    if not text:
        return text
    for value in sorted(known(env), key=len, reverse=True):  # longest first: no partial leftovers
        if value in text:
            text = text.replace(value, MASK)
    return text

"""User configuration for the command line: flags beat environment beats the config file.

The config file is TOML, at ``--config PATH``, ``$MGPT_CONFIG`` or
``$XDG_CONFIG_HOME/mgpt/config.toml`` (``~/.config/mgpt/config.toml``)::

    model = "openai:gpt-4o-mini"
    base_url = "http://localhost:11434/v1"   # optional: vLLM, Ollama, llama.cpp, Azure...
    api_key_env = "MY_PROVIDER_KEY"          # read the key from this variable (preferred)
    api_key_file = "~/.config/mgpt/key"      # or from this file (first line; keep it chmod 600)
    # api_key = "sk-..."                     # or keep it here (the file should be private)
    timeout = 120                            # seconds one request may take (slow local servers: more)
    max_tokens_per_call = 4096               # the completion cap sent with every request

    [prices]                                 # USD per 1M tokens: [prompt, completion]
    "my-finetune" = [0.30, 1.20]
    "my-cached-model" = [0.40, 1.60, 0.10]   # a third figure: cached prompt tokens

A key is never taken from the command line (``--api-key`` is refused): ``argv`` is readable
by every user of the machine (``/proc/PID/cmdline``, ``ps``) and lands in shell history.
Every key resolved here is registered with :func:`mgpt.agents.secrets.register`, so the
sandbox and the logs can redact it.

Nothing here is read at import time; :func:`load_settings` is called by the CLI.
"""

from __future__ import annotations

import math
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgpt.agents import secrets
from mgpt.agents.errors import MgptError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Each key the file may hold, with the type its value must have (as a TOML user reads it).
KEY_TYPES: dict[str, str] = {
    "model": "a string",
    "base_url": "a string",
    "api_key": "a string",
    "api_key_env": "a string",
    "api_key_file": "a string",
    "timeout": "a number of seconds",
    "max_tokens_per_call": "a whole number",
    "prices": "a table",
}
KNOWN_KEYS = set(KEY_TYPES)

#: A key file larger than this is not a key (someone pointed at the wrong file).
MAX_KEY_FILE_BYTES = 4096


class ConfigError(MgptError):
    """The config file (or a key file) is missing, unreadable, or holds a wrong key or value."""


@dataclass
class Settings:
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    #: Seconds one request to an OpenAI-compatible server may take (None: the backend's default).
    timeout: float | None = None
    #: Completion tokens one call may use (None: the backend's default).
    max_tokens_per_call: int | None = None
    prices: dict[str, tuple[float, ...]] = field(default_factory=dict)
    #: The config file read, or "" when there was none.
    source: str = ""
    #: Where the config file is (or would be): named in messages that ask the user to edit it.
    path: Path | None = None
    #: Things the user should know that are not errors (a key file others can read).
    notes: list[str] = field(default_factory=list)
    #: Where the key comes from, in words (never the key): "$MGPT_API_KEY", "the key file
    #: ~/.config/mgpt/key (api_key_file in ...)"; "" when there is none.
    key_source: str = ""


def default_config_path(env: dict[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mgpt" / "config.toml"


def _read_toml(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x}); "
            "it should be a TOML file such as: model = \"openai:gpt-4o-mini\""
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


#: How each key's value is checked, and an example of a right one for the message.
_CHECKS: dict[str, tuple[Any, str]] = {
    "timeout": (lambda v: _is_number(v) and v > 0, "timeout = 120"),
    "max_tokens_per_call": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "max_tokens_per_call = 4096"),
    "prices": (lambda v: isinstance(v, dict), '[prices] then "model-name" = [prompt_usd_per_1m, completion_usd_per_1m]'),
}


def _check_types(data: dict, path: Path) -> None:
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(unknown)} in {path}; known keys: {', '.join(sorted(KNOWN_KEYS))}"
        )
    for key, value in data.items():
        check, example = _CHECKS.get(key, (lambda v: isinstance(v, str), f'{key} = "..."'))
        if not check(value):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
            wanted = KEY_TYPES[key] + (" above 0" if key in ("timeout", "max_tokens_per_call") else "")
            raise ConfigError(f"{path}: {key} must be {wanted}, not {shown} (e.g. {example})")


def _prices(data: dict, path: Path) -> dict[str, tuple[float, ...]]:
    prices = {}
    for name, value in (data.get("prices") or {}).items():
        numbers = isinstance(value, list) and len(value) in (2, 3) and all(_is_number(v) and v >= 0 for v in value)
        if not numbers:
            raise ConfigError(
                f"{path}: prices.{name} must be [prompt_usd_per_1m, completion_usd_per_1m] (and optionally "
                f"a third, cached_prompt_usd_per_1m), numbers >= 0, e.g. \"{name}\" = [0.15, 0.60]"
            )
        prices[name] = tuple(float(v) for v in value)
    return prices


def read_key_file(path: str | Path, *, base: Path | None = None, notes: list[str] | None = None) -> str:
    """The API key in ``path``: its first non-empty line, stripped.

    ``~`` is expanded; a relative path is taken from ``base`` (the config file's folder) when
    given. A file other users can read gets a note (``notes``), as ssh does for its keys.
    """
    key_path = Path(path).expanduser()
    if base is not None and not key_path.is_absolute():
        key_path = base / key_path
    try:
        info = key_path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"key file {key_path} is not a file")
        if info.st_size > MAX_KEY_FILE_BYTES:
            raise ConfigError(
                f"key file {key_path} is {info.st_size} bytes, too long for an API key: "
                "it should hold the key alone"
            )
        raw = key_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"key file {key_path} does not exist; write the key into it (chmod 600), or set "
            "MGPT_API_KEY / OPENAI_API_KEY instead"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read key file {key_path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"key file {key_path} is not UTF-8 text: it should hold the API key alone") from None
    key = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not key:
        raise ConfigError(f"key file {key_path} is empty: write the API key into it")
    if any(c.isspace() for c in key):
        raise ConfigError(f"key file {key_path}: its first line has spaces in it; it should hold the API key alone")
    if notes is not None and info.st_mode & 0o077:
        notes.append(f"key file {key_path} can be read by other users: chmod 600 {key_path}")
    return key


def load_settings(
    *,
    config: Path | None = None,
    model: str | None = None,
    base_url: str | None = None,
    api_key_file: Path | None = None,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    api_key: str | None = None,
) -> Settings:
    """Resolve the model settings: flags, then ``MGPT_*`` variables, then the file.

    The key comes from ``api_key_file`` (the ``--api-key-file`` flag), then ``$MGPT_API_KEY``,
    then the file's ``api_key_env``, ``api_key_file`` and ``api_key``, in that order
    (``$OPENAI_API_KEY`` is the last resort, read when the model is built). ``api_key`` is
    for Python callers; the command line never passes a key itself.
    """
    env = dict(os.environ) if env is None else env
    explicit = config or (Path(env["MGPT_CONFIG"]).expanduser() if env.get("MGPT_CONFIG") else None)
    path = explicit or default_config_path(env)
    data: dict[str, Any] = {}
    if path.is_file():
        data = _read_toml(path)
        _check_types(data, path)
    elif explicit is not None:
        if path.exists():
            raise ConfigError(f"config file {path} is not a file")
        raise ConfigError(f"config file {path} does not exist")
    notes: list[str] = []
    key, source = _resolve_key(api_key, api_key_file, env, data, path, notes)
    secrets.register(key)
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"--timeout must be a number of seconds above 0, not {timeout}")
    return Settings(
        model=model or env.get("MGPT_MODEL") or data.get("model"),
        base_url=base_url or env.get("MGPT_BASE_URL") or data.get("base_url"),
        api_key=key,
        timeout=timeout if timeout is not None else (float(data["timeout"]) if "timeout" in data else None),
        max_tokens_per_call=data.get("max_tokens_per_call"),
        prices=_prices(data, path),
        source=str(path) if data else "",
        path=path,
        notes=notes,
        key_source=source,
    )


def _resolve_key(
    api_key: str | None, api_key_file: Path | None, env: dict[str, str], data: dict, path: Path, notes: list[str],
) -> tuple[str | None, str]:
    """The key and where it came from (in words), in :func:`load_settings`' order."""
    if api_key is not None:
        return api_key, "the caller (api_key=)"
    if api_key_file is not None:
        return read_key_file(api_key_file, notes=notes), f"the key file {api_key_file} (--api-key-file)"
    if env.get("MGPT_API_KEY"):
        return env["MGPT_API_KEY"], "$MGPT_API_KEY"
    if data.get("api_key_env") and env.get(data["api_key_env"]):
        return env[data["api_key_env"]], f"${data['api_key_env']} (api_key_env in {path})"
    if data.get("api_key_file"):
        key = read_key_file(data["api_key_file"], base=path.parent, notes=notes)
        return key, f"the key file {data['api_key_file']} (api_key_file in {path})"
    if data.get("api_key"):
        return data["api_key"], f"api_key in {path}"
    if env.get("OPENAI_API_KEY"):  # read by the openai: backend itself, not kept here
        return None, "$OPENAI_API_KEY"
    return None, ""

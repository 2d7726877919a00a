"""User configuration for the command line: flags beat environment beats the config file.

The config file is TOML, at ``--config PATH``, ``$MGPT_CONFIG`` or
``$XDG_CONFIG_HOME/mgpt/config.toml`` (``~/.config/mgpt/config.toml``)::

    model = "openai:gpt-4o-mini"
    base_url = "http://localhost:11434/v1"   # optional: vLLM, Ollama, llama.cpp, Azure...
    api_key_env = "MY_PROVIDER_KEY"          # read the key from this variable (preferred)
    # api_key = "sk-..."                     # or keep it here (the file should be private)

    [prices]                                 # USD per 1M tokens: [prompt, completion]
    "my-finetune" = [0.30, 1.20]

Nothing here is read at import time; :func:`load_settings` is called by the CLI.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mgpt.agents.errors import MgptError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

KNOWN_KEYS = {"model", "base_url", "api_key", "api_key_env", "prices"}


class ConfigError(MgptError):
    """The config file is missing, unreadable or has unknown keys."""


@dataclass
class Settings:
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    source: str = ""


def default_config_path(env: dict[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mgpt" / "config.toml"


def load_settings(
    *,
    config: Path | None = None,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Resolve the model settings: flags, then ``MGPT_*`` variables, then the file."""
    env = dict(os.environ) if env is None else env
    explicit = config or (Path(env["MGPT_CONFIG"]) if env.get("MGPT_CONFIG") else None)
    path = explicit or default_config_path(env)
    data: dict = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        unknown = sorted(set(data) - KNOWN_KEYS)
        if unknown:
            raise ConfigError(
                f"unknown key(s) {', '.join(unknown)} in {path}; known keys: {', '.join(sorted(KNOWN_KEYS))}"
            )
    elif explicit is not None:
        raise ConfigError(f"config file {path} does not exist")
    key_from_file = data.get("api_key")
    if data.get("api_key_env"):
        key_from_file = env.get(str(data["api_key_env"])) or key_from_file
    prices = {}
    for name, value in (data.get("prices") or {}).items():
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)):
            raise ConfigError(f"{path}: prices.{name} must be [prompt_usd_per_1m, completion_usd_per_1m]")
        prices[name] = (float(value[0]), float(value[1]))
    return Settings(
        model=model or env.get("MGPT_MODEL") or data.get("model"),
        base_url=base_url or env.get("MGPT_BASE_URL") or data.get("base_url"),
        api_key=api_key or env.get("MGPT_API_KEY") or key_from_file,
        prices=prices,
        source=str(path) if data else "",
    )

"""Shared test setup: no test reaches a real model provider or reads the user's config."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

#: The machine's wheel cache (tools/install.sh fills it), read before any test moves MGPT_HOME.
REAL_WHEELS = Path(os.environ.get("MGPT_HOME") or Path.home() / ".cache" / "mgpt").expanduser() / "wheels"

SECRET_VARS = (
    "OPENAI_API_KEY", "MGPT_API_KEY", "MGPT_MODEL", "MGPT_BASE_URL", "OPENAI_BASE_URL",
    "MGPT_CONFIG", "AZURE_OPENAI_API_KEY",
)


@pytest.fixture(autouse=True)
def _no_real_models(monkeypatch, tmp_path_factory):
    """Real model calls fail loudly unless a test opts in (servers on 127.0.0.1 stay allowed)."""
    from mgpt.llm.backends import guard

    monkeypatch.setattr(guard, "ALLOW_MODEL_REQUESTS", False)
    for var in SECRET_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))
    home = tmp_path_factory.mktemp("mgpt_home")  # no user's pulled models...
    if REAL_WHEELS.is_dir():  # ...but the wheel cache project venvs install pytest from
        (home / "wheels").symlink_to(REAL_WHEELS, target_is_directory=True)
    monkeypatch.setenv("MGPT_HOME", str(home))
    monkeypatch.setenv("MGPT_OFFLINE", "1")  # no test reaches a package index
    if shutil.which("bwrap") is None:  # a developer without bubblewrap: the attack tests skip
        monkeypatch.setenv("MGPT_SANDBOX", "none")
    monkeypatch.setenv("MGPT_THREADS", "1")  # local models: one torch thread (the machine is shared)

"""Shared test setup: no test reaches a real model provider or reads the user's config."""

from __future__ import annotations

import pytest

SECRET_VARS = (
    "OPENAI_API_KEY", "MGPT_API_KEY", "MGPT_MODEL", "MGPT_BASE_URL", "OPENAI_BASE_URL",
    "MGPT_CONFIG", "AZURE_OPENAI_API_KEY",
)


@pytest.fixture(autouse=True)
def _no_real_models(monkeypatch, tmp_path_factory):
    """Real model calls fail loudly unless a test opts in (servers on 127.0.0.1 stay allowed)."""
    import mgpt.llm.models as models

    monkeypatch.setattr(models, "ALLOW_MODEL_REQUESTS", False)
    for var in SECRET_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))
    monkeypatch.setenv("MGPT_HOME", str(tmp_path_factory.mktemp("mgpt_home")))  # no user's pulled models
    monkeypatch.setenv("MGPT_THREADS", "1")  # local models: one torch thread (the machine is shared)

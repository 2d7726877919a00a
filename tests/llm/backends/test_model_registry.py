"""The model registry: spec prefixes, register_backend, and backends from other packages
through the ``mgpt.models`` entry point group (docs/models.md, "The registry")."""

import asyncio
import textwrap

import pytest

from mgpt.llm import ChatMessage, ModelConfigError, infer_model
from mgpt.llm import models


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    monkeypatch.setattr(models, "BACKENDS", dict(models.BACKENDS))


def plugin(tmp_path, monkeypatch, name: str, module_code: str, factory: str) -> str:
    """An installed distribution on sys.path whose module ``<name>_plugin`` holds
    ``module_code`` and whose entry point ``name`` in group mgpt.models points at its
    ``factory``; returns the entry point's value."""
    module = f"{name}_plugin"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(module_code))
    dist = tmp_path / f"{module}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[mgpt.models]\n{name} = {module}:{factory}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{module}:{factory}"


ECHO = """
    from mgpt.llm import Completion, Model

    class EchoModel(Model):
        def __init__(self, rest, options):
            self.name = "echo:" + rest
            self.timeout = options.timeout

        async def complete(self, messages, *, context=None, output=None):
            return Completion(text=messages[-1].content, model=self.name)

    def make_echo(rest, options):
        return EchoModel(rest, options)
"""


def test_a_backend_from_an_entry_point(tmp_path, monkeypatch):
    plugin(tmp_path, monkeypatch, "echo", ECHO, "make_echo")
    model = infer_model("echo:abc", timeout=7.5)
    assert model.name == "echo:abc" and model.timeout == 7.5  # the options reach the factory
    answer = asyncio.run(model.complete([ChatMessage(role="user", content="hi")]))
    assert answer.text == "hi"


def test_a_broken_plugin_is_named(tmp_path, monkeypatch):
    target = plugin(tmp_path, monkeypatch, "broken", "raise ImportError('no such thing')\n", "make")
    with pytest.raises(ModelConfigError, match=rf"plugin '{target}' for 'broken:' failed to load: no such thing"):
        infer_model("broken:x")


def test_built_in_prefixes_win_over_plugins(tmp_path, monkeypatch):
    plugin(tmp_path, monkeypatch, "test", ECHO, "make_echo")
    assert type(infer_model("test")).__name__ == "TestModel"


def test_register_backend_and_bad_prefixes():
    models.register_backend("fixed", lambda rest, options: infer_model("test"))
    assert type(infer_model("fixed:anything")).__name__ == "TestModel"
    for bad in ("", "a:b"):
        with pytest.raises(ValueError, match="prefix"):
            models.register_backend(bad, lambda rest, options: None)


def test_unknown_prefix_says_what_to_write():
    with pytest.raises(ModelConfigError, match="unknown model spec 'nosuch:x'.*openai:gpt-4o-mini"):
        infer_model("nosuch:x")

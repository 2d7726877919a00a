"""One `mgpt` namespace from a flat top level: the wheel installs only `mgpt`."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _declared() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]


def _on_disk() -> list[str]:
    found = ["mgpt"]
    for init in ROOT.rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if not rel.parts or rel.parts[0] in ("tests", "build", "dist", "benchmarks") or any(
            p.startswith(".") or p.endswith(".egg-info") for p in rel.parts
        ):
            continue
        found.append("mgpt." + ".".join(rel.parts))
    return sorted(found)


def test_packages_list_matches_folders():
    assert sorted(_declared()) == _on_disk()


def test_layout_traps_avoided():
    assert not (ROOT / "setup.py").exists()
    assert not (ROOT / "tests" / "__init__.py").exists()
    assert (ROOT / "tests" / "conftest.py").exists() and not (ROOT / "conftest.py").exists()
    for top in ("agents", "roles", "actions", "memory", "llm", "workflows", "tests"):
        assert (ROOT / top).is_dir(), top


def test_import_mgpt_is_light():
    code = (
        "import sys, mgpt, mgpt.agents, mgpt.llm\n"
        "print(sorted(m for m in ('torch', 'transformers', 'openai', 'numpy', 'tokenizers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_roles_import_without_model_sdks():
    code = (
        "import sys\nfrom mgpt.roles import Role\nfrom mgpt.workflows import run_company\n"
        "print(sorted(m for m in ('torch', 'transformers', 'openai', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_layers_import_one_way():
    """A lower layer never imports a higher one (message <- memory <- llm <- actions <- roles <- workflows <- cli)."""
    order = ["agents", "memory", "llm", "actions", "roles", "workflows"]
    import re

    for i, layer in enumerate(order):
        higher = order[i + 1:] + ["cli", "live", "config"]
        for path in (ROOT / layer).rglob("*.py"):
            text = path.read_text()
            for name in higher:
                pattern = rf"^\s*(from|import)\s+(mgpt\.{name}\b|\.\.+{name}\b)"
                assert not re.search(pattern, text, re.MULTILINE), f"{path.relative_to(ROOT)} imports mgpt.{name}"


@pytest.mark.slow
def test_wheel_installs_only_mgpt(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    wheel = next(tmp_path.glob("mgpt-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"mgpt", next(t for t in tops if t.endswith(".dist-info"))}
    assert "mgpt/agents/message.py" in names and "mgpt/llm/train/configs/tiny.toml" in names
    assert "mgpt/workflows/assets/mermaid.min.js" in names  # the run report draws diagrams offline
    assert not any(n.startswith("mgpt/tests/") for n in names)

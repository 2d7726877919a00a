"""One `mgpt` namespace from a flat top level: the wheel installs only `mgpt`."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from testpaths import ROOT


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


#: The layers, lowest first: a module may import its own layer and the ones before it.
LAYERS = ["agents", "memory", "sandbox", "llm", "domains", "actions", "roles", "workflows", "cli"]


def _import_graph() -> dict[str, set[str]]:
    """Every mgpt module and the mgpt modules it imports (at the top or inside functions;
    relative imports resolved), by parsing the source: nothing is imported to find out."""
    import ast

    modules: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("tests", "benchmarks", "tools", "docs", "build", "dist") or any(
            part.startswith(".") for part in rel.parts
        ):
            continue
        name = ".".join(("mgpt", *rel.with_suffix("").parts))
        modules[name.removesuffix(".__init__")] = path

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(resolve(alias.name) for alias in node.names if alias.name.startswith("mgpt"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [node.module])])
                if base.startswith("mgpt"):
                    found.update(resolve(f"{base}.{alias.name}") for alias in node.names)
        graph[name] = {m for m in found if m and m != name}
    return graph


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_layers_import_one_way():
    """A lower layer never imports a higher one:
    agents <- memory <- sandbox <- llm <- domains <- actions <- roles <- workflows <- cli."""
    upward = []
    for module, imports in _import_graph().items():
        here = _layer(module)
        for target in imports:
            there = _layer(target)
            if here is not None and there is not None and there > here:
                upward.append(f"{module} imports {target}")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycles():
    """No two modules import each other, directly or through others (Tarjan's SCCs)."""
    graph = _import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # recursion depth is bounded by the module count (~150)
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_old_module_paths_still_import_with_a_warning():
    """The 0.1 paths a user may rely on keep working for one release (same module object)."""
    code = (
        "import warnings, importlib\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        "import mgpt._aliases as a\n"
        "bad = []\n"
        "for old, new in a.MOVED.items():\n"
        "    try:\n"
        "        importlib.import_module(old)\n"
        "        bad.append(old + ': no warning')\n"
        "    except DeprecationWarning as w:\n"
        "        assert new in str(w)\n"
        "warnings.simplefilter('ignore', DeprecationWarning)\n"
        "for old, new in a.MOVED.items():\n"
        "    if importlib.import_module(old) is not importlib.import_module(new): bad.append(old)\n"
        "from mgpt.llm.testing import TestModel\n"
        "from mgpt.roles import Role\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


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

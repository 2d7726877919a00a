"""No private name (``_x``) is used outside its module, in the package or the benchmarks:
neither imported (``from mgpt.a import _x``) nor reached through a module
(``a._x`` after ``from mgpt import a``). A helper another module needs is public, with a
docstring. Tests may still use privates of the module they test."""

from __future__ import annotations

import ast
from pathlib import Path

from testpaths import ROOT

SKIP = {"tests", "build", "dist", "docs"}
#: Package-internal infrastructure modules every package ``__init__`` imports from.
INFRASTRUCTURE = {"mgpt._lazy", "mgpt._aliases"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["mgpt", *parts])


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _uses(path: Path, here: str) -> list[str]:
    """``file:line: what`` for each private name module ``here`` (the source in ``path``)
    takes from another module."""
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    modules: dict[str, str] = {}  # local name -> mgpt module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            if not base.startswith("mgpt") or base in INFRASTRUCTURE:
                continue
            for alias in node.names:
                if _private(alias.name) and base != here:
                    found.append(f"{path.name}:{node.lineno}: from {base} import {alias.name}")
                if _is_module(f"{base}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mgpt.") and alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name):
            module = modules.get(node.value.id)
            if module is not None and module != here:
                found.append(f"{path.name}:{node.lineno}: {module}.{node.attr}")
    return found


def test_no_private_name_is_used_outside_its_module():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if SKIP & set(rel.parts) or any(p.startswith(".") for p in rel.parts):
            continue
        found += [f"{rel.parent}/{use}" for use in _uses(path, _module_name(path))]
    assert not found, "private names used outside their module (make them public, or move the helper):\n" + "\n".join(found)


def test_the_check_finds_both_forms(tmp_path):
    """The check itself can fail: a module importing another's private, and one reaching it."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from mgpt.llm.local.sampling import _ALIASES\nfrom mgpt.llm.local import sampling\nsampling._OFF\n"
        "from . import _helper\nfrom .probe import _mine\n",
        encoding="utf-8",
    )
    found = _uses(probe, "mgpt.llm.local.probe")
    assert sorted(f.split(": ", 1)[1] for f in found) == [  # its own _mine is fine
        "from mgpt.llm.local import _helper", "from mgpt.llm.local.sampling import _ALIASES",
        "mgpt.llm.local.sampling._OFF",
    ]

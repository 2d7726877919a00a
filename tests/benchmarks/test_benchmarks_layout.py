"""benchmarks/: every script imports the package, never another script, and is listed in
benchmarks/README.md; no test imports a script (tests run them as a user does)."""

from __future__ import annotations

import ast
import re

from testpaths import BENCH, TESTS

SCRIPTS = sorted(p for p in BENCH.iterdir() if p.suffix in (".py", ".sh"))
NAMES = {p.stem for p in SCRIPTS if p.suffix == ".py"}


def _imported(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def _edits_sys_path(path) -> bool:
    return bool(re.search(r"sys\.path\.(insert|append)", path.read_text(encoding="utf-8")))


def _puts_benchmarks_on_sys_path(path) -> bool:
    """A test may put its own folder on sys.path (a subprocess importing the test module);
    never the benchmarks folder."""
    return bool(re.search(r"sys\.path\.(insert|append)\([^)\n]*(BENCH|benchmarks)", path.read_text(encoding="utf-8")))


def test_scripts_import_the_package_never_another_script():
    bad = {p.name: sorted(_imported(p) & NAMES) for p in SCRIPTS if p.suffix == ".py" and _imported(p) & NAMES}
    assert not bad, f"scripts importing other scripts (move the shared code into the package): {bad}"
    assert not [p.name for p in SCRIPTS if _edits_sys_path(p)], "a script edits sys.path"


def test_no_test_imports_a_script():
    bad = [str(p.relative_to(TESTS)) for p in TESTS.rglob("*.py")
           if _imported(p) & NAMES or (p.name != "test_benchmarks_layout.py" and _puts_benchmarks_on_sys_path(p))]
    assert not bad, f"tests importing benchmark scripts (run them as a subprocess, or test the package): {bad}"


def test_the_readme_lists_every_script():
    readme = (BENCH / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([\w.]+)` \|", readme, re.M))
    assert listed == {p.name for p in SCRIPTS}

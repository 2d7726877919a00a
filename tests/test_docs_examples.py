"""The docs pages' Python examples marked ``<!-- docs-example -->`` run as written.

Each ``print(...)`` line that ends in a ``# comment`` says what it prints; the example's
output must be exactly those lines, in order. (The README's example has its own test,
tests/test_readme.py.)
"""

import re

import pytest
from testpaths import ROOT

from mgpt.llm import models

BLOCK = re.compile(r"<!-- docs-example -->\n```python\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)
EXAMPLES = [
    pytest.param(code, id=f"{page.name}#{n}")
    for page in sorted((ROOT / "docs").rglob("*.md"))
    for n, code in enumerate(BLOCK.findall(page.read_text()), 1)
]


def expected_output(code: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^print\(.*\)\s+#\s*(.+)$", code, re.MULTILINE)]


def test_the_docs_have_examples():
    assert any(p.id.startswith("models.md#") for p in EXAMPLES), "the backend example lost its marker"


@pytest.mark.parametrize("code", EXAMPLES)
def test_docs_example_runs(code, capsys, monkeypatch):
    monkeypatch.setattr(models, "BACKENDS", dict(models.BACKENDS))  # an example may register one
    expected = expected_output(code)
    assert expected, "say what the example prints: end its print lines with '# <output>'"
    exec(compile(code, "docs-example", "exec"), {"__name__": "docs_example"})
    assert capsys.readouterr().out.splitlines() == expected

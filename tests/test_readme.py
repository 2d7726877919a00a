"""The README's Python example runs as written."""

import re
from pathlib import Path
from testpaths import ROOT

README = ROOT / "README.md"


def test_readme_example_runs(capsys):
    text = README.read_text()
    block = re.search(r"<!-- readme-example -->\n```python\n(.*?)^```\s*$", text, re.DOTALL | re.MULTILINE)
    assert block, "the README lost its tested example"
    namespace = {"__name__": "readme_example"}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    out = capsys.readouterr().out.splitlines()
    assert out == ["idle", "quietly vivid 8"]
    review = namespace["review"]
    assert type(review).__name__ == "Review" and review.score == 8

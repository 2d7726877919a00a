"""docs/tools.md's example runs as written and prints what the page says."""

import re

import pytest
from testpaths import ROOT

DOC = ROOT / "docs" / "tools.md"


@pytest.mark.slow
def test_the_tools_page_example_runs(capsys):
    pytest.importorskip("mcp_server_time")
    text = DOC.read_text()
    block = re.search(r"<!-- tools-example -->\n```python\n(.*?)^```\s*$", text, re.DOTALL | re.MULTILINE)
    assert block, "docs/tools.md lost its tested example"
    exec(compile(block.group(1), "docs/tools.md", "exec"), {"__name__": "tools_example"})
    printed = capsys.readouterr().out.splitlines()
    shown = re.search(r"^prints\n\n((?:    .*\n)+)", text[block.end():], re.MULTILINE)
    assert printed == [line[4:] for line in shown.group(1).splitlines()]

"""How generated files are laid out: unique test files, QA's conftest and fixtures,
non-Python files asked for by kind and kept whole, an engineer's README kept."""

import asyncio

import pytest

from mgpt.actions.base import ActionContext
from mgpt.actions import coding
from mgpt.actions.coding import WriteCode, WriteTests, file_kind
from mgpt.actions.documents import PRD, CodeBundle, FileSpec, SystemDesign, Task, TaskList
from mgpt.llm.parsing import extract_file
from mgpt.actions.planning import WriteDesign, WritePRD, WriteTasks
from mgpt.agents import Message
from mgpt.llm import LLM
from mgpt.llm.backends.testing import TestModel


def test_test_files_are_unique_per_module_path():
    names = coding.tests_for_modules(["pkg/cli.py", "pkg/__main__.py", "pkg/money.py", "a/util.py", "b/util.py"])
    assert names == {
        "pkg/cli.py": "tests/test_pkg_cli.py",
        "pkg/__main__.py": "tests/test_pkg_main.py",
        "pkg/money.py": "tests/test_money.py",
        "a/util.py": "tests/test_a_util.py",
        "b/util.py": "tests/test_b_util.py",
    }
    assert len(set(names.values())) == len(names)
    # Without a clash the names stay what they were (recorded fixes name these files).
    assert coding.tests_for_modules(["pkg/__main__.py", "pkg/store.py"]) == {
        "pkg/__main__.py": "tests/test_cli.py", "pkg/store.py": "tests/test_store.py"}


README = """# Tool

Install and run:

```bash
pip install .
python -m tool --help
```

That is all.
"""


def test_a_file_with_its_own_fences_is_not_cut_short():
    answer = f"Here is the README:\n```markdown\n{README}```\nAnything else?"
    assert extract_file(answer, "markdown") == README
    assert extract_file(f"````markdown\n{README}````\n", "markdown") == README
    assert extract_file("```json\n{\"a\": 1}", "json") == '{"a": 1}\n'  # cut-off answer


def test_a_fix_answer_keeps_a_readme_with_its_own_fences_whole():
    from mgpt.llm.parsing import extract_files

    answer = f"Fixed.\n\n## README.md\n```markdown\n{README}```\n\n## pkg/a.py\n```python\na = 1\n```\n"
    assert extract_files(answer) == [("README.md", README), ("pkg/a.py", "a = 1\n")]
    assert extract_files("## pkg/a.py\n```python\na = 1```") == [("pkg/a.py", "a = 1\n")]


def test_kinds():
    assert file_kind("pkg/x.py")[1] == "python"
    assert file_kind("README.md") == ("Markdown document", "markdown")
    assert file_kind("requirements.txt")[0].startswith("pip requirements")
    assert file_kind("pkg/templates/page.html")[1] == "html"


def _design_ctx(ws, paths):
    design = SystemDesign(implementation_approach="small", files=[FileSpec(path=p, purpose=f"the {p}") for p in paths],
                          class_diagram="classDiagram", sequence_diagram="sequenceDiagram")
    tasks = TaskList(tasks=[Task(path=p, description=f"write {p}") for p in paths])
    ctx = ActionContext(role_name="Engineer", workspace=ws,
                        news=[Message(content="t", payload=tasks, cause_by=WriteTasks)])
    asyncio.run(ctx.memory.add(Message(content="d", payload=design, cause_by=WriteDesign)))
    return ctx


def test_non_python_files_get_a_prompt_for_their_kind(tmp_path):
    model = TestModel([
        "```python\nVALUE = 1\n```",
        f"```markdown\n{README}```",
        '```json\n{"units": ["m", "km"]}\n```',
    ])
    ctx = _design_ctx(tmp_path, ["pkg/__init__.py", "README.md", "pkg/data/units.json"])
    bundle = asyncio.run(WriteCode().bind(LLM(model, role="Engineer")).run(ctx))
    assert bundle.files == ["pkg/__init__.py", "README.md", "pkg/data/units.json"]
    assert (tmp_path / "README.md").read_text() == README
    assert (tmp_path / "pkg/data/units.json").read_text() == '{"units": ["m", "km"]}\n'
    prompts = [messages[-1].content for _, messages in model.requests]
    assert "```python code block" in prompts[0]
    assert "a Markdown document" in prompts[1] and "```markdown" in prompts[1] and "```python" not in prompts[1]
    assert "a JSON file" in prompts[2]


def test_qa_may_add_conftest_and_fixture_files(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/money.py").write_text("def parse(x):\n    return 1\n")
    answer = (
        "```python\ndef test_parse(sample):\n    assert sample\n```\n\n"
        "## tests/conftest.py\n```python\nimport pytest\n\n@pytest.fixture\ndef sample():\n    return 1\n```\n"
        "tests/data/prices.csv\n```csv\nname,price\napple,1\n```\n"
        "## ../evil.py\n```python\nboom\n```\n"
        "## tests/test_other.py\n```python\nclobbered = True\n```\n"
    )
    prd = PRD.model_construct(project_name="pkg", summary="s", acceptance_criteria=["parses"])
    ctx = ActionContext(role_name="QaEngineer", workspace=tmp_path,
                        news=[Message(content="c", payload=CodeBundle(files=["pkg/money.py"]), cause_by=WriteCode)])
    asyncio.run(ctx.memory.add(Message(content="p", payload=prd, cause_by=WritePRD)))
    bundle = asyncio.run(WriteTests().bind(LLM(TestModel([answer]), role="QaEngineer")).run(ctx))
    assert bundle.files == ["tests/test_money.py", "tests/conftest.py", "tests/data/prices.csv"]
    assert "def sample" in (tmp_path / "tests/conftest.py").read_text()
    assert (tmp_path / "tests/data/prices.csv").read_text() == "name,price\napple,1\n"
    assert not (tmp_path.parent / "evil.py").exists()
    assert not (tmp_path / "tests/test_other.py").exists()  # another module's tests are not QA's to add here


def test_an_engineer_written_readme_is_kept(tmp_path):
    from mgpt.sandbox.workspace import Workspace
    from mgpt.workflows.software_company import write_project_readme

    prd = PRD(project_name="pkg", summary="A tool.", goals=["g"], user_stories=["As a user, I want x so that y"],
              requirements=[{"id": "R1", "text": "do x"}], acceptance_criteria=["x works"])
    design = SystemDesign(implementation_approach="a", files=[FileSpec(path="pkg/__init__.py", purpose="p")],
                          class_diagram="classDiagram", sequence_diagram="sequenceDiagram")
    for name, engineer_readme in (("plain", None), ("own", "readme.md")):
        ws = tmp_path / name
        (ws / "docs").mkdir(parents=True)
        (ws / "docs/prd.json").write_text(prd.model_dump_json())
        (ws / "docs/design.json").write_text(design.model_dump_json())
        if engineer_readme:
            (ws / engineer_readme).write_text("engineer's\n")
        wrote = write_project_readme(Workspace(ws))
        tops = sorted(p.name for p in ws.iterdir() if p.is_file())
        if engineer_readme:
            assert not wrote and tops == ["readme.md"]
            assert (ws / "readme.md").read_text() == "engineer's\n"
        else:
            assert wrote and tops == ["README.md"] and "A tool." in (ws / "README.md").read_text()


def test_object_addresses_in_test_output_are_normalised(tmp_path):
    from mgpt.sandbox.isolation import normalize_output

    raw = ("E   assert <dict_valueiterator object at 0x7f33dcde57b0> == [1]\n"
           "E   assert <generator ob...x7f8ab5f22b20> == [Loan(loan_id...eturned=None)]\n"
           "x = 0xff and mask 0xFFFF\n")
    out = normalize_output(raw, tmp_path)
    assert "0x7f33" not in out and "x7f8ab" not in out
    assert "<dict_valueiterator object at 0x…>" in out and "<generator ob...…>" in out
    assert "0xff and mask 0xFFFF" in out  # short hex numbers are values, not addresses
    assert normalize_output(raw.replace("7f33dcde57b0", "7f0011223344"), tmp_path) == out

"""Grammars the validators cannot fail: string patterns with JSON Schema's meaning, the
design's and the task plan's schemas, and the lossless repairs beside them."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import BaseModel, Field, ValidationError

torch = pytest.importorskip("torch", reason="local models need the [train] extra")
xgr = pytest.importorskip("xgrammar", reason="constrained decoding needs the [local] extra")

from mgpt.actions.documents import SOURCE_PATH, FileSpec, SystemDesign, TaskList  # noqa: E402
from mgpt.llm import OutputFormat  # noqa: E402
from mgpt.llm.local.constrained import compile_schema, json_schema_grammar, pattern_rule  # noqa: E402
from mgpt.llm.local.testing import make_tiny_checkpoint  # noqa: E402
from mgpt.llm.local.generate import generate_text, load_model  # noqa: E402

PROMPT = [{"role": "user", "content": "Design the word counter."}]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    folder = make_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), chat_template=True, n_positions=1024)
    return load_model(folder, device="cpu")


def accepts(grammar, text: str) -> bool:
    matcher = xgr.GrammarMatcher(grammar.compiled)
    return matcher.accept_string(text) and matcher.is_completed()


# -- the pattern translation ------------------------------------------------------------------


def test_pattern_rule_reads_anchors_as_json_schema_does():
    free = pattern_rule("", 160)  # free JSON text: plain runs between escapes
    assert free == '[^\\0-\\x1f\\"\\\\]{0,80} mgpt_jpiece{0,2}'
    assert pattern_rule("^abc", 160) == f'(Regex("abc", json_string=true) {free})'
    # An unanchored start is read as anchored: narrower than a search, so still sound.
    assert pattern_rule("abc$", 160) == '(Regex("abc", json_string=true))'
    assert pattern_rule("^[a-z]+$") == '(Regex("[a-z]+", json_string=true))'
    assert pattern_rule("a|b", 160) == f'(Regex("(?:a|b)", json_string=true) {free})'
    assert pattern_rule("[$^]x", 160) == f'(Regex("[$^]x", json_string=true) {free})'
    assert pattern_rule(r"a\$", 160) == f'(Regex("a\\\\$", json_string=true) {free})'
    assert pattern_rule("^$") == '""' and pattern_rule("$") == '""'
    # Anchors inside, or bound to one branch: left to xgrammar's (narrower) full match.
    for pattern in ("^a|b", "a$|b", "a^b", "(a$)", "[a", "(a"):
        assert pattern_rule(pattern) is None, pattern


def test_a_schema_without_patterns_compiles_as_before():
    schema = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 5}}, "required": ["a"]}
    assert json_schema_grammar(schema) is None


def test_prefix_pattern_allows_several_lines_and_nothing_else(loaded):
    schema = {
        "type": "object",
        "properties": {"d": {"type": "string", "pattern": "^classDiagram"}, "n": {"type": "string", "pattern": "^[a-z]+$"}},
        "required": ["d", "n"],
    }
    grammar = compile_schema(loaded.tokenizer, schema)
    good = ['{"d":"classDiagram","n":"ab"}', '{"d":"classDiagram\\n  class A\\n  A : +run()","n":"x"}',
            '{"d":"classDiagram \\"q\\" \\\\ x","n":"x"}']
    bad = ['{"d":"xclassDiagram","n":"ab"}', '{"d":" classDiagram","n":"ab"}', '{"d":"classDiagram","n":"Ab"}',
           '{"d":"classDiagram","n":""}', '{"d":"classDiagram\\u0000","n":"a"}', '{"d":"classDiagram\n","n":"a"}']
    assert [accepts(grammar, t) for t in good] == [True] * len(good)
    assert [accepts(grammar, t) for t in bad] == [False] * len(bad)
    for text in good:
        value = json.loads(text)
        assert re.search("^classDiagram", value["d"]) and re.search("^[a-z]+$", value["n"])


class Pydantic(BaseModel):
    """pydantic's own ``pattern`` is a search too: the grammar agrees with its validator."""

    title: str = Field(pattern=r"^Plan:")
    code: str = Field(pattern=r"[0-9]{3}")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pydantic_patterns_decode_to_values_pydantic_accepts(loaded, seed):
    out = generate_text(loaded, PROMPT, max_new_tokens=300, temperature=1.0, seed=seed, output=OutputFormat.from_model(Pydantic))
    Pydantic.model_validate_json(out.text)


# -- the design and the task plan ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path, ok",
    [("pkg/__init__.py", True), ("pkg/core.py", True), ("main.py", True), ("requirements.txt", True),
     ("testing/x.py", True), ("pkg/tests/x.py", True), ("tests.py", True), ("a/b/c.md", True), ("te.py", True),
     ("tests/x.py", False), ("pkg/test_x.py", False), ("test_main.py", False), ("python", False),
     ("../x.py", False), ("/abs.py", False), ("pkg/.x.py", False), ("pkg//x.py", False),
     ("a" * 40 + "/" + "b" * 40 + ".py", True), ("a" * 41 + "/b.py", False), ("p/" + "b" * 41 + ".py", False)],
)
def test_source_path_pattern(loaded, path, ok):
    assert bool(re.search(SOURCE_PATH, path)) is ok
    grammar = compile_schema(loaded.tokenizer, FileSpec.model_json_schema())
    assert accepts(grammar, json.dumps({"path": path, "purpose": "p"}, separators=(",", ":"))) is ok


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [0.0, 1.0, 1.5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_design_decoded_under_its_grammar_always_passes_the_validators(loaded, seed, temperature):
    out = generate_text(
        loaded, PROMPT, max_new_tokens=700, temperature=temperature, seed=seed,
        output=OutputFormat.from_model(SystemDesign),
    )
    design = SystemDesign.model_validate_json(out.text)  # the validators included
    assert design.class_diagram.startswith("classDiagram") and design.sequence_diagram.startswith("sequenceDiagram")
    paths = [f.path for f in design.files]
    assert paths and len(set(paths)) == len(paths)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_task_plan_decoded_under_its_grammar_is_always_a_valid_task_list(loaded, seed):
    paths = ["wc/__init__.py", "wc/core.py", "wc/__main__.py"]
    out = generate_text(
        loaded, PROMPT, max_new_tokens=400, temperature=1.0, seed=seed,
        output=OutputFormat(kind="json_schema", name="TaskList", json_schema=TaskList.plan_schema(paths)),
    )
    tasks = TaskList.from_plan(json.loads(out.text), paths)
    assert [t.path for t in tasks.tasks] == paths  # every file once; earlier deps keep the order


# -- the repairs: lossless, and only those ----------------------------------------------------


def test_a_repeated_design_file_is_one_file_with_both_purposes():
    design = SystemDesign(
        implementation_approach="x",
        files=[FileSpec(path="a.py", purpose="CLI"), FileSpec(path="b.py", purpose="core"),
               FileSpec(path="a.py", purpose="entry point"), FileSpec(path="a.py", purpose="CLI")],
        class_diagram="```mermaid\nclassDiagram\n```",
        sequence_diagram="sequenceDiagram",
    )
    assert [(f.path, f.purpose) for f in design.files] == [("a.py", "CLI; entry point"), ("b.py", "core")]
    assert design.class_diagram == "classDiagram"  # a fenced diagram is still taken
    with pytest.raises(ValidationError, match="QA writes the tests"):
        SystemDesign(implementation_approach="x", files=[FileSpec(path="tests/t.py", purpose="")],
                     class_diagram="classDiagram", sequence_diagram="sequenceDiagram")
    with pytest.raises(ValidationError, match="starting with 'sequenceDiagram'"):
        SystemDesign(implementation_approach="x", files=[FileSpec(path="a.py", purpose="")],
                     class_diagram="classDiagram", sequence_diagram="graph TD")


def test_task_list_is_put_in_order_and_merged_but_cycles_and_unknown_files_are_refused():
    tasks = TaskList.model_validate({"tasks": [
        {"path": "b.py", "description": "uses a", "depends_on": ["a.py", "b.py"]},
        {"path": "a.py", "description": "base"},
        {"path": "b.py", "description": "and more", "depends_on": ["a.py"]},
        {"path": "c.py", "description": "alone"},
    ]})
    assert [(t.path, t.description, t.depends_on) for t in tasks.tasks] == [
        ("a.py", "base", []), ("b.py", "uses a; and more", ["a.py"]), ("c.py", "alone", [])]
    with pytest.raises(ValidationError, match="cycle"):
        TaskList.model_validate({"tasks": [{"path": "a.py", "description": "", "depends_on": ["b.py"]},
                                           {"path": "b.py", "description": "", "depends_on": ["a.py"]}]})
    with pytest.raises(ValidationError, match="which no task writes"):
        TaskList.model_validate({"tasks": [{"path": "a.py", "description": "", "depends_on": ["z.py"]}]})


def test_from_plan_takes_the_keyed_plan_or_a_plain_task_list():
    paths = ["p/__init__.py", "p/core.py"]
    plan = {"p/core.py": {"description": "core", "depends_on": ["p/__init__.py"]},
            "p/__init__.py": {"description": "exports", "depends_on": []}}
    assert [t.path for t in TaskList.from_plan(plan, paths).tasks] == paths
    plain = {"tasks": [{"path": "p/core.py", "description": "core"}]}
    assert [t.path for t in TaskList.from_plan(plain, paths).tasks] == ["p/core.py"]
    with pytest.raises(ValueError, match="not a file of the design"):
        TaskList.from_plan({"p/other.py": {"description": "", "depends_on": []}}, paths)
    with pytest.raises(ValueError, match="one entry per file"):
        TaskList.from_plan([], paths)


@pytest.mark.parametrize(
    "path, ok",
    [("wc/__init__.py", True), ("wc/sub/core.py", True), ("requirements.txt", True), ("wc/test_core.py", False),
     ("wc/wc/wc/x.py", False), ("wc/sub/test_x.py", False),
     ("wc/notes.md", False), ("other/x.py", False), ("wcx/x.py", False), ("core.py", False), ("tests/x.py", False)],
)
def test_package_schema_holds_paths_to_the_package(loaded, path, ok):
    schema = SystemDesign.package_schema("wc")
    pattern = schema["$defs"]["FileSpec"]["properties"]["path"]["pattern"]
    assert bool(re.search(pattern, path)) is ok
    if ok:
        assert re.search(SOURCE_PATH, path)  # narrower than the model's own schema
    text = json.dumps({"implementation_approach": "x", "files": [{"path": path, "purpose": "p"}],
                       "class_diagram": "classDiagram", "sequence_diagram": "sequenceDiagram", "anything_unclear": ""},
                      separators=(",", ":"))
    assert accepts(compile_schema(loaded.tokenizer, schema), text) is ok
    with pytest.raises(ValueError, match="not a Python package name"):
        SystemDesign.package_schema("my-app")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_package_design_decoded_under_its_grammar_passes_the_validators(loaded, seed):
    out = generate_text(
        loaded, PROMPT, max_new_tokens=700, temperature=1.0, seed=seed,
        output=OutputFormat(kind="json_schema", name="SystemDesign", json_schema=SystemDesign.package_schema("wc")),
    )
    design = SystemDesign.model_validate_json(out.text)
    assert all(f.path.startswith("wc/") or f.path == "requirements.txt" for f in design.files)


def test_files_format_paths_are_paths_the_parser_reads(loaded):
    from mgpt.llm.local.constrained import compile_output

    grammar = compile_output(loaded.tokenizer, OutputFormat.files())
    block = "\n```python\nx = 1\n```\n"
    assert accepts(grammar, "## pkg/core.py" + block) and accepts(grammar, "## _x.py" + block)
    assert not accepts(grammar, "## 1.1.1.x" + block)  # extract_files would find no path in it
    held = compile_output(loaded.tokenizer, OutputFormat.files(paths=["wc/core.py", "tests/test_core.py"]))
    assert accepts(held, "## wc/core.py" + block + "\n## tests/test_core.py" + block)
    assert not accepts(held, "## wc/other.py" + block)
    with pytest.raises(ValueError, match="single lines"):
        compile_output(loaded.tokenizer, OutputFormat.files(paths=["a.py\nb.py"]))


@pytest.mark.slow
def test_mgpt_constrained_0_turns_the_grammar_off_for_local_models(tmp_path):
    import asyncio

    from mgpt.llm import ChatMessage
    from mgpt.llm.errors import ModelConfigError
    from mgpt.llm.models import infer_model

    folder = make_tiny_checkpoint(tmp_path / "tiny", chat_template=True, n_positions=256)
    assert infer_model(f"hf:{folder}", env={}).constrained is True
    free = infer_model(f"hf:{folder}", env={"MGPT_CONSTRAINED": "0"})
    assert free.constrained is False
    with pytest.raises(ModelConfigError, match="MGPT_CONSTRAINED"):
        infer_model(f"hf:{folder}", env={"MGPT_CONSTRAINED": "maybe"})
    free.max_new_tokens = 30
    output = OutputFormat.from_model(TaskList)
    text = asyncio.run(free.complete([ChatMessage(role="user", content="plan")], output=output)).text
    assert not text.startswith('{"tasks":[')  # a random model, unconstrained, writes no such JSON


def test_design_and_tasks_ask_for_their_narrowed_schemas():
    """WriteDesign asks for the package schema and WriteTasks for the plan keyed by the
    design's paths; the replies are still validated by SystemDesign and TaskList."""
    import asyncio

    from mgpt.actions.base import ActionContext
    from mgpt.actions.documents import PRD, Requirement
    from mgpt.actions.planning import WriteDesign, WritePRD, WriteTasks
    from mgpt.agents import Message
    from mgpt.llm import LLM
    from mgpt.llm.backends.testing import FunctionModel

    prd = PRD(project_name="wc", summary="s", goals=["g"], user_stories=["u"],
              requirements=[Requirement(id="R1", text="t")], acceptance_criteria=["a"])
    design = SystemDesign(implementation_approach="x", files=[FileSpec(path="wc/__init__.py", purpose="i"),
                                                              FileSpec(path="wc/core.py", purpose="c")],
                          class_diagram="classDiagram", sequence_diagram="sequenceDiagram")
    asked: list[OutputFormat] = []

    def answer(messages, context, output=None):
        asked.append(output)
        if context.action == "WriteDesign":
            return design.model_dump_json()
        return json.dumps({"wc/core.py": {"description": "count", "depends_on": ["wc/__init__.py"]},
                           "wc/__init__.py": {"description": "exports", "depends_on": []}})

    model = FunctionModel(answer)
    ctx = ActionContext(role_name="Architect", news=[Message(content="p", payload=prd, cause_by=WritePRD)])
    got = asyncio.run(WriteDesign().bind(LLM(model, role="Architect")).run(ctx))
    assert got == design
    assert asked[0].name == "SystemDesign" and asked[0].json_schema == SystemDesign.package_schema("wc")
    ctx = ActionContext(role_name="ProjectManager", news=[Message(content="d", payload=design, cause_by=WriteDesign)])
    tasks = asyncio.run(WriteTasks().bind(LLM(model, role="ProjectManager")).run(ctx))
    assert [t.path for t in tasks.tasks] == ["wc/__init__.py", "wc/core.py"]
    assert asked[1].name == "TaskList" and asked[1].json_schema == TaskList.plan_schema(["wc/__init__.py", "wc/core.py"])

"""Constrained decoding on local models: a tiny random model's answer always has the shape."""

from __future__ import annotations

import asyncio
import json
from typing import Literal, Optional

import pytest
from pydantic import BaseModel, Field

torch = pytest.importorskip("torch", reason="local models need the [train] extra")
pytest.importorskip("xgrammar", reason="constrained decoding needs the [local] extra")

from mgpt.actions import Action, ActionContext, extract_code, extract_files  # noqa: E402
from mgpt.llm.parsing import fenced_blocks  # noqa: E402
from mgpt.agents.runlog import Event  # noqa: E402
from mgpt.llm import LLM, ChatMessage, OutputFormat  # noqa: E402
from mgpt.llm.local.constrained import (  # noqa: E402
    ConstraintError,
    _unpack,
    bounded_schema,
    compile_output,
    compile_schema,
)
from mgpt.llm.local.testing import make_tiny_checkpoint  # noqa: E402
from mgpt.llm.local.generate import generate_text, load_model  # noqa: E402
from mgpt.llm.local.model import LocalModel  # noqa: E402
from testpaths import BENCH

PROMPT = [{"role": "user", "content": "Plan the word counter."}]


class Step(BaseModel):
    name: str
    minutes: int
    kind: Literal["code", "test", "docs"] = "code"


class Plan(BaseModel):
    title: str = Field(description="a short title")
    steps: list[Step]
    tags: list[str]
    risky: bool
    notes: str = ""


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    # A long context: the grammar's shortest answer is ~100 tokens of this 320-token vocabulary.
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), chat_template=True, n_positions=1024)


@pytest.fixture(scope="module")
def loaded(checkpoint):
    return load_model(checkpoint, device="cpu")


@pytest.mark.parametrize("temperature, top_p", [(0.0, None), (1.0, None), (1.3, 0.9)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_schema_decoding_always_parses(loaded, seed, temperature, top_p):
    out = generate_text(
        loaded, PROMPT, max_new_tokens=400, temperature=temperature, top_p=top_p, seed=seed,
        output=OutputFormat.from_model(Plan),
    )
    plan = Plan.model_validate_json(out.text)  # strict JSON, every field typed
    assert out.finish_reason == "stop"
    assert len(plan.title) <= 1000 and len(plan.steps) <= 16


class Inner(BaseModel):
    a: Optional[int] = None
    b: float


class Misc(BaseModel):
    x: Optional[str]
    y: dict[str, int]
    z: list[list[str]]
    w: Inner
    u: list[Inner] = []
    v: bool | None = None


@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("seed", [1, 2])
def test_optional_float_dict_and_nested_types_parse(loaded, seed, temperature):
    out = generate_text(
        loaded, PROMPT, max_new_tokens=300, temperature=temperature, seed=seed, output=OutputFormat.from_model(Misc)
    )
    Misc.model_validate_json(out.text)


def test_the_answer_is_closed_within_a_tight_budget(loaded):
    grammar = compile_output(loaded.tokenizer, OutputFormat.from_model(Plan))
    budget = grammar.min_tokens + 3  # closing starts at once: only just room for the document
    for seed in range(3):
        out = generate_text(
            loaded, PROMPT, max_new_tokens=budget, temperature=1.0, seed=seed, output=OutputFormat.from_model(Plan)
        )
        Plan.model_validate_json(out.text)
        assert out.completion_tokens <= budget


def test_a_budget_below_the_shortest_answer_is_a_clear_error(loaded):
    grammar = compile_output(loaded.tokenizer, OutputFormat.from_model(Plan))
    with pytest.raises(ConstraintError, match="raise max_new_tokens"):
        generate_text(loaded, PROMPT, max_new_tokens=grammar.min_tokens - 1, output=OutputFormat.from_model(Plan))


@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_code_block_shape_is_exactly_one_fenced_block(loaded, seed, temperature):
    out = generate_text(
        loaded, PROMPT, max_new_tokens=60, temperature=temperature, seed=seed, output=OutputFormat.code_block()
    )
    assert out.text.startswith("```python\n") and out.text.endswith("\n```")
    assert out.text.count("```") == 2 and len(fenced_blocks(out.text)) == 1
    assert extract_code(out.text) == out.text[len("```python\n") : -len("```")].rstrip() + "\n"


@pytest.mark.parametrize("seed", [0, 1])
def test_files_shape_is_path_lines_and_blocks(loaded, seed):
    out = generate_text(loaded, PROMPT, max_new_tokens=120, temperature=1.0, seed=seed, output=OutputFormat.files())
    files = extract_files(out.text)
    assert files and len(files) == out.text.count("\n## ") + 1
    assert all("." in path for path, _ in files)


def test_streamed_constrained_answer_joins_to_the_whole(checkpoint):
    model = LocalModel(checkpoint, max_new_tokens=300, temperature=1.0, seed=3)
    messages = [ChatMessage(role="user", content="plan")]
    output = OutputFormat.from_model(Plan)

    async def collect():
        pieces, final = [], None
        async for chunk in model.stream(messages, output=output):
            pieces.append(chunk.delta)
            final = chunk.completion or final
        return "".join(pieces), final

    streamed, final = asyncio.run(collect())
    assert streamed == final.text
    Plan.model_validate_json(streamed)


def test_matcher_drives_a_plain_decode_loop(loaded):
    """The API a server's own batched loop uses: no transformers generate involved."""
    tokenizer = loaded.tokenizer
    grammar = compile_schema(tokenizer, Plan.model_json_schema())
    assert compile_schema(tokenizer, Plan.model_json_schema()) is grammar  # cached
    gen = torch.Generator().manual_seed(0)
    for budget in (300, grammar.reserve):
        matcher = grammar.matcher()
        for left in range(budget, 0, -1):
            if matcher.is_finished():
                break
            logits = torch.randn(len(tokenizer), generator=gen)
            matcher.mask_logits(logits, remaining=left)
            assert torch.isfinite(logits).any()
            matcher.advance(int(torch.argmax(logits)))
        assert matcher.is_finished()
        Plan.model_validate_json(tokenizer.decode(matcher.tokens, skip_special_tokens=True))


def test_advance_refuses_a_token_the_grammar_forbids(loaded):
    matcher = compile_output(loaded.tokenizer, OutputFormat.from_model(Plan)).matcher()
    allowed = matcher.allowed_mask()
    forbidden = int((~allowed).nonzero()[0])
    with pytest.raises(ConstraintError, match="does not fit"):
        matcher.advance(forbidden)


def test_mask_is_applied_on_the_logits_device_and_dtype(loaded):
    matcher = compile_output(loaded.tokenizer, OutputFormat.code_block()).matcher()
    vocab = matcher.grammar.vocab_size
    logits = torch.zeros(1, vocab + 7, dtype=torch.bfloat16)  # a padded embedding is wider
    matcher.mask_logits(logits)
    assert logits.dtype == torch.bfloat16 and torch.isinf(logits[0, vocab:]).all()
    assert torch.equal(torch.isfinite(logits[0, :vocab]), matcher.allowed_mask())
    # The unpacking used off the CPU (plain torch bit shifts) agrees with the CPU one.
    bitmask = torch.randint(-(2**31), 2**31 - 1, (1, 11), dtype=torch.int32)
    shifts = torch.arange(32, dtype=torch.int32)
    expected = ((bitmask[0].unsqueeze(-1) >> shifts) & 1).flatten()[:340].bool()
    assert torch.equal(_unpack(bitmask, 340, "cpu"), expected)
    if torch.cuda.is_available():  # exercised on a GPU machine
        on_gpu = torch.zeros(1, vocab, device="cuda")
        matcher.mask_logits(on_gpu)
        assert on_gpu.device.type == "cuda"
        assert torch.equal(torch.isfinite(on_gpu[0]).cpu(), matcher.allowed_mask())


def test_json_answers_never_hold_raw_control_characters(loaded):
    grammar = compile_output(loaded.tokenizer, OutputFormat.from_model(Plan))
    matcher = grammar.matcher()
    for token in loaded.tokenizer.encode('{"title":"'):
        matcher.advance(token)
    allowed = matcher.allowed_mask().nonzero().flatten().tolist()
    assert allowed and not any(any(ord(c) < 32 for c in grammar.vocab.texts[t]) for t in allowed)


def test_bounded_schema_adds_bounds_and_keeps_given_ones():
    class Given(BaseModel):
        short: str = Field(max_length=5)
        free: str
        tags: list[str] = Field(max_length=2)
        many: list[int]
        pick: Literal["a", "b"]

    schema = bounded_schema(Given.model_json_schema(), max_string=50, max_items=4)
    props = schema["properties"]
    assert props["short"]["maxLength"] == 5 and props["free"]["maxLength"] == 50
    assert props["tags"]["maxItems"] == 2 and props["many"]["maxItems"] == 4
    assert props["tags"]["items"]["maxLength"] == 50 and "maxLength" not in props["pick"]
    assert schema["additionalProperties"] is False
    assert "maxLength" not in Given.model_json_schema()["properties"]["free"]  # a copy


class MakePlan(Action):
    async def run(self, ctx: ActionContext) -> Plan:
        return await self.ask_structured("Plan the word counter.", Plan)


class SpyLocal(LocalModel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outputs: list[OutputFormat | None] = []

    async def complete(self, messages, *, context=None, output=None):
        self.outputs.append(output)
        return await super().complete(messages, context=context, output=output)

    async def stream(self, messages, *, context=None, output=None):  # what LLM.ask calls: answers stream
        self.outputs.append(output)
        async for chunk in super().stream(messages, context=context, output=output):
            yield chunk


@pytest.mark.parametrize("seed", [0, 1])
def test_ask_structured_on_a_local_model_passes_the_schema_down(checkpoint, seed):
    model = SpyLocal(checkpoint, max_new_tokens=400, temperature=1.0, seed=seed)
    events: list[Event] = []
    action = MakePlan().bind(LLM(model, role="Planner", on_event=events.append))
    plan = asyncio.run(action.run(ActionContext()))
    assert isinstance(plan, Plan)
    assert [o.json_schema for o in model.outputs] == [Plan.model_json_schema()]
    parse = [e for e in events if e.kind == "parse"]
    assert len(parse) == 1 and parse[0].data["first_try"] is True and parse[0].data["output"] == "json_schema:Plan"
    call = [e for e in events if e.kind == "llm_call"][0]
    assert call.data["output"] == "json_schema:Plan" and call.data["finish_reason"] == "stop"


@pytest.mark.slow
def test_bench_script_runs_quickly(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = BENCH / "bench_constrained.py"
    cmd = [sys.executable, str(script), "--no-model", "--vocab", "400", "--steps", "30",
           "--libs", "xgrammar,mgpt,mgpt-closing", "--work", str(tmp_path)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert [r["library"] for r in rows] == ["xgrammar", "mgpt", "mgpt-closing"]
    assert all(r["tokens"] > 0 and r["ms_median"] > 0 for r in rows)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_constrained_prd_passes_its_own_validators(loaded, seed):
    """The PRD's schema carries what its validators check (snake_case name, non-empty
    lists), so a constrained answer is never refused after it parses."""
    from mgpt.actions.documents import PRD

    out = generate_text(
        loaded, PROMPT, max_new_tokens=700, temperature=1.0, seed=seed, output=OutputFormat.from_model(PRD)
    )
    prd = PRD.model_validate_json(out.text)  # runs the validators too
    assert prd.goals and prd.requirements and prd.acceptance_criteria and prd.user_stories


def test_a_project_name_is_bounded_by_the_model_and_the_grammar(loaded):
    """A 65-character package name is refused with a message that says why, and the PRD
    grammar cannot write one: after 64 name characters it refuses a 65th."""
    from pydantic import ValidationError

    from mgpt.actions.documents import PRD

    doc = {"project_name": "a" * 64, "summary": "s", "goals": ["g"], "user_stories": ["u"],
           "requirements": [{"id": "R1", "text": "t", "priority": "P0"}], "acceptance_criteria": ["c"]}
    assert PRD.model_validate(doc).project_name == "a" * 64
    with pytest.raises(ValidationError, match="at most 64 characters"):
        PRD.model_validate({**doc, "project_name": "a" * 65})

    tokenizer = loaded.tokenizer
    (a,) = tokenizer.encode("a", add_special_tokens=False)
    matcher = compile_output(tokenizer, OutputFormat.from_model(PRD)).matcher()
    for token in tokenizer.encode('{"project_name":"', add_special_tokens=False):
        matcher.advance(token)
    for _ in range(64):
        matcher.advance(a)
    with pytest.raises(ConstraintError, match="does not fit"):
        matcher.advance(a)

"""Self-distillation from constrained decoding (benchmarks/bench_self_distil.py) end to end
on a tiny random Llama: the grammar's answers are accepted and kept, the model is
fine-tuned on them, and both models are asked again without the grammar."""

from __future__ import annotations

import importlib
import math
import json
import sys
from pathlib import Path

import pytest
from testpaths import BENCH

torch = pytest.importorskip("torch", reason="the benchmark needs the [train] extra")
pytest.importorskip("xgrammar", reason="the teacher decodes under the PRD grammar")



def bench(name: str):
    """A script of benchmarks/ imported as a module (they import each other by file name)."""
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    from transformers import AutoConfig, LlamaConfig, LlamaForCausalLM

    from mgpt.llm.local.testing import make_tiny_checkpoint

    folder = make_tiny_checkpoint(tmp_path_factory.mktemp("llama"), chat_template=True, n_positions=4096)
    base = AutoConfig.from_pretrained(folder)
    config = LlamaConfig(vocab_size=base.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         bos_token_id=base.eos_token_id, eos_token_id=base.eos_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_self_distillation_runs_and_keeps_only_accepted_answers(llama_dir, tmp_path, monkeypatch):
    bench_self_distil = bench("bench_self_distil")
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", [
        "bench_self_distil.py", "--model", str(llama_dir), "--out", str(out), "--seeds", "1",
        "--train-ideas", "2", "--eval-ideas", "1", "--steps", "1", "--max-new-tokens", "400",
        "--batch-size", "1", "--block-size", "2048", "--threads", "1"])
    bench_self_distil.main()
    summary = json.loads((out / "summary.json").read_text())
    seed = summary["seeds"]["1"]
    rows = [json.loads(x) for x in (out / "seed1_train.jsonl").read_text().splitlines()]
    assert len(rows) == seed["kept"] == 2  # the grammar's answers always pass the PRD model
    from mgpt.actions.documents import PRD

    for row in rows:
        assert row["messages"][-1]["role"] == "assistant"
        PRD.model_validate_json(row["messages"][-1]["content"])
        assert row["messages"][-2]["content"] == bench_self_distil.prd_prompt(
            bench_self_distil.TRAIN_IDEAS[rows.index(row)])[-1]["content"]
    assert (out / "seed1_model" / "model.safetensors").is_file()
    for result in (summary["base"], seed):
        assert 0.0 <= result["greedy"] <= 1.0 and len(result["greedy_answers"]) == 1
    assert not set(summary["train_ideas"]) & set(summary["eval_ideas"])
    assert seed["resumed"] is False and seed["train_seconds"] > 0

    # --resume: the seed's data and model are reused, not made again; the eval runs again.
    weights = out / "seed1_model" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    monkeypatch.setattr(sys, "argv", sys.argv + ["--resume"])
    bench_self_distil.main()
    again = json.loads((out / "summary.json").read_text())["seeds"]["1"]
    assert again["resumed"] is True and again["train_seconds"] is None and again["kept"] == 2
    assert weights.stat().st_mtime_ns == stamp
    assert again["greedy_answers"] == seed["greedy_answers"]  # the same model, greedy


def test_the_teachers_tighter_grammar_bounds_every_string_list_and_the_name(llama_dir):
    """``--teacher-max-string/-items/-name-length``: a tiny random model decoding under the
    tighter grammar writes a PRD the PRD model accepts, and no string, list or name is
    longer than the bounds; without them the teacher's grammar is the company's."""
    bench_self_distil = bench("bench_self_distil")
    from mgpt.actions.documents import PRD
    from mgpt.llm import OutputFormat

    assert bench_self_distil.teacher_format(None, None, None) == OutputFormat.from_model(PRD)
    output = bench_self_distil.teacher_format(12, 2, 8)
    texts = bench_self_distil.answers(llama_dir, bench_self_distil.TRAIN_IDEAS[:2], output=output, temperature=1.0,
                                      seed=0, max_new_tokens=400, threads=1)
    for text in texts:
        prd = PRD.model_validate_json(text)
        assert len(prd.project_name) <= 8
        lists = [prd.goals, prd.user_stories, prd.requirements, prd.acceptance_criteria]
        assert all(1 <= len(x) <= 2 for x in lists)
        strings = [prd.summary, prd.anything_unclear, *prd.goals, *prd.user_stories, *prd.acceptance_criteria,
                   *(r.text for r in prd.requirements), *(r.id for r in prd.requirements)]
        assert max(map(len, strings)) <= 12


@pytest.mark.slow
def test_record_planning_writes_a_transcript_of_accepted_planning_that_distils(llama_dir, tmp_path):
    """The company's planning half recorded on a (tiny) local model under the grammar: one
    transcript per idea holding the PRD, design and task-plan calls, each answer accepted by
    the role's own parser, and ``distil`` turns it into chat examples."""
    record_planning = bench("record_planning")
    from mgpt.actions.documents import PRD, SystemDesign, TaskList
    from mgpt.llm.parsing import extract_json
    from mgpt.llm.backends.replay import Transcript
    from mgpt.llm.train.distil import distil

    out = tmp_path / "runs"
    assert record_planning.main(["--model", str(llama_dir), "--out", str(out), "--ideas", "1", "--skip", "2",
                                 "--max-new-tokens", "700", "--threads", "1", "--decoder", "hf"]) == 0
    (path,) = sorted(out.glob("*.jsonl"))
    assert path.name.startswith("002-")
    calls = Transcript.load(path).calls
    assert [(c.role, c.action) for c in calls] == [
        ("ProductManager", "WritePRD"), ("Architect", "WriteDesign"), ("ProjectManager", "WriteTasks")]
    prd = PRD.model_validate(extract_json(calls[0].response.text))
    design = SystemDesign.model_validate(extract_json(calls[1].response.text))
    assert all(f.path.startswith(f"{prd.project_name}/") for f in design.files)
    plan = TaskList.from_plan(extract_json(calls[2].response.text), [f.path for f in design.files])
    assert {t.path for t in plan.tasks} == {f.path for f in design.files}
    assert record_planning.TRAIN_IDEAS[2] in calls[0].request[-1].content
    result = distil([out], tmp_path / "distil", val_fraction=0.0)
    assert result.train_examples == 3 and result.by_action["Architect/WriteDesign"] == 1
    # a run that cannot finish (here: no PRD fits in the token limit) is kept aside, not distilled
    assert record_planning.main(["--model", str(llama_dir), "--out", str(out), "--ideas", "1", "--skip", "3",
                                 "--max-new-tokens", "24", "--threads", "1", "--decoder", "hf"]) == 0
    assert sorted(p.name[:3] for p in out.glob("*.jsonl")) == ["002"]
    (rejected,) = (out / "rejected").glob("*.jsonl")
    assert rejected.name.startswith("003-")


def test_record_planning_rejects_a_run_that_needed_a_re_ask(tmp_path):
    """Any model (here a scripted one answering with a golden run's documents): a run whose
    PRD had to be asked for again is moved to rejected/; a clean one stays."""
    record_planning = bench("record_planning")
    from mgpt.llm.backends.replay import Transcript
    from mgpt.llm.backends.testing import FunctionModel

    golden = {c.action: c.response.text for c in Transcript.load(BENCH.parent / "tests" / "golden" / "todo_cli.jsonl").calls}
    asked: list[str] = []

    def answer(messages, context):
        asked.append(context.action)
        if len(asked) == 1:
            return "Sorry, no JSON today."  # the first PRD answer only: the product manager asks again
        return golden[context.action]

    model = FunctionModel(answer, name="scripted")
    assert record_planning.record(model, record_planning.TRAIN_IDEAS[:2], tmp_path) == 1
    assert asked == ["WritePRD", "WritePRD", "WriteDesign", "WriteTasks", "WritePRD", "WriteDesign", "WriteTasks"]
    (kept,) = tmp_path.glob("*.jsonl")
    (rejected,) = (tmp_path / "rejected").glob("*.jsonl")
    assert kept.name.startswith("001-") and rejected.name.startswith("000-")
    assert len(Transcript.load(rejected).calls) == 4 and Transcript.load(kept).header.idea == record_planning.TRAIN_IDEAS[1]


def _scripted_runs(folder: Path, ideas: list[str]) -> None:
    """Clean planning runs of ``ideas`` whose answers are a golden run's documents."""
    record_planning = bench("record_planning")
    from mgpt.llm.backends.replay import Transcript
    from mgpt.llm.backends.testing import FunctionModel

    golden = {c.action: c.response.text for c in Transcript.load(BENCH.parent / "tests" / "golden" / "todo_cli.jsonl").calls}
    assert record_planning.record(FunctionModel(lambda m, c: golden[c.action], name="scripted"), ideas, folder) == len(ideas)


@pytest.mark.slow
def test_self_distillation_from_recorded_runs_trains_on_their_prds(llama_dir, tmp_path, monkeypatch):
    bench_self_distil = bench("bench_self_distil")
    recorded, out = tmp_path / "recorded", tmp_path / "out"
    _scripted_runs(recorded, bench_self_distil.TRAIN_IDEAS[:2])
    argv = ["bench_self_distil.py", "--model", str(llama_dir), "--out", str(out), "--seeds", "1", "--eval-ideas", "1",
            "--steps", "1", "--max-new-tokens", "8", "--batch-size", "1", "--block-size", "2048", "--threads", "1",
            "--precision", "bf16", "--recorded", str(recorded)]
    monkeypatch.setattr(sys, "argv", argv)
    bench_self_distil.main()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recorded"] == {"runs": 2, "examples": 2, "accepted": 2} and summary["seeds"]["1"]["kept"] == 2
    rows = [json.loads(x) for x in (out / "seed1_train.jsonl").read_text().splitlines()]
    assert [r["messages"][-2]["content"] for r in rows] == [
        bench_self_distil.prd_prompt(i)[-1]["content"] for i in bench_self_distil.TRAIN_IDEAS[:2]]
    assert json.loads((out / "seed1_model" / "metrics.jsonl").read_text().splitlines()[-1])["kind"]
    # a recorded run of an idea the eval asks about is refused, not trained on
    _scripted_runs(tmp_path / "leak", [bench_self_distil.IDEAS[0]])
    monkeypatch.setattr(sys, "argv", [*argv[:-1], str(tmp_path / "leak")])
    with pytest.raises(SystemExit, match="eval ideas would be trained on"):
        bench_self_distil.main()


def test_finetune_quant_scores_base_and_tuned_in_each_mode(llama_dir, tmp_path, monkeypatch):
    """bench_finetune_quant.py: the answer NLL of a base and a tuned model with fp32, int8
    and int4 weights; the tuned model (here: trained on the answers for a few steps) is
    better in fp32, and fp32 keeps all of its own gain by definition."""
    from mgpt.llm.train.config import load_config
    from mgpt.llm.train.sft import sft

    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"count to {i}"},
                                                     {"role": "assistant", "content": " ".join(map(str, range(i)))}]})
                            + "\n" for i in range(3, 9)))
    tuned = tmp_path / "tuned"
    sft(load_config(None, {"init_from": str(llama_dir), "out_dir": str(tuned), "device": "cpu", "threads": 1,
                           "batch_size": 2, "block_size": 256, "data.path": str(data), "data.format": "chat",
                           "data.val_fraction": 0.0, "max_iters": 6, "eval_interval": 6, "eval_iters": 1,
                           "optim.lr": 3e-3}), progress=False)
    out = tmp_path / "fq.json"
    monkeypatch.setattr(sys, "argv", ["bench_finetune_quant.py", "--base", str(llama_dir), "--tuned", str(tuned),
                                      "--data", str(data), "--examples", "4", "--threads", "1", "--out", str(out)])
    bench("bench_finetune_quant").main()
    result = json.loads(out.read_text())
    assert result["examples"] == 4 and list(result["modes"]) == ["fp32", "int8", "int4"]
    fp32 = result["modes"]["fp32"]
    assert fp32["tuned_nll"] < fp32["base_nll"] and fp32["gain_kept"] == 1.0
    for mode in result["modes"].values():
        assert math.isfinite(mode["base_nll"]) and math.isfinite(mode["tuned_nll"])


def test_resume_keeps_earlier_scores_only_when_their_settings_match(tmp_path):
    bench_self_distil = bench("bench_self_distil")
    args = {"model": "m", "out": "o", "seeds": "[1]", "eval_ideas": "16", "train_ideas": "64",
            "max_new_tokens": "640", "temperature": "0.6", "threads": "2", "decoder": "fast-int8",
            "steps": "64", "lr": "5e-05", "batch_size": "4", "block_size": "1024", "precision": "bf16",
            "recorded": "None", "resume": "False", "teacher_unconstrained": "False", "teacher_temperature": "0.3",
            "teacher_max_string": "100",
            "teacher_max_items": "3", "teacher_name_length": "32"}
    path = tmp_path / "summary.json"
    assert bench_self_distil.resumable(path, {"args": args}) == {}  # nothing yet
    path.write_text(json.dumps({"args": args, "base": {"greedy": 0.0}, "seeds": {"1": {"greedy": 0.75}}}))

    # Another seed, another thread count and --resume: both the base and seed 1 carry over.
    now = dict(args, seeds="[2]", threads="1", resume="True")
    assert bench_self_distil.resumable(path, {"args": now}) == {
        "base": {"greedy": 0.0}, "seeds": {"1": {"greedy": 0.75}}}
    # Another training setting: the base's score holds, the seeds' do not.
    assert bench_self_distil.resumable(path, {"args": dict(now, steps="32")}) == {"base": {"greedy": 0.0}}
    # Another eval setting: nothing holds.
    assert bench_self_distil.resumable(path, {"args": dict(now, decoder="fast-int4")}) == {}
    assert bench_self_distil.resumable(path, {"args": dict(now, eval_ideas="8")}) == {}
    path.write_text("{not json")
    assert bench_self_distil.resumable(path, {"args": now}) == {}


def test_an_unconstrained_teacher_keeps_only_the_answers_the_prd_model_accepts(llama_dir, tmp_path, monkeypatch):
    """--teacher-unconstrained: the model answers with no grammar (with the decoder its
    weights call for) and only the accepted answers are trained on; none accepted is a
    clear error before any training."""
    bench_self_distil = bench("bench_self_distil")
    from mgpt.llm.local.generate import quantized_decoder

    good = json.dumps({"project_name": "tip_calc", "summary": "Splits a bill.", "goals": ["split"],
                       "user_stories": ["As a diner I split a bill"],
                       "requirements": [{"id": "R1", "text": "split evenly"}], "acceptance_criteria": ["sums match"]})
    calls = []

    def fake_answers(model_dir, ideas, *, output, temperature, seed, max_new_tokens, threads, decoder="fast-int8"):
        calls.append({"ideas": ideas, "output": output, "decoder": decoder, "temperature": temperature})
        if ideas == bench_self_distil.TRAIN_IDEAS[:2]:
            return [good, '{"project_name": "tip_calc"'] if teacher_passes else ["no", "json"]
        return ["not a PRD"] * len(ideas)

    monkeypatch.setattr(bench_self_distil, "answers", fake_answers)
    argv = ["bench_self_distil.py", "--model", str(llama_dir), "--seeds", "1", "--train-ideas", "2",
            "--eval-ideas", "1", "--steps", "1", "--batch-size", "1", "--block-size", "512", "--threads", "1",
            "--teacher-unconstrained", "--teacher-temperature", "0.6"]
    teacher_passes = False
    monkeypatch.setattr(sys, "argv", argv + ["--out", str(tmp_path / "none")])
    with pytest.raises(SystemExit, match="no teacher answer was accepted"):
        bench_self_distil.main()
    assert not (tmp_path / "none" / "seed1_model").exists()

    teacher_passes, calls[:] = True, []
    monkeypatch.setattr(sys, "argv", argv + ["--out", str(tmp_path / "out")])
    bench_self_distil.main()
    teacher = [c for c in calls if c["ideas"] == bench_self_distil.TRAIN_IDEAS[:2]]
    assert len(teacher) == 1 and teacher[0]["output"] is None and teacher[0]["temperature"] == 0.6
    assert teacher[0]["decoder"] == quantized_decoder(llama_dir)
    rows = [json.loads(x) for x in (tmp_path / "out" / "seed1_train.jsonl").read_text().splitlines()]
    assert [r["messages"][-1]["content"] for r in rows] == [good]  # the truncated answer is dropped
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["seeds"]["1"]["kept"] == 1 and summary["seeds"]["1"]["greedy"] == 0.0
    assert (tmp_path / "out" / "seed1_model" / "model.safetensors").is_file()

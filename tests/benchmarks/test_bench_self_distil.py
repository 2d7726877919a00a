"""Self-distillation from constrained decoding (benchmarks/bench_self_distil.py), planning
recorded on a model (record_planning.py) and the quantized fine-tune check
(bench_finetune_quant.py), each run as a user runs it, end to end on a tiny random Llama.
The package parts they use are tested in tests/workflows/test_structured_eval.py."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

from testpaths import GOLDEN, bench_command

torch = pytest.importorskip("torch", reason="the benchmark needs the [train] extra")
pytest.importorskip("xgrammar", reason="the teacher decodes under the PRD grammar")

from mgpt.workflows.structured_eval import EVAL_IDEAS, TRAIN_IDEAS, prd_messages  # noqa: E402


def run(script: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(bench_command(script, *args), capture_output=True, text=True, timeout=timeout)


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
def test_self_distillation_runs_keeps_only_accepted_answers_and_resumes(llama_dir, tmp_path):
    out = tmp_path / "out"
    args = ["--model", str(llama_dir), "--out", str(out), "--seeds", "1", "--train-ideas", "2", "--eval-ideas", "1",
            "--steps", "1", "--max-new-tokens", "400", "--batch-size", "1", "--block-size", "2048", "--threads", "1"]
    done = run("bench_self_distil.py", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    seed = summary["seeds"]["1"]
    rows = [json.loads(x) for x in (out / "seed1_train.jsonl").read_text().splitlines()]
    assert len(rows) == seed["kept"] == 2  # the grammar's answers always pass the PRD model
    from mgpt.actions.documents import PRD

    for row in rows:
        assert row["messages"][-1]["role"] == "assistant"
        PRD.model_validate_json(row["messages"][-1]["content"])
        assert row["messages"][-2]["content"] == prd_messages(TRAIN_IDEAS[rows.index(row)])[-1]["content"]
    assert (out / "seed1_model" / "model.safetensors").is_file()
    for result in (summary["base"], seed):
        assert 0.0 <= result["greedy"] <= 1.0 and len(result["greedy_answers"]) == 1
    assert not set(summary["train_ideas"]) & set(summary["eval_ideas"])
    assert seed["resumed"] is False and seed["train_seconds"] > 0

    # --resume: the seed's data and model are reused, not made again; the eval runs again.
    # The base's score and another seed's carry over while their settings match.
    weights = out / "seed1_model" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    summary["base"]["greedy"] = 0.125  # a score the eval cannot give: reused, not measured again
    summary["seeds"]["9"] = {"greedy": 0.5}
    (out / "summary.json").write_text(json.dumps(summary))
    done = run("bench_self_distil.py", *args, "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    again = json.loads((out / "summary.json").read_text())
    assert again["seeds"]["1"]["resumed"] is True and again["seeds"]["1"]["train_seconds"] is None
    assert again["seeds"]["1"]["kept"] == 2 and weights.stat().st_mtime_ns == stamp
    assert again["seeds"]["1"]["greedy_answers"] == seed["greedy_answers"]  # the same model, greedy
    assert again["base"]["greedy"] == 0.125 and again["seeds"]["9"] == {"greedy": 0.5}
    assert "base: reused" in done.stdout
    # another eval setting: no earlier score holds
    done = run("bench_self_distil.py", *args[:-8], "--max-new-tokens", "8", *args[-6:], "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    third = json.loads((out / "summary.json").read_text())
    assert third["base"]["greedy"] != 0.125 and "9" not in third["seeds"] and "base: reused" not in done.stdout


@pytest.mark.slow
def test_record_planning_writes_a_transcript_of_accepted_planning_that_distils(llama_dir, tmp_path):
    """The company's planning half recorded on a (tiny) local model under the grammar: one
    transcript per idea holding the PRD, design and task-plan calls, each answer accepted by
    the role's own parser, and ``distil`` turns it into chat examples."""
    from mgpt.actions.documents import PRD, SystemDesign, TaskList
    from mgpt.llm.backends.replay import Transcript
    from mgpt.llm.parsing import extract_json
    from mgpt.llm.train.distil import distil

    out = tmp_path / "runs"
    done = run("record_planning.py", "--model", str(llama_dir), "--out", str(out), "--ideas", "1", "--skip", "2",
               "--max-new-tokens", "700", "--threads", "1", "--decoder", "hf")
    assert done.returncode == 0, done.stderr[-3000:]
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
    assert TRAIN_IDEAS[2] in calls[0].request[-1].content
    result = distil([out], tmp_path / "distil", val_fraction=0.0)
    assert result.train_examples == 3 and result.by_action["Architect/WriteDesign"] == 1
    # a run that cannot finish (here: no PRD fits in the token limit) is kept aside, not distilled
    done = run("record_planning.py", "--model", str(llama_dir), "--out", str(out), "--ideas", "1", "--skip", "3",
               "--max-new-tokens", "24", "--threads", "1", "--decoder", "hf")
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name[:3] for p in out.glob("*.jsonl")) == ["002"]
    (rejected,) = (out / "rejected").glob("*.jsonl")
    assert rejected.name.startswith("003-")


def _scripted_runs(folder: Path, ideas: list[str]) -> None:
    """Clean planning runs of ``ideas`` whose answers are a golden run's documents."""
    from mgpt.llm.backends.replay import Transcript
    from mgpt.llm.backends.testing import FunctionModel
    from mgpt.workflows.structured_eval import record_planning

    golden = {c.action: c.response.text for c in Transcript.load(GOLDEN / "todo_cli.jsonl").calls}
    model = FunctionModel(lambda m, c: golden[c.action], name="scripted")
    assert record_planning(model, ideas, folder, log=lambda line: None) == len(ideas)


@pytest.mark.slow
def test_self_distillation_from_recorded_runs_trains_on_their_prds(llama_dir, tmp_path):
    recorded, out = tmp_path / "recorded", tmp_path / "out"
    _scripted_runs(recorded, TRAIN_IDEAS[:2])
    args = ["--model", str(llama_dir), "--out", str(out), "--seeds", "1", "--eval-ideas", "1", "--steps", "1",
            "--max-new-tokens", "8", "--batch-size", "1", "--block-size", "2048", "--threads", "1",
            "--precision", "bf16", "--recorded"]
    done = run("bench_self_distil.py", *args, str(recorded))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recorded"] == {"runs": 2, "examples": 2, "accepted": 2} and summary["seeds"]["1"]["kept"] == 2
    rows = [json.loads(x) for x in (out / "seed1_train.jsonl").read_text().splitlines()]
    assert [r["messages"][-2]["content"] for r in rows] == [prd_messages(i)[-1]["content"] for i in TRAIN_IDEAS[:2]]
    assert json.loads((out / "seed1_model" / "metrics.jsonl").read_text().splitlines()[-1])["kind"]
    # a recorded run of an idea the eval asks about is refused, not trained on
    _scripted_runs(tmp_path / "leak", [EVAL_IDEAS[0]])
    done = run("bench_self_distil.py", *args, str(tmp_path / "leak"))
    assert done.returncode != 0 and "eval ideas would be trained on" in done.stderr


@pytest.mark.slow
def test_an_unconstrained_teacher_with_no_accepted_answer_stops_before_training(llama_dir, tmp_path):
    """--teacher-unconstrained: the model answers with no grammar; a random tiny model writes
    no PRD the PRD model accepts, which is a clear error before any training."""
    out = tmp_path / "none"
    done = run("bench_self_distil.py", "--model", str(llama_dir), "--seeds", "1", "--train-ideas", "2",
               "--eval-ideas", "1", "--steps", "1", "--batch-size", "1", "--block-size", "512", "--threads", "1",
               "--max-new-tokens", "16", "--teacher-unconstrained", "--teacher-temperature", "0.6", "--out", str(out))
    assert done.returncode != 0 and "no teacher answer was accepted" in done.stderr, done.stderr[-3000:]
    assert "0/2 unconstrained answers accepted" in done.stdout
    assert not (out / "seed1_model").exists()


@pytest.mark.slow
def test_finetune_quant_scores_base_and_tuned_in_each_mode(llama_dir, tmp_path):
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
    done = run("bench_finetune_quant.py", "--base", str(llama_dir), "--tuned", str(tuned), "--data", str(data),
               "--examples", "4", "--threads", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["examples"] == 4 and list(result["modes"]) == ["fp32", "int8", "int4"]
    fp32 = result["modes"]["fp32"]
    assert fp32["tuned_nll"] < fp32["base_nll"] and fp32["gain_kept"] == 1.0
    for mode in result["modes"].values():
        assert math.isfinite(mode["base_nll"]) and math.isfinite(mode["tuned_nll"])
    assert "| int4 |" in done.stdout

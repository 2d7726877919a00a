"""The learning-loop benchmark (benchmarks/bench_loop.py), run as a user runs it: base ->
distil -> RFT -> DPO end to end on a tiny random Llama (char tokenizer), every step
evaluated and the summary written; --max-minutes, --preflight and --merge. The package
parts it uses have their own tests (tests/llm/eval/test_batch_sampling.py, test_quick_check.py,
tests/workflows/test_structured_eval.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mgpt.llm.eval.tasks import load_tasks
from testpaths import GOLDEN, bench_command

TASKS = load_tasks("all")


def run_loop(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(bench_command("bench_loop.py", *args), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A random 1-layer Llama with a char tokenizer that knows every character the loop meets."""
    from mgpt.llm.backends.replay import Transcript
    from mgpt.llm.train.config import load_config
    from mgpt.llm.train.pretrain import pretrain
    from mgpt.llm.train.rft import prompt_messages
    from mgpt.workflows.structured_eval import EVAL_IDEAS, prd_messages

    tmp = tmp_path_factory.mktemp("loop_base")
    parts = [m["content"] for t in TASKS for m in prompt_messages(t)] + [t.reference + t.wrong for t in TASKS]
    parts += [m["content"] for idea in EVAL_IDEAS[:2] for m in prd_messages(idea)]
    for p in GOLDEN.glob("**/*.jsonl"):
        for c in Transcript.load(p).calls:
            parts += [m.content for m in c.request] + [c.response.text]
    (tmp / "corpus.txt").write_text("\n".join(parts) + "```python\n")
    cfg = load_config(None, {
        "data.path": str(tmp / "corpus.txt"), "out_dir": str(tmp / "base"), "device": "cpu", "threads": 1,
        "model.family": "llama", "model.n_layer": 1, "model.n_head": 2, "model.n_embd": 32,
        "block_size": 64, "model.n_positions": 4096, "batch_size": 2, "max_iters": 2, "eval_interval": 2,
        "eval_iters": 1})
    pretrain(cfg, progress=False)
    return tmp / "base"


TINY = ["--device", "cpu", "--seeds", "1", "2", "--test-tasks", "2", "--train-tasks", "3", "--n", "2", "--k", "2",
        "--ideas", "1", "--struct-n", "1", "--max-new-tokens", "12", "--struct-max-new-tokens", "8",
        "--batch-size", "2", "--block-size", "256", "--distil-steps", "2", "--rft-steps", "1", "--dpo-steps", "1",
        "--dpo-batch-size", "2", "--threads", "1", "--workers", "2", "--quant", "none", "--timeout", "5"]


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["hf", "fast"])
def test_loop_runs_every_step_and_writes_the_summary(tiny_llama, tmp_path, sampler):
    """--plumbing adds each train task's reference and wrong solution to the sampled answers
    (a random model passes nothing, so RFT and DPO would have nothing to learn); the evals
    sample the model."""
    out = tmp_path / "out"
    # stands in for record_planning.py's runs: copies of golden runs, held-out ones included,
    # whose held-out calls must not be trained on
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    for path in GOLDEN.glob("*.jsonl"):
        (recorded / path.name).write_bytes(path.read_bytes())
    done = run_loop("--model", str(tiny_llama), "--out", str(out), "--work", str(tmp_path / "work"), *TINY,
                    "--sampler", sampler, "--transcripts", str(recorded), "--plumbing")
    assert done.returncode == 0, done.stderr[-3000:]
    saved = json.loads((out / "summary.json").read_text())
    assert saved["stopped"] == "" and saved["sandbox"] in ("bwrap", "none")
    run = saved["runs"][0]
    assert [list(r["steps"]) for r in saved["runs"]] == [["base", "distil", "rft", "dpo"]] * 2
    for ev in run["steps"].values():
        assert 0 <= ev["code"]["pass1"] <= 1 and len(ev["code"]["per_task"]) == 2
        assert 0 <= ev["structured"]["rate"] <= 1
        assert ev["structured"]["prompts"] == len(saved["structured_prompts"]) >= 2  # an idea + held-out golden calls
    distil = run["steps"]["distil"]["train"]
    assert distil["steps"] == 2 and distil["loss"]["first"]["train_loss"] > 0
    data = saved["distil_data"]
    assert data["task_demos"] == 3 and data["golden_val_runs"] and data["golden_train_examples"] > 0
    # held-out golden runs are never trained on
    trained = (out / "distil" / "train_all.jsonl").read_text()
    held_out = [json.loads(x)["messages"] for x in Path(data["val_path"]).read_text().splitlines()]
    assert held_out and not any(json.loads(x)["messages"] in held_out for x in trained.splitlines())
    test_ids = {t.id for t in load_tasks("test")}
    rows = [json.loads(x) for x in trained.splitlines()]
    assert not {r["meta"].get("task") for r in rows} & test_ids
    from_recorded = [r for r in rows if str(recorded) in r["meta"].get("run", "")]
    assert data["recorded_runs"] == 4 and len(from_recorded) == data["recorded_examples"] > 0
    assert data["recorded_dropped_as_held_out"] > 0  # a held-out golden run's copy was among them
    rft, dpo = run["steps"]["rft"]["train"], run["steps"]["dpo"]["train"]
    # k=2 sampled answers (a random model's: they fail) + the reference + the wrong solution per task
    assert (rft["kept"], rft["tasks_solved"], rft["sample_pass_rate"]) == (3, 3, 0.25) and rft["steps"] == 1
    assert dpo["tasks"] == 3 and dpo["pairs"] >= 3 and len(dpo["loss"]) == 2
    train_ids = {t.id for t in load_tasks("train")}
    pairs = [json.loads(x) for x in (out / "seed1" / "dpo_pairs.jsonl").read_text().splitlines()]
    assert pairs and all(p["task"] in train_ids for p in pairs)
    assert set(saved["aggregate"]) == {"base", "distil", "rft", "dpo"}
    assert "| distil |" in (out / "table.md").read_text() and "| distil |" in done.stdout
    assert saved["aggregate"]["base"]["pass1"]["seeds"] == 2 and saved["args"]["sampler"] == sampler
    assert not (tmp_path / "work" / "seed1").exists()  # models deleted once used
    # one process per seed, merged: the same aggregate as one process for both seeds
    parts = []
    for run in saved["runs"]:
        part = tmp_path / f"part{run['seed']}" / "summary.json"
        part.parent.mkdir()
        part.write_text(json.dumps({**saved, "runs": [run]}))
        parts.append(part)
    assert run_loop("--merge", *map(str, reversed(parts)), "--out", str(tmp_path / "merged")).returncode == 0
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert merged["aggregate"] == saved["aggregate"] and [r["seed"] for r in merged["runs"]] == [1, 2]
    assert (tmp_path / "merged" / "table.md").read_text() == (out / "table.md").read_text()
    bad = run_loop("--merge", str(parts[0]), str(parts[0]), "--out", str(tmp_path / "bad"))
    assert bad.returncode != 0 and "a seed occurs twice" in bad.stderr


@pytest.mark.slow  # the tiny model's fixture takes ~10 s
def test_max_minutes_stops_cleanly_with_what_is_done(tiny_llama, tmp_path):
    out = tmp_path / "out"
    done = run_loop("--model", str(tiny_llama), "--out", str(out), "--max-minutes", "0.000001", *TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = json.loads((out / "summary.json").read_text())
    assert saved["stopped"].startswith("--max-minutes reached")
    assert saved["runs"][0]["steps"] == {} and "aggregate" in saved


@pytest.mark.slow
def test_preflight_runs_every_step_small_first(tiny_llama, tmp_path):
    out = tmp_path / "out"
    done = run_loop("--model", str(tiny_llama), "--out", str(out), "--preflight", *TINY, "--seeds", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    pre = json.loads((out / "preflight" / "summary.json").read_text())
    real = json.loads((out / "summary.json").read_text())
    assert pre["test_tasks"] == 2 and pre["train_tasks"] == 2 and pre["args"]["seeds"] == [1]
    assert list(pre["runs"][0]["steps"]) == ["base", "distil", "rft", "dpo"] and pre["args"]["plumbing"]
    steps = pre["runs"][0]["steps"]  # the reference/wrong answers make RFT and DPO train
    assert steps["rft"]["train"]["kept"] >= 2 and steps["dpo"]["train"]["pairs"] >= 2
    assert "skipped" not in steps["rft"]["train"] and "skipped" not in steps["dpo"]["train"]
    assert not real["args"]["plumbing"]
    assert real["train_tasks"] == 3 and real["args"]["seeds"] == [3] and real["stopped"] == ""


def test_the_loop_needs_a_model_or_runs_to_merge():
    done = run_loop("--seeds", "1", timeout=120)
    assert done.returncode == 2 and "--model is required" in done.stderr

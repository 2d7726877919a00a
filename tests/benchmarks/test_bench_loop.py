"""The learning-loop benchmark: the quick check agrees with pytest, the structured eval
parses what the roles parse, and base -> distil -> RFT -> DPO runs end to end on a tiny
random Llama (char tokenizer) with every step evaluated and the summary written."""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mgpt.llm.eval.tasks import load_tasks
from mgpt.llm.eval.code_sandbox import quick_check, sandbox_check
from testpaths import GOLDEN, BENCH

TASKS = load_tasks("all")


def bench():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_loop
    finally:
        sys.path.remove(str(BENCH))
    return bench_loop


@pytest.mark.slow
def test_quick_check_passes_every_reference_and_fails_every_wrong_solution():
    def both(t):
        return t.id, quick_check(t, t.reference), quick_check(t, t.wrong)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(both, TASKS))
    bad = [(i, r.output[-300:], w.output[-300:]) for i, r, w in results if not r.passed or w.passed]
    assert not bad, bad[:3]
    assert all(r.tests_failed == 0 and r.tests_passed > 0 and w.tests_failed > 0 for _, r, w in results)


@pytest.mark.parametrize("task_id", ["reverse_words", "cli_greet", "parse_log_line", "lru_cache_class"])
def test_quick_check_counts_what_pytest_counts(task_id):
    """Same passed/failed counts as the pytest check, on tasks using raises, match= and capsys."""
    t = next(t for t in TASKS if t.id == task_id)
    for code in (t.reference, t.wrong):
        q, p = quick_check(t, code), sandbox_check(t, code)
        assert (q.passed, q.tests_passed, q.tests_failed) == (p.passed, p.tests_passed, p.tests_failed)


@pytest.mark.parametrize("code", [
    "import sys\nsys.exit(0)\n",                                  # exits at import: collection error
    "print('MGPT-COUNTS-0000 {\"passed\": 9}')\ndef reverse_words(s):\n    return s\n",  # counts-like output
    "def reverse_words(s):\n    while True:\n        pass\n",     # never returns: the deadline
    "import os\ndef reverse_words(s):\n    os._exit(0)\n",         # dies mid-test: no counts at all
    "x = (\n",                                                    # syntax error
    # forged counts under the real marker, with values that are not counts: no crash, a failure
    "import os, sys\nprint(sys.argv[2], '{\"passed\": \"x\", \"failed\": null}')\nos._exit(0)\n",
])
def test_quick_check_fails_broken_candidates(code):
    t = next(t for t in TASKS if t.id == "reverse_words")
    r = quick_check(t, code, timeout=3)
    assert not r.passed


def test_structured_prompts_are_the_company_s_and_golden_answers_parse():
    b = bench()
    msgs = b.prd_prompt("A habit tracker that records daily check-ins.")
    assert msgs[0]["role"] == "system" and "ProductManager" in msgs[0]["content"]
    assert "habit tracker" in msgs[1]["content"] and "Reply with one JSON object" in msgs[1]["content"]
    assert b.schema_of(msgs).__name__ == "PRD"
    runs = sorted(str(p) for p in b.GOLDEN.glob("**/*.jsonl"))
    items = b.golden_structured(runs)
    assert {it["schema"].__name__ for it in items} >= {"PRD", "SystemDesign", "TaskList"}
    from mgpt.llm.backends.replay import Transcript

    answers = {f"{Path(r).stem}:{c.action}": c.response.text for r in runs for c in Transcript.load(Path(r)).calls}
    assert all(b.parses(answers[it["source"]], it["schema"]) for it in items)  # the recorded answers parse
    assert not b.parses('{"project_name": "x"}', items[0]["schema"])  # a partial one does not


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A random 1-layer Llama with a char tokenizer that knows every character the loop meets."""
    from mgpt.llm.backends.replay import Transcript
    from mgpt.llm.train.config import load_config
    from mgpt.llm.train.pretrain import pretrain
    from mgpt.llm.train.rft import prompt_messages

    b = bench()
    tmp = tmp_path_factory.mktemp("loop_base")
    parts = [m["content"] for t in TASKS for m in prompt_messages(t)] + [t.reference + t.wrong for t in TASKS]
    parts += [m["content"] for idea in b.IDEAS[:2] for m in b.prd_prompt(idea)]
    for p in b.GOLDEN.glob("**/*.jsonl"):
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
def test_loop_runs_every_step_and_writes_the_summary(tiny_llama, tmp_path, monkeypatch, sampler):
    """The train tasks' answers are scripted (the reference and the wrong solution: a random
    model passes nothing, so RFT and DPO would have nothing to learn); evals sample the model."""
    b = bench()
    out = tmp_path / "out"
    train = {t.prompt: t for t in load_tasks("train")}
    real = b.Sampler.sample

    def scripted(self, requests, seed):
        out = real(self, requests, seed)
        return [[f"```python\n{code}```" for code in (train[r.messages[-1]["content"]].reference,
                                                      train[r.messages[-1]["content"]].wrong)][:r.n]
                if r.messages[-1]["content"] in train else got for r, got in zip(requests, out)]

    monkeypatch.setattr(b.Sampler, "sample", scripted)
    # stands in for record_planning.py's runs: copies of golden runs, held-out ones included,
    # whose held-out calls must not be trained on
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    for path in (GOLDEN).glob("*.jsonl"):
        (recorded / path.name).write_bytes(path.read_bytes())
    summary = b.main(["--model", str(tiny_llama), "--out", str(out), "--work", str(tmp_path / "work"), *TINY,
                      "--sampler", sampler, "--transcripts", str(recorded)])
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
    assert (rft["kept"], rft["tasks_solved"], rft["sample_pass_rate"]) == (3, 3, 0.5) and rft["steps"] == 1
    assert (dpo["pairs"], dpo["tasks"]) == (3, 3) and len(dpo["loss"]) == 2
    pairs = [json.loads(x) for x in (out / "seed1" / "dpo_pairs.jsonl").read_text().splitlines()]
    assert all(p["task"] in {t.id for t in train.values()} for p in pairs)
    assert set(saved["aggregate"]) == {"base", "distil", "rft", "dpo"}
    assert "| distil |" in (out / "table.md").read_text()
    assert summary["aggregate"]["base"]["pass1"]["seeds"] == 2 and saved["args"]["sampler"] == sampler
    assert not (tmp_path / "work" / "seed1").exists()  # models deleted once used
    # one process per seed, merged: the same aggregate as one process for both seeds
    parts = []
    for run in saved["runs"]:
        part = tmp_path / f"part{run['seed']}" / "summary.json"
        part.parent.mkdir()
        part.write_text(json.dumps({**saved, "runs": [run]}))
        parts.append(part)
    merged = b.main(["--merge", *map(str, reversed(parts)), "--out", str(tmp_path / "merged")])
    assert merged["aggregate"] == saved["aggregate"] and [r["seed"] for r in merged["runs"]] == [1, 2]
    assert (tmp_path / "merged" / "table.md").read_text() == (out / "table.md").read_text()
    with pytest.raises(SystemExit, match="a seed occurs twice"):
        b.main(["--merge", str(parts[0]), str(parts[0]), "--out", str(tmp_path / "bad")])


@pytest.mark.slow  # the tiny model's fixture takes ~10 s
def test_max_minutes_stops_cleanly_with_what_is_done(tiny_llama, tmp_path):
    b = bench()
    out = tmp_path / "out"
    b.main(["--model", str(tiny_llama), "--out", str(out), "--max-minutes", "0.000001", *TINY])
    saved = json.loads((out / "summary.json").read_text())
    assert saved["stopped"].startswith("--max-minutes reached")
    assert saved["runs"][0]["steps"] == {} and "aggregate" in saved


@pytest.mark.slow
def test_batched_sampler_greedy_rows_and_per_row_lengths(tiny_llama):
    """The hf sampler's one call serves greedy and sampled rows of different lengths: a greedy
    row equals a greedy-only call's answer, and no row is longer than its own max_new_tokens."""
    import argparse

    b = bench()
    args = argparse.Namespace(sampler="hf", device="cpu", quant="none", threads=1, gen_batch=4)
    s = b.Sampler(tiny_llama, args, b.Clock(None))
    msgs = [[{"role": "user", "content": t.prompt}] for t in TASKS[:3]]
    # the first two share a batch (same length): a greedy row among sampled ones
    mixed = s.sample([b.Request(msgs[0], 1, 0.0, 20), b.Request(msgs[1], 3, 1.0, 20), b.Request(msgs[2], 2, 0.5, 30),
                      b.Request(msgs[1], 2, 0.0, 7)], seed=1)
    alone = s.sample([b.Request(msgs[0], 1, 0.0, 20), b.Request(msgs[1], 1, 0.0, 7)], seed=2)
    assert [len(a) for a in mixed] == [1, 3, 2, 2]
    assert mixed[0] == alone[0] and mixed[3] == alone[1] * 2
    assert len(set(mixed[1])) > 1  # sampled rows are sampled
    ids = lambda text: s.tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert all(len(ids(a)) <= 20 for a in mixed[1]) and all(len(ids(a)) <= 30 for a in mixed[2])
    assert all(len(ids(a)) <= 7 for a in mixed[3])
    fast = b.Sampler(tiny_llama, argparse.Namespace(sampler="fast", device="cpu", quant="none", threads=1,
                                                    gen_batch=1), b.Clock(None))
    assert fast.sample([b.Request(msgs[0], 1, 0.0, 20)], seed=3)[0] == alone[0]  # the two decoders agree


@pytest.mark.slow
def test_preflight_runs_every_step_small_first(tiny_llama, tmp_path):
    b = bench()
    out = tmp_path / "out"
    b.main(["--model", str(tiny_llama), "--out", str(out), "--preflight", *TINY, "--seeds", "3"])
    pre = json.loads((out / "preflight" / "summary.json").read_text())
    real = json.loads((out / "summary.json").read_text())
    assert pre["test_tasks"] == 2 and pre["train_tasks"] == 2 and pre["args"]["seeds"] == [1]
    assert list(pre["runs"][0]["steps"]) == ["base", "distil", "rft", "dpo"] and pre["args"]["plumbing"]
    steps = pre["runs"][0]["steps"]  # the reference/wrong answers make RFT and DPO train
    assert steps["rft"]["train"]["kept"] >= 2 and steps["dpo"]["train"]["pairs"] >= 2
    assert "skipped" not in steps["rft"]["train"] and "skipped" not in steps["dpo"]["train"]
    assert not real["args"]["plumbing"]
    assert real["train_tasks"] == 3 and real["args"]["seeds"] == [3] and real["stopped"] == ""

"""The Shakespeare benchmark scripts run end to end (a few iterations on a small text)."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys

import pytest
from testpaths import BENCH, bench_command

WORDS = "to be or not that is the question whether tis nobler in the mind to suffer".split()


@pytest.fixture()
def text(tmp_path):
    rng = random.Random(0)
    p = tmp_path / "text.txt"
    p.write_text("\n".join(" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(600)))
    return p


@pytest.mark.slow  # trains 30 iterations in a fresh interpreter: 15-40 s on the shared box
def test_nanogpt_reference_runs_and_learns(text):
    run = subprocess.run(bench_command("nanogpt_reference.py", "--json", "--data", str(text), "--threads", "1",
                                       "--max-iters", "30"), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.splitlines()[-1])
    assert out["iters"] == 30 and out["threads"] == 1
    assert out["val_loss"] < math.log(len(set(text.read_text()))) - 0.5  # well below a uniform guess
    assert math.isfinite(out["full_val_loss"]) and 0 < out["ms_median"] and 0 < out["ms_mean"]


@pytest.mark.slow  # two trainers side by side: about a minute
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="--alongside pins two processes to two CPUs")
def test_bench_alongside_prints_both_sides(text, tmp_path):
    cmd = [sys.executable, str(BENCH / "bench_shakespeare.py"), "--alongside", "--quiet", "--max-iters", "20",
           "--data", str(text), "--out", str(tmp_path / "out"), "--set", "eval_interval=10", "--set", "eval_iters=2",
           "--set", "schedule.warmup_iters=5", "--spread", "3"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert any(line.startswith("val loss (whole split)") for line in lines), run.stdout
    assert any(line.startswith("2-batch val estimate over 3 random draws: mean") for line in lines), run.stdout
    ratio = [line for line in lines if line.startswith("ours/nanoGPT tokens/s")]
    assert ratio and float(ratio[0].rsplit(" ", 1)[1]) > 0
    assert json.loads((tmp_path / "out" / "config.json").read_text())["model_type"] == "gpt2"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="--alongside pins two processes to two CPUs")
@pytest.mark.parametrize("cpus", ["0,0", "a,b", "0", "0,99999"])
def test_bench_alongside_refuses_bad_cpus(text, tmp_path, cpus):
    cmd = [sys.executable, str(BENCH / "bench_shakespeare.py"), "--alongside", "--cpus", cpus, "--data", str(text),
           "--out", str(tmp_path / "out")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "--cpus wants two different CPUs" in run.stderr, run.stderr[-2000:]
    assert not (tmp_path / "out").exists()  # refused before any work

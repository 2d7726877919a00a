"""bench_service run as a user runs it, on the tiny retail data: the scripted configurations
go through the real eval and the table carries the figures and the published anchors."""

from __future__ import annotations

import json
import subprocess

import pytest
from testpaths import bench_command

from mgpt.domains.retail.testing import tiny_data


@pytest.mark.slow
def test_the_scripted_configurations_and_the_table(tmp_path):
    data = tiny_data(tmp_path / "data").folder
    run = subprocess.run(bench_command("bench_service.py", "--out", str(tmp_path / "out"), "--data", str(data),
                                       "--split", "base", "--configs", "gold,unconfirmed,unconfirmed-single"),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| reference conversations (scripted gold calls) | (scripted) | 2 × 1 | 1.000 | 2/2 | 2 / 2 (0) |" in run.stdout
    # without the customer's yes the checker declines both changes; the agent alone makes them
    assert "| reference calls, the customer never says yes | (scripted) | 2 × 1 | 0.000 | 0/2 | 0 / 2 (2) |" in run.stdout
    assert "| reference calls, never a yes, SupportAgent alone | (scripted) | 2 × 1 | 1.000 | 2/2 | 2 / 2 (0) |" in run.stdout
    assert "| τ²-bench leaderboard (user: gpt-4.1) | gpt-4.1 | 0.740 |" in run.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["config"] for r in summary] == ["gold", "unconfirmed", "unconfirmed-single"]

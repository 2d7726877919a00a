"""The code task bank: every reference solution passes its hidden tests and every wrong
solution fails them; the splits are deterministic and hold whole families out.

All tasks' files go into one folder and one pytest process runs them (once with the
references, once with the wrong solutions): about two seconds per run instead of 300
pytest start-ups. These are our own solutions, so no sandbox is needed here.
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mgpt.llm.eval.tasks import FAMILIES, HELD_OUT_FAMILIES, load_tasks, split_of

TASKS = load_tasks("all")


def _run_bank(tmp: Path, which: str) -> tuple[set[str], set[str], str]:
    """(ids with a failing or erroring test, ids with a passing test, pytest output)."""
    tmp.mkdir()
    for t in TASKS:
        (tmp / t.filename).write_text(getattr(t, which))
        (tmp / t.test_filename).write_text(t.tests)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir", str(tmp),
         "--continue-on-collection-errors", "."],
        cwd=tmp, capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    failed = set(re.findall(r"^(?:FAILED|ERROR) test_(\w+?)\.py", out, re.M))
    passed = set(re.findall(r"^PASSED test_(\w+?)\.py", out, re.M))
    return failed, passed, out


def test_bank_size_ids_and_families():
    assert len(TASKS) >= 150
    ids = [t.id for t in TASKS]
    assert len(ids) == len(set(ids)), [i for i, n in collections.Counter(ids).items() if n > 1]
    per_family = collections.Counter(t.family for t in TASKS)
    assert set(per_family) == set(FAMILIES) and min(per_family.values()) >= 10, per_family
    for t in TASKS:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", t.id), t.id
        assert t.reference != t.wrong, t.id
        assert f"Write the file `{t.id}.py`" in t.prompt and "one ```python code block" in t.prompt
        assert "def test_" in t.tests, t.id


def test_splits_are_deterministic_and_hold_families_out():
    train, test = load_tasks("train"), load_tasks("test")
    assert {t.id for t in train}.isdisjoint(t.id for t in test)
    assert len(train) + len(test) == len(TASKS)
    assert not {t.family for t in train} & set(HELD_OUT_FAMILIES)
    assert {t.family for t in test} >= set(HELD_OUT_FAMILIES)
    # Every other family has tasks on both sides.
    for family in set(FAMILIES) - set(HELD_OUT_FAMILIES):
        sides = {t.split for t in TASKS if t.family == family}
        assert sides == {"train", "test"}, family
    assert split_of("reverse_words", "strings") == next(t.split for t in TASKS if t.id == "reverse_words")
    assert [t.id for t in load_tasks("test")] == [t.id for t in test]
    with pytest.raises(ValueError, match="unknown split"):
        load_tasks("dev")
    with pytest.raises(ValueError, match="unknown task family"):
        load_tasks("all", ["poetry"])


@pytest.mark.slow
def test_every_reference_passes_and_every_wrong_solution_fails(tmp_path):
    failed, passed, out = _run_bank(tmp_path / "reference", "reference")
    assert not failed, f"references failing their tests: {sorted(failed)}\n{out[-4000:]}"
    assert passed == {t.id for t in TASKS}, sorted({t.id for t in TASKS} - passed)
    failed, _, out = _run_bank(tmp_path / "wrong", "wrong")
    survivors = {t.id for t in TASKS} - failed
    assert not survivors, f"wrong solutions that pass every test: {sorted(survivors)}"

"""The quick check (mgpt.llm.eval.code_sandbox.quick_check): the task bank's hidden tests
run by a small runner instead of pytest agree with pytest, and broken candidates fail."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from mgpt.llm.eval.code_sandbox import quick_check, sandbox_check
from mgpt.llm.eval.tasks import load_tasks

TASKS = load_tasks("all")


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

"""Paths the tests share (tests live in folders that mirror the package's)."""

from pathlib import Path

#: the tests folder, the repository root (the ``mgpt`` package), and the recorded runs
TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
GOLDEN = TESTS / "golden"
BENCH = ROOT / "benchmarks"

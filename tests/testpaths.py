"""Paths the tests share (tests live in folders that mirror the package's)."""

from pathlib import Path

#: the tests folder, the repository root (the ``mgpt`` package), and the recorded runs
TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
GOLDEN = TESTS / "golden"
BENCH = ROOT / "benchmarks"


def bench_command(script: str, *args: str) -> list[str]:
    """The command that runs ``benchmarks/<script>`` with ``args`` in a fresh interpreter (a
    test runs a benchmark as a user does; it inherits the environment, so ``import mgpt``
    finds the package under test)."""
    import sys

    return [sys.executable, str(BENCH / script), *args]

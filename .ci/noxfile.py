"""CI's test sessions: the fast part of the suite on every supported Python this machine
has, and the whole suite on one.

    python3 -m nox -f .ci/noxfile.py                  # every session (what .ci/run does)
    python3 -m nox -f .ci/noxfile.py -s fast-3.12     # one Python
    python3 -m nox -f .ci/noxfile.py -r               # reuse the venvs of an earlier run

``fast`` installs mgpt with the ``dev`` and ``recommend`` extras only (no torch: that is the point, the agents,
replays, sandbox and CLI must work without the model workshop) and runs the tests that
need neither torch nor several seconds each; tests that need torch skip. ``full`` runs the
whole suite in the environment ``tools/install.sh`` set up (torch, the workshop), so the
README's install command is what gets tested.

A Python this machine lacks is skipped with a line saying so ("Python interpreter 3.13
not found"), and the other sessions go on. pyenv's versions are found even when
``pyenv global`` names only one of them.

This file lives in ``.ci/``, not at the repository root: every ``.py`` file at the root
would become a module of the ``mgpt`` package (see pyproject's ``package-dir``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent.parent
#: The Pythons mgpt supports (pyproject's requires-python, the README's line).
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
#: The Python the whole suite runs on (the one tools/install.sh installed into).
FULL_PYTHON = "3.11"
#: The fast part: every room but the model workshop's (llm/local, llm/train, llm/eval,
#: llm/serve and the benchmarks' logic need torch): the agents, memory, domains, the sandbox,
#: the backends, actions, the replays (workflows), the CLI, the install script, the top level.
WORKSHOP_TESTS = ["tests/llm/local", "tests/llm/train", "tests/llm/eval", "tests/llm/serve",
                  "tests/llm/test_cuda.py", "tests/benchmarks"]
FAST_PATHS = ["tests", *(f"--ignore={path}" for path in WORKSHOP_TESTS)]
FAST_MARKERS = "not slow and not cuda"
#: What project environments install from the wheel cache (tools/install.sh fills it).
CACHE_WHEELS = ["pytest", "setuptools", "wheel"]

nox.options.sessions = ["fast", "full"]
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = False
nox.options.download_python = "never"


def _pyenv_versions() -> None:
    """Make every installed pyenv version of :data:`PYTHONS` findable: pyenv's shims run
    only the versions ``PYENV_VERSION`` (or ``pyenv global``) names, so keep those first
    (``python3`` keeps meaning what it meant) and add the others after them."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    if not (root / "versions").is_dir():
        return
    installed = sorted(
        (p.name for p in (root / "versions").iterdir() if re.fullmatch(r"\d+\.\d+\.\d+", p.name)),
        key=lambda name: tuple(int(n) for n in name.split(".")),
    )
    newest = {".".join(name.split(".")[:2]): name for name in installed}
    current = os.environ.get("PYENV_VERSION", "")
    if not current:  # a shim sets it; nox started some other way asks pyenv
        try:
            current = subprocess.run(["pyenv", "version-name"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return
    wanted = [v.strip() for v in current.split(":") if v.strip()] + [newest[v] for v in PYTHONS if v in newest]
    os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys(wanted))


_pyenv_versions()


def _wheel_cache() -> Path:
    home = os.environ.get("MGPT_HOME") or str(Path.home() / ".cache" / "mgpt")
    return Path(home).expanduser() / "wheels"


@nox.session(python=PYTHONS)
def fast(session: nox.Session) -> None:
    """The agents, replays, sandbox and CLI tests, without torch."""
    session.chdir(ROOT)
    # The recommend extra too: the domains are agents-side code (numpy and scipy, no torch).
    session.install("-e", ".[dev,recommend]")
    # The wheel cache must hold what pytest needs on *this* Python (3.10: exceptiongroup and
    # tomli, which a cache filled by 3.11 lacks). pip evaluates markers for the interpreter it
    # runs under, so it runs under this session's (``--python``; the venv itself has no pip).
    session.run(
        sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(Path(session.bin) / "python"),
        "download", "--quiet", "-d", str(_wheel_cache()), *CACHE_WHEELS, external=True,
    )
    session.run("python", "-m", "pytest", "-q", *(session.posargs or ["-m", FAST_MARKERS, *FAST_PATHS]))


@nox.session(python=False)
def full(session: nox.Session) -> None:
    """The whole suite, in the environment tools/install.sh installed into (run it first)."""
    session.chdir(ROOT)
    found = f"{sys.version_info.major}.{sys.version_info.minor}"
    if found != FULL_PYTHON:
        session.warn(f"the whole suite is meant to run on Python {FULL_PYTHON}; this is {found}")
    session.run(sys.executable, "-m", "pytest", "-q", *session.posargs, external=True)

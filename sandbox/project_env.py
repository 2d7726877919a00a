"""A Python environment per generated project, so its tests never run with mgpt's own.

A generated project may declare third-party dependencies (``requirements.txt``, or
``[project].dependencies`` in ``pyproject.toml``). Before its tests run, mgpt builds a
virtual environment in ``<workspace>/.mgpt/venv`` and installs pytest, the declared
dependencies and (when there is a ``pyproject.toml``) the project itself, editable, so
``src/`` layouts and console scripts work. The environment is reused while what the
project declares stays the same (a hash of the declaring files).

Installing is offline first: from the wheel cache ``$MGPT_HOME/wheels`` (``MGPT_HOME``
defaults to ``~/.cache/mgpt``) with no package index. Only when that fails, and the
network is allowed (not ``MGPT_OFFLINE=1``), does it go to the index; with pip the
downloaded wheels are then kept in the cache for the next run. ``uv`` is used when it is
on PATH (or installed beside mgpt's Python); otherwise ``python -m venv`` and pip.

The installer runs in the sandbox too (a package's build script is code from outside):
only this step may reach the network. A failed install is not an mgpt error: it comes back
as :class:`ProjectEnv` with ``ok=False`` and the (redacted) log, for QA to report to the
engineer like a failing test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mgpt.agents.errors import MgptError
from mgpt.agents.secrets import redact, register

from mgpt.sandbox.isolation import Limits, normalize_output, run_sandboxed

#: What every project environment gets besides the project's own dependencies.
TEST_REQUIREMENTS = ("pytest",)
#: The files whose content decides whether an environment can be reused.
DECLARING_FILES = ("requirements.txt", "pyproject.toml", "setup.py", "setup.cfg")
#: Bumped when the way environments are built changes, so old ones are rebuilt.
ENV_FORMAT = 1
#: The user's installer settings that reach the (sandboxed) install step: a private index
#: or mirror, a proxy, a CA bundle. Credentials inside index URLs are registered as secrets.
INSTALLER_ENV_VARS = (
    "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "UV_INDEX_URL", "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL", "UV_INDEX", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
    "https_proxy", "no_proxy", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
)


class ProjectEnvError(MgptError):
    """pytest itself cannot be installed into a project environment: the machine's
    problem (no wheel cache, no network), not one the engineer can fix in the code."""


def mgpt_home() -> Path:
    return Path(os.environ.get("MGPT_HOME") or Path.home() / ".cache" / "mgpt").expanduser()


def wheelhouse() -> Path:
    """The wheel cache shared by every project environment (fill it with ``pip download``).
    Resolved: the sandbox binds the real folder, and a link to one outside would dangle there."""
    return (mgpt_home() / "wheels").resolve()


def find_uv() -> str | None:
    """``uv`` on PATH, or the one the ``uv`` package put beside this Python."""
    found = shutil.which("uv")
    if found:
        return found
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def _base_python() -> str:
    """The interpreter a project venv is built from (not mgpt's venv, if mgpt has one)."""
    return getattr(sys, "_base_executable", None) or sys.executable


@dataclass
class ProjectEnv:
    """A project's environment, or why it could not be built."""

    root: Path
    ok: bool
    log: str = ""
    reused: bool = False
    exit_code: int = 0
    timed_out: bool = False

    @property
    def bin(self) -> Path:
        return self.root / ("Scripts" if os.name == "nt" else "bin")

    @property
    def python(self) -> Path:
        return self.bin / ("python.exe" if os.name == "nt" else "python")


def env_key(workspace: Path, installer: str) -> str:
    """A hash of everything that decides the environment's content."""
    digest = hashlib.sha256()
    digest.update(f"{ENV_FORMAT}|{sys.version}|{_base_python()}|{installer}|{TEST_REQUIREMENTS}".encode())
    for name in DECLARING_FILES:
        path = workspace / name
        digest.update(f"|{name}|".encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _requirements(workspace: Path) -> list[str]:
    args = list(TEST_REQUIREMENTS)
    if (workspace / "requirements.txt").is_file():
        args += ["-r", str(workspace / "requirements.txt")]
    if (workspace / "pyproject.toml").is_file() or (workspace / "setup.py").is_file():
        args += ["-e", str(workspace)]
    return args


def _install_limits(limits: Limits) -> Limits:
    """Installers need more than tests: threads (uv), subprocesses (pip builds), memory."""
    return replace(
        limits,
        timeout=max(limits.timeout, 300.0),
        cpu_seconds=max(limits.cpu_seconds, 300),
        memory_mb=max(limits.memory_mb, 8192),
        file_size_mb=max(limits.file_size_mb, 1024),
        open_files=max(limits.open_files, 4096),
        processes=max(limits.processes, 512),
    )


def _create_venv(root: Path, uv: str | None) -> subprocess.CompletedProcess:
    # Creating an empty venv runs no code from the project: it happens outside the sandbox.
    if uv:
        cmd = [uv, "venv", "--quiet", "--python", _base_python(), str(root)]
    else:
        cmd = [_base_python(), "-m", "venv", "--without-pip", str(root)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")})


def _install_commands(env: ProjectEnv, uv: str | None, reqs: list[str], wheels: Path, online: bool):
    links = ["--find-links", str(wheels)]
    if uv:
        base = [uv, "pip", "install", "--quiet", "--python", str(env.python), *links]
        # --offline: the wheel cache, plus what uv's own cache holds from earlier online runs.
        return [base + (["--offline"] if not online else []) + reqs]
    # mgpt's own pip drives the install into the venv (``pip --python``, pip >= 22.3).
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input",
           "--python", str(env.python)]
    if not online:
        return [pip + ["install", "--quiet", "--no-index", *links, *reqs]]
    # Online with pip: fill the wheel cache first (best effort: an sdist may not build
    # here), then install with the index as a fallback. The project itself is not cached.
    named = [r for i, r in enumerate(reqs) if r != "-e" and (i == 0 or reqs[i - 1] != "-e")]
    fill = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input",
            "download", "--quiet", "-d", str(wheels), *links, *named]
    return [fill, pip + ["install", "--quiet", *links, *reqs]]


def ensure_project_env(
    workspace: Path,
    limits: Limits | None = None,
    *,
    network: bool | None = None,
    cancel: threading.Event | None = None,
) -> ProjectEnv:
    """The workspace's project environment, built or reused. Never raises for a failed
    install: see :attr:`ProjectEnv.ok` and :attr:`ProjectEnv.log`."""
    workspace = Path(workspace).resolve()
    limits = limits or Limits()
    if network is None:
        network = os.environ.get("MGPT_OFFLINE", "").strip().lower() not in ("1", "true", "yes")
    uv = find_uv()
    env = ProjectEnv(root=workspace / ".mgpt" / "venv", ok=False)
    stamp = env.root / "mgpt-env.json"
    key = env_key(workspace, "uv" if uv else "pip")
    try:
        if json.loads(stamp.read_text())["key"] == key and env.python.exists():
            env.ok = env.reused = True
            return env
    except (OSError, ValueError, KeyError, TypeError):
        pass
    shutil.rmtree(env.root, ignore_errors=True)
    created = _create_venv(env.root, uv)
    if created.returncode != 0:
        env.log = redact(f"could not create a virtual environment:\n{created.stdout}{created.stderr}")
        env.exit_code = created.returncode
        return env
    wheels = wheelhouse()
    wheels.mkdir(parents=True, exist_ok=True)
    cache = mgpt_home() / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    reqs = _requirements(workspace)
    install_env = {
        "UV_CACHE_DIR": str(cache / "uv"),
        "PIP_CACHE_DIR": str(cache / "pip"),
        "XDG_CACHE_HOME": str(cache),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "UV_NO_PROGRESS": "1",
    }
    # The installer's own files: uv's binary, or mgpt's environment (pip) when it is a venv.
    for name in INSTALLER_ENV_VARS:
        if os.environ.get(name):
            install_env[name] = os.environ[name]
            for url in os.environ[name].split():
                try:
                    password = urlsplit(url).password
                except ValueError:
                    continue
                register(password)
                register(unquote(password) if password else None)
    readable = [Path(uv).resolve().parent] if uv else [Path(sys.prefix).resolve()]
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        if install_env.get(name) and Path(install_env[name]).exists():
            readable.append(Path(install_env[name]).resolve())
    attempts = [False, True] if network else [False]
    logs: list[str] = []

    def install(reqs: list[str]) -> None:
        for online in attempts:
            for cmd in _install_commands(env, uv, reqs, wheels, online):
                result = run_sandboxed(
                    cmd, workspace, _install_limits(limits), network=online,
                    writable=[env.root, wheels, cache], readable=readable, env=install_env,
                    cancel=cancel,
                )
                if "download" not in cmd:  # filling the cache is best effort, not logged
                    where = "the wheel cache (offline)" if not online else "the package index"
                    logs.append(f"$ install {' '.join(reqs)} from {where}\n{result.output.strip()}")
                    env.exit_code, env.timed_out = result.exit_code, result.timed_out
            if env.exit_code == 0 and not env.timed_out:
                env.ok = True
                return

    install(reqs)
    if not env.ok:
        # Is it the project's declarations, or can pytest itself not be had here?
        failed, failed_code, failed_timeout = list(logs), env.exit_code, env.timed_out
        if reqs != list(TEST_REQUIREMENTS):
            install(list(TEST_REQUIREMENTS))
        if not env.ok:
            tail = normalize_output(logs[-1], workspace)[-1500:]
            raise ProjectEnvError(
                f"cannot install pytest into the project environment ({' '.join(tail.split())[-300:]}); "
                f"fill the wheel cache with `python3 -m pip download -d {wheels} pytest setuptools wheel`"
                + (" or unset MGPT_OFFLINE" if not network else " or allow access to the package index")
            )
        # pytest installs: the declared dependencies are at fault, for the engineer to fix.
        env.ok, logs = False, failed
        env.exit_code, env.timed_out = failed_code, failed_timeout
    env.log = normalize_output("\n\n".join(logs), workspace)
    if env.ok:
        stamp.write_text(json.dumps({"key": key, "installer": "uv" if uv else "pip"}) + "\n")
    return env

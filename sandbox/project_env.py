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
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mgpt.agents.errors import MgptError
from mgpt.agents.secrets import redact, register

from mgpt.sandbox.isolation import PACKAGING_FILES, Limits, normalize_output, run_sandboxed

#: What every project environment gets besides the project's own dependencies.
TEST_REQUIREMENTS = ("pytest",)
#: What the wheel cache holds so a project environment builds offline: pytest (with what it
#: needs on the venv's Python), setuptools and wheel to install pyproject projects.
CACHE_REQUIREMENTS = ("pytest", "setuptools", "wheel")
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
    """The ``uv`` installed beside this Python, else the first on PATH that is not a pyenv
    shim (a shim runs pyenv from ``$HOME``, which the sandbox hides)."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        found = shutil.which("uv", path=folder) if folder else None
        if found and not _is_pyenv_shim(Path(found)):
            return found
    return None


def _is_pyenv_shim(path: Path) -> bool:
    try:
        return path.parent.name == "shims" and b"pyenv" in path.read_bytes()[:4096]
    except OSError:
        return False


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
    if any((workspace / name).is_file() for name in PACKAGING_FILES):
        args += ["-e", str(workspace)]
    return args


def fill_command(wheels: Path | None = None) -> str:
    """The command that fills the wheel cache for the Python project environments are built
    from. pip evaluates pytest's markers for the interpreter it runs under (3.10 needs
    ``exceptiongroup`` and ``tomli``, which a cache filled by 3.11 lacks), so it names mgpt's
    own Python, or the one its venv was made from when that venv has no pip (uv's)."""
    return f"{_python_with_pip()} -m pip download -d {wheels or wheelhouse()} {' '.join(CACHE_REQUIREMENTS)}"


def _python_with_pip() -> str:
    """mgpt's interpreter when it has pip, else the installation its venv was made from."""
    import importlib.util

    if importlib.util.find_spec("pip"):
        return sys.executable
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(base) if base.is_file() else sys.executable


def wheel_cache_problem(
    python: str | None = None, *, wheels: Path | None = None, requirements: tuple[str, ...] = CACHE_REQUIREMENTS,
) -> str | None:
    """Why the wheel cache cannot build a project environment offline (None when it can).

    The installer project environments use (uv, else pip) resolves ``requirements`` from
    the cache alone, for ``python`` (default: mgpt's, whose version the project venvs share),
    so dependencies behind markers such as ``exceptiongroup; python_version < "3.11"`` are
    asked for by the version that needs them. Nothing is installed."""
    wheels = wheels or wheelhouse()
    if not any(wheels.glob("*.whl")):
        return f"the wheel cache {wheels} is empty"
    uv = find_uv()
    target = python or sys.executable
    if uv:
        cmd = [uv, "pip", "compile", "--quiet", "--offline", "--no-index", "--find-links", str(wheels),
               "--python", target, "-"]
    else:
        cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--python", target,
               "install", "--dry-run", "--ignore-installed", "--no-index", "--quiet", "--find-links", str(wheels),
               *requirements]
    try:
        proc = subprocess.run(cmd, input="\n".join(requirements) + "\n", capture_output=True, text=True,
                              timeout=120, env={**os.environ, "UV_NO_PROGRESS": "1"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not ask {'uv' if uv else 'pip'} whether the wheel cache {wheels} is complete ({exc})"
    if proc.returncode == 0:
        return None
    said = " ".join(proc.stderr.split())
    missing = (re.search(r"satisfies the requirement (.+?)(?: \(from versions|$)", said)  # pip
               or re.search(r"Because (?:only |there (?:is|are) no versions? of )?([A-Za-z0-9_.\-]+)", said))  # uv
    what = f"lacks {missing.group(1)}" if missing else f"does not resolve ({said[-300:]})"
    version = python or f"Python {sys.version_info.major}.{sys.version_info.minor} ({sys.executable})"
    return f"the wheel cache {wheels} {what} for {version}"


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
    # ``--python``: markers are evaluated for the venv's Python, so the cache serves it offline.
    fill = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input",
            "--python", str(env.python), "download", "--quiet", "-d", str(wheels), *links, *named]
    return [fill, pip + ["install", "--quiet", *links, *reqs]]


def ensure_project_env(
    workspace: Path,
    limits: Limits | None = None,
    *,
    network: bool | None = None,
    cancel: threading.Event | None = None,
) -> ProjectEnv:
    """The workspace's project environment, built or reused. Never raises for a failed
    install (see :attr:`ProjectEnv.ok` and :attr:`ProjectEnv.log`), only when pytest itself
    cannot be had (:class:`ProjectEnvError`: the machine's set-up, not the project)."""
    workspace = Path(workspace).resolve()
    if network is None:
        network = os.environ.get("MGPT_OFFLINE", "").strip().lower() not in ("1", "true", "yes")
    uv = find_uv()
    env = ProjectEnv(root=workspace / ".mgpt" / "venv", ok=False)
    stamp = env.root / "mgpt-env.json"
    key = env_key(workspace, "uv" if uv else "pip")
    if _reusable(env, stamp, key):
        env.ok = env.reused = True
        return env
    shutil.rmtree(env.root, ignore_errors=True)
    created = _create_venv(env.root, uv)
    if created.returncode != 0:
        env.log = redact(f"could not create a virtual environment:\n{created.stdout}{created.stderr}")
        env.exit_code = created.returncode
        return env
    installer = _Installer(env, workspace, limits or Limits(), uv=uv, network=network, cancel=cancel)
    reqs = _requirements(workspace)
    installer.install(reqs)
    if not env.ok:
        installer.blame(reqs)
    env.log = normalize_output("\n\n".join(installer.logs), workspace)
    if env.ok:
        stamp.write_text(json.dumps({"key": key, "installer": "uv" if uv else "pip"}) + "\n")
    return env


def _reusable(env: ProjectEnv, stamp: Path, key: str) -> bool:
    try:
        return json.loads(stamp.read_text())["key"] == key and env.python.exists()
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _installer_env(cache: Path) -> dict[str, str]:
    """The install step's environment: private caches, and the user's index, proxy and
    certificate settings (passwords in index URLs registered as secrets)."""
    install_env = {
        "UV_CACHE_DIR": str(cache / "uv"),
        "PIP_CACHE_DIR": str(cache / "pip"),
        "XDG_CACHE_HOME": str(cache),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "UV_NO_PROGRESS": "1",
    }
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
    return install_env


class _Installer:
    """Installs requirements into one project environment, in the sandbox: from the wheel
    cache offline, then (when ``network``) from the index; keeps a log of each attempt."""

    def __init__(self, env: ProjectEnv, workspace: Path, limits: Limits, *, uv: str | None,
                 network: bool, cancel: threading.Event | None) -> None:
        self.env, self.workspace, self.uv, self.network, self.cancel = env, workspace, uv, network, cancel
        self.limits = _install_limits(limits)
        self.wheels = wheelhouse()
        self.wheels.mkdir(parents=True, exist_ok=True)
        self.cache = mgpt_home() / "cache"
        self.cache.mkdir(parents=True, exist_ok=True)
        self.install_env = _installer_env(self.cache)
        # The installer's own files: uv's binary, or mgpt's environment (pip) when it is a venv.
        self.readable = [Path(uv).resolve().parent] if uv else [Path(sys.prefix).resolve()]
        for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            if self.install_env.get(name) and Path(self.install_env[name]).exists():
                self.readable.append(Path(self.install_env[name]).resolve())
        self.logs: list[str] = []

    def install(self, reqs: list[str]) -> None:
        """Offline first, then online when allowed; sets ``env.ok`` on the first success."""
        env = self.env
        for online in ([False, True] if self.network else [False]):
            for cmd in _install_commands(env, self.uv, reqs, self.wheels, online):
                result = run_sandboxed(
                    cmd, self.workspace, self.limits, network=online,
                    writable=[env.root, self.wheels, self.cache], readable=self.readable,
                    env=self.install_env, cancel=self.cancel,
                )
                if "download" not in cmd:  # filling the cache is best effort, not logged
                    where = "the wheel cache (offline)" if not online else "the package index"
                    self.logs.append(f"$ install {' '.join(reqs)} from {where}\n{result.output.strip()}")
                    env.exit_code, env.timed_out = result.exit_code, result.timed_out
            if env.exit_code == 0 and not env.timed_out:
                env.ok = True
                return

    def blame(self, reqs: list[str]) -> None:
        """After a failed install: is it the project's declarations (the engineer's to fix,
        ``env.ok`` stays False with their log), or can pytest itself not be had here (the
        user's: raises :class:`ProjectEnvError` saying how to fill the wheel cache)?"""
        env = self.env
        failed, failed_code, failed_timeout = list(self.logs), env.exit_code, env.timed_out
        if reqs != list(TEST_REQUIREMENTS):
            self.install(list(TEST_REQUIREMENTS))
        if not env.ok:
            tail = normalize_output(self.logs[-1], self.workspace)[-1500:]
            raise ProjectEnvError(
                f"cannot install pytest into the project environment ({' '.join(tail.split())[-300:]}); "
                f"fill the wheel cache with `{fill_command(self.wheels)}`"
                + (" or unset MGPT_OFFLINE" if not self.network else " or allow access to the package index")
            )
        env.ok, self.logs = False, failed
        env.exit_code, env.timed_out = failed_code, failed_timeout

"""What the sandbox needs from the machine, and what it says when it is missing: the bwrap
probe and its way out, the wheel cache for the venv's Python, uv found where the sandbox can
run it, and a ``src/`` layout without a packaging file collecting its tests."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from mgpt.sandbox import isolation, project_env
from mgpt.sandbox.isolation import bwrap_fix, bwrap_problem, import_paths, probe_args, run_pytest
from mgpt.sandbox.project_env import fill_command, wheel_cache_problem

DEBIAN_REFUSAL = (
    "bwrap: No permissions to creating new namespace, likely because the kernel does not allow "
    "non-privileged user namespaces. On e.g. debian this can be enabled with "
    "'sysctl kernel.unprivileged_userns_clone=1'."
)


def fake_bwrap(folder: Path, *, refuse: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "bwrap"
    body = f"echo \"{DEBIAN_REFUSAL}\" >&2; exit 1" if refuse else "exit 0"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


@pytest.fixture
def fresh_probe():
    bwrap_problem.cache_clear()
    yield
    bwrap_problem.cache_clear()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap is Linux-only")
def test_bwrap_problem_says_missing_forbidden_or_nothing(tmp_path, monkeypatch, fresh_probe):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert bwrap_problem() == "bubblewrap (bwrap) is not installed"
    assert "apt-get install bubblewrap" in bwrap_fix(bwrap_problem())

    bwrap_problem.cache_clear()
    fake_bwrap(tmp_path / "forbids", refuse=True)
    monkeypatch.setenv("PATH", str(tmp_path / "forbids"))
    problem = bwrap_problem()
    assert problem.startswith("bubblewrap cannot create namespaces here") and "unprivileged_userns_clone" in problem
    assert "sysctl -w kernel.unprivileged_userns_clone=1" in bwrap_fix(problem, sysctl=tmp_path / "no-sysctl")

    bwrap_problem.cache_clear()
    fake_bwrap(tmp_path / "allows", refuse=False)
    monkeypatch.setenv("PATH", str(tmp_path / "allows"))
    assert bwrap_problem() is None


def test_probe_asks_for_every_namespace_a_run_uses(tmp_path):
    """The probe (and so doctor and tools/install.sh) fails where a run would."""
    run = isolation._bwrap_args(tmp_path, {"PATH": "/usr/bin"}, isolation.Limits(), network=False,
                                writable=[], readable=[])
    wanted = {flag for flag in run if flag.startswith("--unshare-") and not flag.endswith("-try")}
    assert wanted <= set(probe_args())
    assert {"--unshare-user", "--unshare-pid", "--unshare-net", "--proc", "--tmpfs"} <= set(probe_args())
    assert probe_args()[probe_args().index("--uid") + 1] == str(isolation.SANDBOX_UID)


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("kernel/apparmor_restrict_unprivileged_userns", "1", "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"),
        ("kernel/unprivileged_userns_clone", "0", "sudo sysctl -w kernel.unprivileged_userns_clone=1"),
        ("user/max_user_namespaces", "0", "sudo sysctl -w user.max_user_namespaces=15000"),
        (None, None, "user namespaces are forbidden here"),
    ],
)
def test_bwrap_fix_names_the_kernel_setting(tmp_path, setting, value, expected):
    sysctl = tmp_path / "sys"
    # The settings that allow namespaces, then the one that forbids them here.
    for name, allowed in (("kernel/apparmor_restrict_unprivileged_userns", "0"),
                          ("kernel/unprivileged_userns_clone", "1"), ("user/max_user_namespaces", "63000")):
        (sysctl / name).parent.mkdir(parents=True, exist_ok=True)
        (sysctl / name).write_text(allowed + "\n")
    if setting:
        (sysctl / setting).write_text(value + "\n")
    fix = bwrap_fix("bubblewrap cannot create namespaces here (Operation not permitted)", sysctl=sysctl, root=tmp_path)
    assert expected in fix and fix.endswith("--sandbox none (MGPT_SANDBOX=none) to run generated code unisolated, knowingly")
    assert "\n" not in fix


def test_bwrap_fix_in_a_container(tmp_path):
    (tmp_path / ".dockerenv").write_text("")
    fix = bwrap_fix("bubblewrap cannot create namespaces here (Operation not permitted)",
                    sysctl=tmp_path / "none", root=tmp_path)
    assert "seccomp=unconfined" in fix and "--sandbox none" in fix


def test_refusal_carries_the_way_out(monkeypatch):
    monkeypatch.setattr(isolation, "bwrap_problem", lambda: "bubblewrap cannot create namespaces here (x)")
    monkeypatch.delenv("MGPT_SANDBOX", raising=False)
    with pytest.raises(isolation.SandboxUnavailable, match="cannot isolate generated code: .*--sandbox none"):
        isolation.require("bwrap")


# --- a src/ layout without a packaging file -------------------------------------------

def src_project(root: Path, packaging: str | None = None) -> Path:
    files = {
        "src/shapes/__init__.py": "def area(w, h):\n    return w * h\n",
        "tests/test_shapes.py": "from shapes import area\n\ndef test_area():\n    assert area(2, 3) == 6\n",
    }
    if packaging:
        files[packaging] = ""
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_src_layout_without_packaging_collects_its_tests(tmp_path):
    ws = src_project(tmp_path / "ws")
    assert import_paths(ws) == [str(ws), str(ws / "src")]
    result = run_pytest(ws)
    assert result.passed == 1 and result.exit_code == 0, result.output


@pytest.mark.parametrize("packaging", ["pyproject.toml", "setup.py"])
def test_a_packaged_src_layout_is_left_to_its_install(tmp_path, packaging):
    ws = src_project(tmp_path / "ws", packaging)
    assert import_paths(ws) == [str(ws)]


# --- the wheel cache, for the Python of the project venv -------------------------------

def wheel(folder: Path, name: str, requires: str = "") -> Path:
    """A tiny pure-Python wheel (no build tools, no network)."""
    dist = f"{name}-1.0.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n" + (f"Requires-Dist: {requires}\n" if requires else "")
    out = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(f"{name}/__init__.py", "")
        zf.writestr(f"{dist}/METADATA", metadata)
        zf.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: mgpt-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}/RECORD", "")
    return out


def other_python() -> str | None:
    """An interpreter of another minor version than this one (pyenv's, where present)."""
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates = sorted(root.glob("3.1[0-9].*/bin/python3")) if root.is_dir() else []
    for exe in candidates:
        if not exe.parent.parent.name.startswith(mine + "."):
            return str(exe)
    return None


@pytest.fixture(params=["uv", "pip"])
def installer(request, monkeypatch):
    """The cache is checked by the installer project environments use: uv, else pip."""
    import importlib.util

    if request.param == "pip":
        if importlib.util.find_spec("pip") is None:
            pytest.skip("this Python has no pip (a uv venv)")
        monkeypatch.setattr(project_env, "find_uv", lambda: None)
    elif project_env.find_uv() is None:
        pytest.skip("uv is not installed")
    return request.param


def test_wheel_cache_problem_empty_then_incomplete_then_complete(tmp_path, installer):
    """pytest's deps behind a marker for *this* Python: missing, then there."""
    cache = tmp_path / "wheels"
    cache.mkdir()
    assert "is empty" in wheel_cache_problem(wheels=cache, requirements=("probe",))
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    wheel(cache, "probe", f'probedep; python_version == "{mine}"')
    problem = wheel_cache_problem(wheels=cache, requirements=("probe",))
    assert problem and "lacks probedep" in problem and f"Python {mine}" in problem
    wheel(cache, "probedep")
    assert wheel_cache_problem(wheels=cache, requirements=("probe",)) is None


@pytest.mark.slow
def test_wheel_cache_is_resolved_for_the_venvs_python_not_mgpts(tmp_path, installer):
    """A cache filled for this Python lacks what another version needs (as a cache filled
    by 3.11 lacks exceptiongroup and tomli for 3.10): the check asks as that Python would."""
    other = other_python()
    if other is None:
        pytest.skip("no Python of another minor version here (pyenv)")
    theirs = subprocess.run([other, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    cache = tmp_path / "wheels"
    cache.mkdir()
    wheel(cache, "probe", f'probedep; python_version == "{theirs}"')
    assert wheel_cache_problem(wheels=cache, requirements=("probe",)) is None  # not needed here
    problem = wheel_cache_problem(other, wheels=cache, requirements=("probe",))
    assert problem and "lacks probedep" in problem


def test_no_pytest_offline_names_the_fill_command_for_this_python(tmp_path, monkeypatch):
    monkeypatch.setenv("MGPT_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("MGPT_OFFLINE", "1")
    (tmp_path / "ws" / "tests").mkdir(parents=True)
    with pytest.raises(project_env.ProjectEnvError) as info:
        project_env.ensure_project_env(tmp_path / "ws")
    assert fill_command() in str(info.value)
    python, rest = fill_command().split(" -m pip download -d ", 1)
    version = subprocess.run([python, "-c", "import sys, pip; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == str(sys.version_info[:2])  # a Python with pip, of the venv's version
    assert rest == f"{project_env.wheelhouse()} pytest setuptools wheel"


# --- uv, as the sandbox can run it -------------------------------------------------------

def test_find_uv_passes_over_a_pyenv_shim(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "uv").write_text('#!/usr/bin/env bash\nexec "/root/.pyenv/libexec/pyenv" exec "$program" "$@"\n')
    (shims / "uv").chmod(0o755)
    monkeypatch.setenv("PATH", str(shims))
    assert project_env.find_uv() is None
    real = tmp_path / "bin"
    real.mkdir()
    (real / "uv").write_text("#!/bin/sh\necho uv\n")
    (real / "uv").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{real}")
    assert project_env.find_uv() == str(real / "uv")
    beside = tmp_path / "venv" / "bin"
    beside.mkdir(parents=True)
    shutil.copy(real / "uv", beside / "uv")
    assert project_env.find_uv() == str(beside / "uv")

"""``tools/install.sh`` on a fresh machine, simulated: a PATH holding only fake apt-get, dnf,
pacman, sudo, id and bwrap scripts that record their calls, and a python whose pip is a
recorder too (everything else it runs is the real interpreter, so ``mgpt doctor`` runs for
real against the fake bwrap). Nothing is installed and nothing reaches a network."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from testpaths import ROOT

INSTALL = ROOT / "tools" / "install.sh"
#: The real tools the script and the fakes need (the package managers, sudo, id and bwrap are fakes).
REAL_TOOLS = ("bash", "env", "dirname", "chmod")
DEBIAN_REFUSAL = (
    "bwrap: No permissions to creating new namespace, likely because the kernel does not allow "
    "non-privileged user namespaces. On e.g. debian this can be enabled with "
    "'sysctl kernel.unprivileged_userns_clone=1'."
)
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(BASH is None or not sys.platform.startswith("linux"), reason="needs bash on Linux")


def _script(path: Path, body: str) -> None:
    path.write_text(f"#!{BASH}\n{body}\n")
    path.chmod(0o755)


#: Fake bwraps: namespaces allowed, or refused the way Debian's kernel refuses them.
#: (mgpt probes bwrap with an empty environment: the log path is written into the script.)
BWRAP_OK = 'echo "bwrap $*" >> LOGFILE; exit 0'
BWRAP_FORBIDDEN = f'echo "bwrap $*" >> LOGFILE; echo "{DEBIAN_REFUSAL}" >&2; exit 1'


def machine(tmp_path: Path, *, uid: int, managers=("apt-get",), sudo: str | None = None, bwrap: str | None = None) -> dict:
    """A fresh machine's PATH and environment: returns the env to run install.sh with."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in REAL_TOOLS:
        os.symlink(shutil.which(tool), bin_dir / tool)
    _script(bin_dir / "id", f'[ "$1" = "-u" ] && echo {uid} || echo "uid={uid}"')
    # Installing bubblewrap puts a working bwrap on PATH (what the real package does).
    log = tmp_path / "calls.log"
    installs = f'printf "%s\\n" "#!{BASH}" \'{BWRAP_OK.replace("LOGFILE", str(log))}\' > "$FAKE_BIN/bwrap"; chmod 755 "$FAKE_BIN/bwrap"'
    for manager in managers:
        _script(bin_dir / manager, f'echo "{manager} $*" >> "$LOG"\ncase "$*" in *bubblewrap*) {installs};; esac')
    if sudo is not None:
        allowed = sudo == "allowed"
        _script(bin_dir / "sudo", (
            'echo "sudo $*" >> "$LOG"\n'
            + ('[ "$1" = "-n" ] && shift\n"$@"' if allowed else 'echo "sudo: a password is required" >&2; exit 1')
        ))
    if bwrap is not None:
        _script(bin_dir / "bwrap", bwrap.replace("LOGFILE", str(log)))
    # python: pip records its calls; anything else is the interpreter running these tests.
    _script(bin_dir / "python3", (
        'if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then shift 2; echo "pip $*" >> "$LOG"; exit 0; fi\n'
        f'exec {sys.executable} "$@"'
    ))
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": str(bin_dir), "FAKE_BIN": str(bin_dir), "LOG": str(log),
        "HOME": str(home), "MGPT_HOME": str(home / ".cache" / "mgpt"), "LANG": "C.UTF-8",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }


def install(env: dict) -> tuple[subprocess.CompletedProcess, list[str]]:
    proc = subprocess.run([BASH, str(INSTALL)], env=env, capture_output=True, text=True, timeout=120)
    log = Path(env["LOG"])
    return proc, log.read_text().splitlines() if log.exists() else []


def pip_calls(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("pip ")]


def assert_pip_ran(calls: list[str], env: dict) -> None:
    pips = pip_calls(calls)
    assert pips[0] == "pip install -e .[all] -c constraints.txt"
    assert pips[-1] == f"pip download --quiet -d {env['MGPT_HOME']}/wheels pytest setuptools wheel"


def test_root_with_apt_installs_bubblewrap_then_checks_it(tmp_path):
    env = machine(tmp_path, uid=0)
    proc, calls = install(env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert calls[:2] == ["apt-get update -qq", "apt-get install -y bubblewrap"]
    assert_pip_ran(calls, env)
    assert any(c.startswith("bwrap --unshare-user") for c in calls)  # the namespace probe ran
    assert "ok    sandbox" in proc.stdout


@pytest.mark.parametrize(("manager", "command"), [("dnf", "dnf install -y bubblewrap"),
                                                  ("pacman", "pacman -S --noconfirm bubblewrap")])
def test_root_with_dnf_or_pacman(tmp_path, manager, command):
    proc, calls = install(machine(tmp_path, uid=0, managers=(manager,)))
    assert proc.returncode == 0 and calls[0] == command and "ok    sandbox" in proc.stdout


def test_passwordless_sudo_installs_it(tmp_path):
    env = machine(tmp_path, uid=1000, sudo="allowed")
    proc, calls = install(env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "sudo -n true" in calls
    assert "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y bubblewrap" in calls
    assert "apt-get install -y bubblewrap" in calls and "ok    sandbox" in proc.stdout
    assert_pip_ran(calls, env)


def test_no_permission_prints_the_one_command_and_goes_on(tmp_path):
    env = machine(tmp_path, uid=1000, sudo="password")
    proc, calls = install(env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not any(c.startswith("apt-get") for c in calls)
    assert "run: sudo apt-get install -y bubblewrap" in proc.stdout
    assert_pip_ran(calls, env)  # it went on
    assert "FAIL  sandbox" in proc.stdout and "bubblewrap (bwrap) is not installed" in proc.stdout


def test_no_sudo_at_all_prints_the_command(tmp_path):
    proc, calls = install(machine(tmp_path, uid=1000))
    assert proc.returncode == 0 and "run: sudo apt-get install -y bubblewrap" in proc.stdout


def test_bwrap_present_is_left_alone(tmp_path):
    env = machine(tmp_path, uid=0, bwrap=BWRAP_OK)
    proc, calls = install(env)
    assert proc.returncode == 0
    assert not any(c.startswith("apt-get") for c in calls) and "ok    sandbox" in proc.stdout
    assert_pip_ran(calls, env)


def test_namespaces_forbidden_says_so_and_names_the_way_out(tmp_path):
    env = machine(tmp_path, uid=0, bwrap=BWRAP_FORBIDDEN)
    proc, calls = install(env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if "sandbox" in line and "FAIL" in line)
    assert "cannot create namespaces" in line
    assert "sudo sysctl -w kernel." in line and "--sandbox none" in line
    assert_pip_ran(calls, env)


def test_probe_flags_are_the_sandbox_modules(tmp_path):
    """install.sh asks mgpt itself (doctor), so its probe is the one runs depend on."""
    from mgpt.sandbox.isolation import probe_args

    env = machine(tmp_path, uid=0, bwrap=BWRAP_OK)
    _, calls = install(env)
    probe = next(c for c in calls if c.startswith("bwrap "))
    assert probe == "bwrap " + " ".join(probe_args()[1:])

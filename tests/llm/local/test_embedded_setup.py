"""Set-up in two commands: CI installs and tests exactly as the README says, with torch pinned."""

import json
import re
import sys
from testpaths import ROOT, bench_command


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_ci_runs_the_readme_install_and_test_commands():
    readme = ROOT.joinpath("README.md").read_text()
    install = re.search(r"## Set up\n.*?```bash\n(.*?)```", readme, re.DOTALL).group(1).strip().splitlines()
    assert install == ['bash tools/install.sh && mgpt run "build a todo app"', "python -m pytest -q"]
    ci = [line.strip() for line in ROOT.joinpath(".ci/run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    # CI ends with nox, whose `full` session is the README's test command.
    assert "bash tools/install.sh" in ci and ci[-1].startswith("python3 -m nox -f .ci/noxfile.py")
    noxfile = ROOT.joinpath(".ci/noxfile.py").read_text()
    assert 'def full(' in noxfile and '"-m", "pytest", "-q"' in noxfile.split("def full(", 1)[1]
    script = ROOT.joinpath("tools/install.sh").read_text()
    assert '-m pip install -e ".[all]" -c constraints.txt' in script


def test_constraints_pin_the_cpu_torch_and_all_has_the_converter():
    pins = [line.strip() for line in ROOT.joinpath("constraints.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert "torch==2.13.0" in pins
    extras = tomllib.loads(ROOT.joinpath("pyproject.toml").read_text())["project"]["optional-dependencies"]
    everything = next(dep for dep in extras["all"] if dep.startswith("mgpt["))
    assert {"train", "dev", "serve"} <= set(everything[len("mgpt["):-1].split(","))
    assert any(dep.startswith("gguf") for dep in extras["all"])


def test_bench_embedded_counts_first_try_parses(tmp_path):
    """The run benchmark's figures, on a replayed run whose design needed one re-ask."""
    import subprocess

    ws = tmp_path / "ws"
    done = subprocess.run(
        [sys.executable, "-m", "mgpt", "run", "--replay", str(ROOT / "tests/golden/unit_converter.jsonl"), "-w", str(ws)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    analyzed = subprocess.run(bench_command("bench_embedded.py", "analyze", str(ws)), capture_output=True, text=True,
                              timeout=120)
    assert analyzed.returncode == 0, analyzed.stderr
    figures = json.loads(analyzed.stdout)
    assert figures["calls"] == 11 and figures["by_action"]["Architect.WriteDesign"] == 2
    assert (figures["structured_first_attempts"], figures["structured_first_try_ok"]) == (3, 2)
    assert figures["structured_first_try_has_json"] == 3 and figures["hit_token_limit"] == 0
    assert "PASSED" in " ".join(figures["qa_report"])

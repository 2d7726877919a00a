"""``mgpt doctor``: each check failing and passing, the exit code, the key never shown, and
:func:`setup_problem` naming the line to read for a run's set-up errors."""

import http.server
import json
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mgpt.cli import app
from mgpt.cli import doctor
from mgpt.cli.doctor import FAIL, OK, SKIP, WARN, build_context
from mgpt.llm.local import store
from mgpt.sandbox import isolation, project_env

CANARY = "sk-doctor-canary-5e6f7a8b"


def ctx(**kwargs):
    return build_context(**kwargs)


# --- python ------------------------------------------------------------------------------

def test_python_passes_with_the_core_packages():
    finding = doctor.check_python(ctx(model="openai:gpt-4o-mini"))
    assert finding.status in (OK, WARN) and f"Python {sys.version.split()[0]}" in finding.detail
    assert "pydantic" in finding.detail


def test_python_fails_without_a_core_package(monkeypatch):
    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda dist: None if dist == "openai" else real(dist))
    finding = doctor.check_python(ctx(model="openai:gpt-4o-mini"))
    assert finding.status == FAIL and "missing openai" in finding.detail and "tools/install.sh" in finding.fix


def test_python_fails_for_a_local_model_without_torch(monkeypatch):
    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda dist: None if dist == "torch" else real(dist))
    assert doctor.check_python(ctx(model="local")).status == FAIL
    served = doctor.check_python(ctx(model="openai:gpt-4o-mini"))
    assert served.status != FAIL and "local models would need torch" in served.detail


# --- sandbox -----------------------------------------------------------------------------

def test_sandbox_passes_where_bwrap_isolates(monkeypatch):
    monkeypatch.delenv("MGPT_SANDBOX", raising=False)
    monkeypatch.setattr(isolation, "bwrap_problem", lambda: None)
    assert doctor.check_sandbox(ctx()).status == OK


def test_sandbox_fails_without_bwrap_and_names_the_way_out(monkeypatch):
    monkeypatch.delenv("MGPT_SANDBOX", raising=False)
    monkeypatch.setattr(isolation, "bwrap_problem", lambda: "bubblewrap (bwrap) is not installed")
    finding = doctor.check_sandbox(ctx())
    assert finding.status == FAIL and "apt-get install bubblewrap" in finding.fix and "--sandbox none" in finding.fix
    monkeypatch.setattr(isolation, "bwrap_problem", lambda: "bubblewrap cannot create namespaces here (x)")
    assert "sysctl" in doctor.check_sandbox(ctx()).fix or "--sandbox none" in doctor.check_sandbox(ctx()).fix


def test_sandbox_none_is_a_warning(monkeypatch):
    monkeypatch.setattr(isolation, "bwrap_problem", lambda: None)
    finding = doctor.check_sandbox(ctx(sandbox="none"))
    assert finding.status == WARN and "UNISOLATED" in finding.detail
    assert doctor.check_sandbox(ctx(sandbox="docker")).status == FAIL


# --- wheel cache -------------------------------------------------------------------------

def test_wheel_cache_empty_fails_offline_and_warns_online(tmp_path, monkeypatch):
    monkeypatch.setenv("MGPT_HOME", str(tmp_path / "home"))
    finding = doctor.check_wheel_cache(ctx())  # conftest: MGPT_OFFLINE=1
    assert finding.status == FAIL and "is empty" in finding.detail
    assert finding.fix == project_env.fill_command()
    monkeypatch.delenv("MGPT_OFFLINE")
    assert doctor.check_wheel_cache(ctx()).status == WARN


def test_wheel_cache_filled_for_this_python_passes():
    if project_env.wheel_cache_problem() is not None:
        pytest.skip(f"the machine's wheel cache is not filled for this Python: {project_env.fill_command()}")
    finding = doctor.check_wheel_cache(ctx())
    assert finding.status == OK and f"Python {sys.version_info.major}.{sys.version_info.minor}" in finding.detail


# --- the embedded model ------------------------------------------------------------------

def fake_pulled_model(weights_hash: bool = True) -> Path:
    """A folder shaped like a pull's output (no torch: is_ready only looks at the files)."""
    path = store.model_path(store.DEFAULT_MODEL)
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "tokenizer.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"weights" * 100)
    manifest = {"name": store.DEFAULT_MODEL, "sha256": store.CATALOG[store.DEFAULT_MODEL].sha256}
    if weights_hash:
        manifest["weights_sha256"] = store.weights_digest(path)
    (path / store.MANIFEST).write_text(json.dumps(manifest))
    return path


def test_model_pulled_and_hash_good_passes():
    fake_pulled_model()
    finding = doctor.check_model(ctx(model="local"))
    assert finding.status == OK and "weights match" in finding.detail


def test_model_with_altered_weights_or_another_source_fails():
    path = fake_pulled_model()
    (path / "model.safetensors").write_bytes(b"tampered")
    finding = doctor.check_model(ctx(model="local"))
    assert finding.status == FAIL and "changed since the pull" in finding.detail and "--force" in finding.fix
    manifest = json.loads((path / store.MANIFEST).read_text())
    (path / store.MANIFEST).write_text(json.dumps({**manifest, "sha256": "0" * 64}))
    assert "converted from another file" in doctor.check_model(ctx(model="local")).detail


def test_model_not_pulled_warns_online_and_fails_offline(monkeypatch):
    finding = doctor.check_model(ctx(model="local"))  # conftest: offline, empty MGPT_HOME
    assert finding.status == FAIL and "not pulled yet" in finding.detail and finding.fix == "mgpt models pull"
    monkeypatch.delenv("MGPT_OFFLINE")
    assert doctor.check_model(ctx(model="local")).status == WARN


def test_model_check_skips_a_served_model_and_fails_a_bad_folder(tmp_path):
    assert doctor.check_model(ctx(model="openai:gpt-4o-mini")).status == SKIP
    assert doctor.check_model(ctx(model=f"hf:{tmp_path / 'nothing'}")).status == FAIL


# --- threads -----------------------------------------------------------------------------

def test_threads(monkeypatch):
    monkeypatch.setenv("MGPT_THREADS", "1")
    finding = doctor.check_threads(ctx())
    assert finding.status == OK and "1 torch thread(s) ($MGPT_THREADS)" in finding.detail
    monkeypatch.setenv("MGPT_THREADS", "lots")
    assert doctor.check_threads(ctx()).status == FAIL
    monkeypatch.setenv("MGPT_THREADS", "4096")
    assert doctor.check_threads(ctx()).status == WARN


# --- config and key ----------------------------------------------------------------------

def test_config_parses_or_fails(tmp_path):
    assert doctor.check_config(ctx()).status == OK
    good = tmp_path / "good.toml"
    good.write_text('model = "openai:gpt-4o-mini"\n')
    finding = doctor.check_config(ctx(config=good))
    assert finding.status == OK and str(good) in finding.detail and "openai:gpt-4o-mini" in finding.detail
    bad = tmp_path / "bad.toml"
    bad.write_text("model = [unclosed\n")
    finding = doctor.check_config(ctx(config=bad))
    assert finding.status == FAIL and "not valid TOML" in finding.detail
    assert doctor.check_key(ctx(config=bad)).status == SKIP


def test_key_source_is_named_never_the_key(tmp_path, monkeypatch):
    assert doctor.check_key(ctx(model="openai:gpt-4o-mini")).status == FAIL
    monkeypatch.setenv("MGPT_API_KEY", CANARY)
    finding = doctor.check_key(ctx(model="openai:gpt-4o-mini"))
    assert finding.status == OK and "$MGPT_API_KEY" in finding.detail and CANARY not in finding.line()
    monkeypatch.delenv("MGPT_API_KEY")
    key_file = tmp_path / "key"
    key_file.write_text(CANARY + "\n")
    key_file.chmod(0o600)
    config = tmp_path / "c.toml"
    config.write_text(f'model = "openai:gpt-4o-mini"\napi_key_file = "{key_file}"\n')
    finding = doctor.check_key(ctx(config=config))
    assert finding.status == OK and str(key_file) in finding.detail and CANARY not in finding.line()
    assert doctor.check_key(ctx(model="local")).status == SKIP


# --- base URL ----------------------------------------------------------------------------

class _Models(http.server.BaseHTTPRequestHandler):
    wanted_key = None

    def do_GET(self):  # noqa: N802
        refused = self.wanted_key and self.headers.get("Authorization") != f"Bearer {self.wanted_key}"
        self.send_response(401 if refused else 200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"data": []}')

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    _Models.wanted_key = None


def test_base_url_answers_or_not(server, monkeypatch):
    httpd, url = server
    assert doctor.check_base_url(ctx(model="openai:m")).status == SKIP  # none configured
    assert doctor.check_base_url(ctx(model="openai:m", base_url=url)).status == OK
    _Models.wanted_key = "right-key"
    monkeypatch.setenv("MGPT_API_KEY", CANARY)
    finding = doctor.check_base_url(ctx(model="openai:m", base_url=url))
    assert finding.status == FAIL and "refuses the API key" in finding.detail and CANARY not in finding.line()
    closed = f"http://127.0.0.1:{_free_port()}/v1"
    finding = doctor.check_base_url(ctx(model="openai:m", base_url=closed, timeout=1))
    assert finding.status == FAIL and "does not answer" in finding.detail


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- browser -----------------------------------------------------------------------------

def test_browser(monkeypatch):
    from mgpt.workflows import report

    monkeypatch.setattr(report, "find_browser", lambda: "/usr/bin/chromium")
    assert doctor.check_browser(ctx()).status == OK
    monkeypatch.setattr(report, "find_browser", lambda: None)
    finding = doctor.check_browser(ctx())
    assert finding.status == WARN and "apt-get install chromium" in finding.fix


# --- the command -------------------------------------------------------------------------

def test_command_exit_codes_and_one_line_per_check(monkeypatch, server):
    _, url = server
    monkeypatch.setenv("MGPT_API_KEY", CANARY)
    runner = CliRunner()
    result = runner.invoke(app, ["doctor", "--only", "config,key,base-url", "-m", "openai:m", "--base-url", url])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split()[1] for line in lines[:3]] == ["config", "key", "base-url"]
    assert "a run can succeed" in lines[-1] and CANARY not in result.output
    monkeypatch.delenv("MGPT_API_KEY")
    result = runner.invoke(app, ["doctor", "--only", "key", "-m", "openai:m"])
    assert result.exit_code == 1 and result.output.startswith("FAIL  key") and "cannot succeed" in result.output
    result = runner.invoke(app, ["doctor", "--only", "kettle"])
    assert result.exit_code == 2 and "no check kettle" in result.output


def test_whole_doctor_never_shows_the_key(monkeypatch, server):
    _, url = server
    monkeypatch.setenv("MGPT_API_KEY", CANARY)
    result = CliRunner().invoke(app, ["doctor", "-m", "openai:m", "--base-url", url])
    names = [line.split()[1] for line in result.output.strip().splitlines()[:-1]]
    assert names == list(doctor.CHECKS) and CANARY not in result.output


# --- what mgpt run asks -----------------------------------------------------------------

def test_setup_problem_names_the_line_to_read():
    from mgpt.cli.config import ConfigError
    from mgpt.llm.errors import ModelConfigError, ModelUnavailableError
    from mgpt.llm.local.store import EmbeddedModelError

    cases = {
        isolation.SandboxUnavailable("cannot isolate generated code: ..."): "sandbox",
        project_env.ProjectEnvError("cannot install pytest into the project environment"): "wheel-cache",
        EmbeddedModelError("the embedded model is not downloaded yet"): "model",
        ConfigError("config file x is not valid TOML"): "config",
        ModelConfigError("no API key for openai:m: set OPENAI_API_KEY"): "key",
        ModelConfigError("MGPT_THREADS='x' is not a whole number of threads"): "threads",
        ModelUnavailableError("openai:m at http://127.0.0.1:1/v1 kept failing: ...; last error: connection failed"): "base-url",
        ModuleNotFoundError("No module named 'torch'"): "python",
    }
    for exc, check in cases.items():
        assert doctor.setup_check(exc) == check, exc
        assert f"see its {check} line" in doctor.setup_problem(exc)
    assert doctor.setup_check(ModelUnavailableError("openai:m kept failing; last error: HTTP 429: slow down")) is None
    assert doctor.setup_problem(ValueError("a bug")) is None
    assert doctor.setup_problem(ModelConfigError("unknown model spec 'x'")) is None


def test_tested_pythons_match_ci_and_pyproject():
    from testpaths import ROOT

    text = (ROOT / ".ci" / "noxfile.py").read_text()
    listed = text.split("PYTHONS = [", 1)[1].split("]", 1)[0]
    assert [v.strip().strip('"') for v in listed.split(",") if v.strip()] == list(doctor.TESTED_PYTHONS)
    assert f'requires-python = ">={doctor.TESTED_PYTHONS[0]}"' in (ROOT / "pyproject.toml").read_text()

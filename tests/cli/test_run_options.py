"""``mgpt run``'s workspace default, ``--sop``, and the options objects behind it."""

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mgpt.agents.team import RunResult
from mgpt.agents.budget import Spend
from mgpt.cli import app
from mgpt.cli.run import project_folder
from mgpt.llm.backends.replay import ReplayModel
from mgpt.llm.backends.testing import TestModel
from mgpt.workflows import RunOptions, Sop, register_sop, run_company
from mgpt.workflows.sops import _REGISTRY, UnknownSop, available_sops, get_sop
from testpaths import GOLDEN

TODO = GOLDEN / "todo_cli.jsonl"


def test_project_folder_is_named_after_the_idea(tmp_path):
    assert project_folder("build a todo app", tmp_path).name == "todo_app"
    assert project_folder("Write me a simple URL shortener, please", tmp_path).name == "url_shortener"
    assert project_folder("2048 game", tmp_path).name == "project_2048_game"
    assert project_folder("!!!", tmp_path).name == "project"
    (tmp_path / "todo_app").mkdir()
    assert project_folder("build a todo app", tmp_path).name == "todo_app"  # empty: reused
    (tmp_path / "todo_app" / "x.py").write_text("")
    assert project_folder("build a todo app", tmp_path).name == "todo_app_2"  # taken: the next free name
    (tmp_path / "todo_app_2").write_text("a file")
    assert project_folder("build a todo app", tmp_path).name == "todo_app_3"


def test_a_run_without_w_writes_a_folder_named_after_the_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = CliRunner().invoke(app, ["run", "--replay", str(TODO), "--sandbox", "none"])
    second = CliRunner().invoke(app, ["run", "--replay", str(TODO), "--sandbox", "none"])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert len(folders) == 2 and folders[1] == folders[0] + "_2" and not (tmp_path / "workspace").exists()
    assert f"workspace: {folders[0]}/" in first.output
    assert (tmp_path / folders[0] / "todo_cli" / "__init__.py").exists()


def test_resume_and_inc_need_a_workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", "--resume", "--replay", str(TODO)])
    assert result.exit_code == 2 and "mgpt run --resume -w FOLDER" in result.output
    result = CliRunner().invoke(app, ["run", "--inc", "add a flag", "--replay", str(TODO)])
    assert result.exit_code == 2 and "mgpt run --inc -w FOLDER" in result.output


def test_unknown_sop_names_the_ones_there(tmp_path):
    result = CliRunner().invoke(app, ["run", "x", "--sop", "nope", "-w", str(tmp_path / "ws"), "-m", "test"])
    assert result.exit_code == 2 and "no SOP named 'nope'" in result.output and "software" in result.output
    with pytest.raises(UnknownSop):
        get_sop("nope")
    assert "software" in available_sops()


class _Done:
    """A result as an SOP returns it (what ``mgpt run`` reports)."""

    def __init__(self, workspace: Path, ok: bool) -> None:
        self.ok, self.workspace, self.files, self.notes = ok, workspace, ["brief.md"], ["a note"]
        self.run = RunResult(stop_reason="idle", rounds=1, seconds=0.0, spend=Spend(), messages=[], detail="done")
        self.transcript = workspace / ".mgpt" / "transcript.jsonl"
        self.log = workspace / ".mgpt" / "run.jsonl"


@pytest.fixture
def echo_sop(monkeypatch):
    seen = {}

    async def run(idea, *, model, options, **own):
        seen.update(idea=idea, options=options, own=own, model=model.name)
        await model.aclose()
        root = Path(options.workspace)
        root.mkdir(parents=True, exist_ok=True)
        (root / "brief.md").write_text(idea)
        return _Done(root, ok=idea != "fail")

    monkeypatch.setitem(_REGISTRY, "echo", Sop(name="echo", summary="Writes the idea down.", roles=("Scribe",), run=run))
    return seen


def test_a_registered_sop_runs_from_the_cli(tmp_path, echo_sop):
    ws = tmp_path / "ws"
    result = CliRunner().invoke(app, ["run", "jot this", "--sop", "echo", "-m", "test", "-w", str(ws), "--max-rounds", "3"])
    assert result.exit_code == 0, result.output
    assert (ws / "brief.md").read_text() == "jot this"
    assert echo_sop["options"].max_rounds == 3 and echo_sop["own"] == {} and echo_sop["model"] == "test"
    assert "note: a note" in result.output
    failed = CliRunner().invoke(app, ["run", "fail", "--sop", "echo", "-m", "test", "-w", str(tmp_path / "w2")])
    assert failed.exit_code == 1


def test_a_flag_the_sop_does_not_take_is_refused(tmp_path, echo_sop):
    result = CliRunner().invoke(app, ["run", "x", "--sop", "echo", "-m", "test", "-w", str(tmp_path / "ws"), "--fix-rounds", "5"])
    assert result.exit_code == 2 and "--fix-rounds is not an option of the 'echo' SOP" in result.output
    assert not echo_sop


def test_register_sop_checks_the_name():
    with pytest.raises(ValueError):
        register_sop(Sop(name="two words", summary="", roles=(), run=None))


def test_run_company_takes_options_or_keywords(tmp_path):
    from mgpt.llm.backends.replay import Transcript

    idea = Transcript.load(TODO).header.idea
    options = RunOptions(workspace=tmp_path / "a", sandbox="none", history=False)
    result = asyncio.run(run_company(idea, model=ReplayModel(TODO), options=options))
    assert result.ok and result.workspace == (tmp_path / "a").resolve()
    # the same fields as keywords, and the company's own beside them
    result = asyncio.run(run_company(idea, model=ReplayModel(TODO), workspace=tmp_path / "b", sandbox="none",
                                     history=False, fix_rounds=2))
    assert result.ok
    with pytest.raises(TypeError, match="unexpected options: colour"):
        asyncio.run(run_company("x", model=ReplayModel(TODO), workspace=tmp_path / "c", colour="red"))


def test_parallel_is_a_company_option_and_refused_elsewhere(tmp_path, echo_sop):
    result = CliRunner().invoke(app, ["run", "x", "--sop", "echo", "-m", "test", "-w", str(tmp_path / "ws"), "--parallel", "2"])
    assert result.exit_code == 2 and "--parallel is not an option of the 'echo' SOP" in result.output
    zero = CliRunner().invoke(app, ["run", "x", "-m", "test", "-w", str(tmp_path / "w0"), "--parallel", "0"])
    assert zero.exit_code == 2 and "--parallel" in zero.output
    from mgpt.workflows.software_company import CompanyOptions, build_team

    assert CompanyOptions().parallel is None
    with pytest.raises(ValueError, match="parallel must be at least 1"):
        build_team(TestModel([]), tmp_path, parallel=0)
    assert build_team(TestModel([]), tmp_path, parallel=3).context.settings["parallel"] == 3


def test_a_set_up_failure_points_to_mgpt_doctor(tmp_path):
    result = CliRunner().invoke(app, ["run", "--replay", str(TODO), "-w", str(tmp_path / "ws"), "--sandbox", "chroot"])
    assert result.exit_code == 2
    assert "unknown sandbox 'chroot'" in result.output and "`mgpt doctor`" in result.output and "sandbox line" in result.output

"""The ``mgpt eval`` group (perplexity, text, all) through typer's CliRunner: tables, JSON output, and bad input answered
with a message and exit code 2 (no traceback)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from mgpt.cli.eval import register

PREDICTIONS = ["the cat sat on the mat", "hello world"]
REFERENCES = ["a cat was sitting on the mat", "hello there world"]


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _invoke(*args: str, command: str = "all"):
    return CliRunner().invoke(_app(), ["eval", command, *args])


@pytest.fixture
def files(tmp_path):
    preds, refs = tmp_path / "preds.txt", tmp_path / "refs.txt"
    preds.write_text("\n".join(PREDICTIONS) + "\n")
    refs.write_text("\n".join(REFERENCES) + "\n")
    return preds, refs


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    from mgpt.llm.local.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


def test_text_metrics_table_and_json(files, tmp_path):
    pytest.importorskip("sacrebleu")
    preds, refs = files
    out = tmp_path / "out" / "results.json"
    result = _invoke("--predictions", str(preds), "--references", str(refs), "--json", str(out), "--no-meteor-wordnet",
                     command="text")
    assert result.exit_code == 0, result.output
    for label in ("BLEU", "ROUGE-1", "ROUGE-L", "METEOR (no WordNet)"):
        assert label in result.stdout
    assert "exact and stem matches only" in result.stderr
    data = json.loads(out.read_text())["text_metrics"]
    assert data["count"] == 2 and data["meteor_wordnet"] is False
    assert 0 < data["bleu"] < 100 and 0 < data["rouge1"] < 1


def test_perplexity_and_metrics_together(files, tiny_dir, tmp_path):
    preds, refs = files
    text = tmp_path / "text.txt"
    text.write_text("The quick brown fox jumps over the lazy dog.")
    out = tmp_path / "r.json"
    result = _invoke(
        "--model", str(tiny_dir), "--text", str(text), "--block-size", "8", "--stride", "4",
        "-p", str(preds), "-r", str(refs), "--json", str(out), "--no-meteor-wordnet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "perplexity" in result.stdout and "BLEU" in result.stdout
    data = json.loads(out.read_text())
    assert data["perplexity"]["block_size"] == 8 and data["perplexity"]["stride"] == 4
    assert data["perplexity"]["perplexity"] > 1 and "text_metrics" in data


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda p, r, d: ["-p", str(d / "missing.txt"), "-r", str(r)], "does not exist"),
        (lambda p, r, d: ["-p", str(p), "-r", str(d / "short.txt")], "2 predictions but"),
        (lambda p, r, d: ["--model", str(d), "--text", str(p)], "not a Hugging Face checkpoint"),
        (lambda p, r, d: ["--model", str(d / "nope"), "--text", str(p)], "does not exist"),
        (lambda p, r, d: ["--text", str(p)], "--text needs --model"),
        (lambda p, r, d: [], "Nothing to evaluate"),
        (lambda p, r, d: ["-p", str(p)], "--references"),
    ],
    ids=["missing-file", "mismatched-lines", "not-a-checkpoint", "no-model-folder", "text-alone", "nothing", "plain-alone"],
)
def test_bad_input_exits_2_with_a_message(files, tmp_path, make_args, message):
    preds, refs = files
    (tmp_path / "short.txt").write_text("only one line\n")
    result = _invoke(*make_args(preds, refs, tmp_path), "--no-meteor-wordnet")
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_perplexity_missing_text_file_exits_2(tiny_dir, tmp_path):
    result = _invoke("--model", str(tiny_dir), "--text", str(tmp_path / "nope.txt"), command="perplexity")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_help_explains_options():
    result = CliRunner().invoke(_app(), ["eval", "--help"])
    assert result.exit_code == 0
    for command in ("perplexity", "text", "all"):
        assert command in result.stdout
    result = CliRunner().invoke(_app(), ["eval", "all", "--help"])
    for option in ("--model", "--text", "--predictions", "--references", "--json", "--stride"):
        assert option in result.stdout


def test_perplexity_command_alone(tiny_dir, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("The quick brown fox jumps over the lazy dog.")
    out = tmp_path / "p.json"
    result = _invoke("--model", str(tiny_dir), "--text", str(text), "--block-size", "8", "--json", str(out),
                     command="perplexity")
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data) == {"perplexity"} and data["perplexity"]["perplexity"] > 1
    result = _invoke("--text", str(text), command="perplexity")
    assert result.exit_code == 2 and "--model" in result.output

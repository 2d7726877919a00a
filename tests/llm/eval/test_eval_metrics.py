"""BLEU/ROUGE/METEOR agree with sacrebleu, rouge_score and nltk; WordNet is built from the
Debian packages when they are installed, and METEOR falls back (and says so) otherwise."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

sacrebleu = pytest.importorskip("sacrebleu")
rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
meteor_module = pytest.importorskip("nltk.translate.meteor_score")

from mgpt.llm.eval.errors import EvalInputError  # noqa: E402
from mgpt.llm.eval.metrics import _words, compute_text_metrics, read_predictions  # noqa: E402
from mgpt.llm.eval.wordnet import (  # noqa: E402
    LEXNAMES,
    NoWordNet,
    build_nltk_wordnet,
    find_debian_wordnet,
    load_wordnet,
)

PREDICTIONS = [
    "the cat sat on the mat",
    "a quick brown fox leaps over lazy dogs",
    "roles turn an idea into working software",
]
REFERENCES = [
    "a cat was sitting on the rug",
    "the quick brown fox jumps over the lazy dog",
    "the roles turn a one-line idea into software that works",
]

DEBIAN_WORDNET = find_debian_wordnet([Path("/usr/share/wordnet")])


def test_identical_texts_score_perfectly():
    scores = compute_text_metrics(REFERENCES, REFERENCES, wordnet=False)
    assert scores.count == 3
    assert scores.bleu == pytest.approx(100.0)
    assert scores.rouge1 == scores.rouge2 == scores.rougeL == pytest.approx(1.0)
    assert scores.meteor > 0.99


def test_bleu_and_rouge_agree_with_the_libraries():
    scores = compute_text_metrics(PREDICTIONS, REFERENCES, wordnet=False)
    assert scores.bleu == pytest.approx(sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES]).score)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    by_pair = [scorer.score(r, p) for p, r in zip(PREDICTIONS, REFERENCES)]
    for key in ("rouge1", "rouge2", "rougeL"):
        expected = sum(s[key].fmeasure for s in by_pair) / len(by_pair)
        assert getattr(scores, key) == pytest.approx(expected)
    assert 0 < scores.bleu < 100 and 0 < scores.rougeL < 1


def test_meteor_fallback_is_exact_and_stem_matching_and_says_so():
    scores = compute_text_metrics(PREDICTIONS, REFERENCES, wordnet=False)
    assert scores.meteor_wordnet is False
    assert "off" in scores.meteor_note
    expected = sum(
        meteor_module.meteor_score([_words(r)], _words(p), wordnet=NoWordNet())
        for p, r in zip(PREDICTIONS, REFERENCES)
    ) / len(PREDICTIONS)
    assert math.isfinite(scores.meteor) and scores.meteor == pytest.approx(expected)
    assert 0 < scores.meteor < 1


def test_lexnames_table_is_complete():
    assert [number for number, _, _ in LEXNAMES] == list(range(45))
    assert LEXNAMES[3] == (3, "noun.Tops", 1) and LEXNAMES[44] == (44, "adj.ppl", 3)


def test_missing_wordnet_falls_back(tmp_path):
    assert find_debian_wordnet([tmp_path]) is None
    source = load_wordnet(source=tmp_path, nltk_data=tmp_path / "data", use_nltk_data=False)
    assert source.available is False and "not found" in source.location
    assert source.reader.synsets("dog") == []


@pytest.mark.skipif(
    DEBIAN_WORDNET is None,
    reason="Debian WordNet not installed (apt-get install wordnet-base wordnet-sense-index)",
)
def test_meteor_with_debian_wordnet(tmp_path_factory):
    data = tmp_path_factory.mktemp("nltk_data")
    source = load_wordnet(source=DEBIAN_WORDNET, nltk_data=data, use_nltk_data=False)
    assert source.available
    lexnames = (data / "corpora" / "wordnet" / "lexnames").read_text().splitlines()
    assert len(lexnames) == 45 and lexnames[0] == "00\tadj.all\t3"
    assert "rug" in {lemma.name() for s in source.reader.synsets("carpet") for lemma in s.lemmas()}
    # Building again keeps what is there.
    assert build_nltk_wordnet(DEBIAN_WORDNET, data) == data

    expected = sum(
        meteor_module.meteor_score([_words(r)], _words(p), wordnet=source.reader)
        for p, r in zip(PREDICTIONS, REFERENCES)
    ) / len(PREDICTIONS)
    # The metrics use the default search, which may find nltk's own WordNet first; both
    # are WordNet 3.0, so they agree.
    scores = compute_text_metrics(PREDICTIONS, REFERENCES)
    assert scores.meteor_wordnet is True
    assert scores.meteor == pytest.approx(expected)
    # Synonyms only add matches.
    assert scores.meteor >= compute_text_metrics(PREDICTIONS, REFERENCES, wordnet=False).meteor


def test_length_mismatch_is_a_clear_error():
    with pytest.raises(EvalInputError, match="3 predictions but 2 references"):
        compute_text_metrics(PREDICTIONS, REFERENCES[:2], wordnet=False)


def test_read_predictions_plain_and_jsonl(tmp_path):
    preds, refs = tmp_path / "p.txt", tmp_path / "r.txt"
    preds.write_text("\n".join(PREDICTIONS) + "\n")
    refs.write_text("\n".join(REFERENCES) + "\n")
    assert read_predictions(preds, refs) == (PREDICTIONS, REFERENCES)

    both = tmp_path / "both.jsonl"
    both.write_text(
        "\n".join(json.dumps({"prediction": p, "reference": r}) for p, r in zip(PREDICTIONS, REFERENCES)) + "\n"
    )
    assert read_predictions(both) == (PREDICTIONS, REFERENCES)
    assert read_predictions(both, refs) == (PREDICTIONS, REFERENCES)


def test_read_predictions_errors(tmp_path):
    preds, refs = tmp_path / "p.txt", tmp_path / "r.txt"
    preds.write_text("one\ntwo\n")
    refs.write_text("one\n")
    with pytest.raises(EvalInputError, match="2 predictions but .* 1 references"):
        read_predictions(preds, refs)
    with pytest.raises(EvalInputError, match="does not exist"):
        read_predictions(tmp_path / "missing.txt", refs)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(EvalInputError, match="empty"):
        read_predictions(tmp_path / "empty.txt", refs)
    with pytest.raises(EvalInputError, match="--references"):
        read_predictions(preds)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prediction": "x"}\n')
    with pytest.raises(EvalInputError, match="'reference'"):
        read_predictions(bad)
    bad.write_text("not json\n")
    with pytest.raises(EvalInputError, match="line 1 is not JSON"):
        read_predictions(bad)

"""BLEU, ROUGE and METEOR of generations against references.

The scores come from the reference implementations, each on its own native scale:

- BLEU: sacrebleu's corpus BLEU (0-100, its default 13a tokenisation);
- ROUGE-1/2/L: rouge_score F-measures with Porter stemming, averaged over pairs (0-1);
- METEOR: nltk's ``meteor_score`` averaged over pairs (0-1), on lower-cased words split
  from punctuation, with WordNet synonyms when :mod:`mgpt.llm.eval.wordnet` finds
  WordNet and exact-plus-stem matching otherwise (``meteor_wordnet`` records which).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from mgpt.llm.eval.errors import EvalInputError

__all__ = [
    "TextMetrics",
    "compute_text_metrics",
    "read_predictions",
    "read_texts",
]

_WORDS = re.compile(r"\w+|[^\w\s]")


@dataclass
class TextMetrics:
    """Corpus scores of ``count`` prediction/reference pairs."""

    count: int
    #: sacrebleu corpus BLEU, 0-100.
    bleu: float
    #: Mean rouge_score F-measures, 0-1.
    rouge1: float
    rouge2: float
    rougeL: float
    #: Mean nltk METEOR, 0-1.
    meteor: float
    #: True when METEOR matched WordNet synonyms; False for exact and stem matches only.
    meteor_wordnet: bool
    #: Where WordNet came from, or why it was not used.
    meteor_note: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _words(text: str) -> list[str]:
    # nltk's word_tokenize needs the punkt model (a download); a regex split of words
    # and punctuation is what METEOR needs and is reproducible everywhere.
    return _WORDS.findall(text.lower())


def compute_text_metrics(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    wordnet: bool = True,
) -> TextMetrics:
    """Score ``predictions`` against ``references`` (same length, paired by position).

    ``wordnet=False`` forces METEOR's exact-and-stem fallback even where WordNet exists.
    """
    if len(predictions) != len(references):
        raise EvalInputError(
            f"{len(predictions)} predictions but {len(references)} references: "
            "give exactly one reference per prediction, in the same order."
        )
    if not predictions:
        raise EvalInputError("There are no predictions to score.")

    import sacrebleu
    from nltk.translate.meteor_score import meteor_score
    from rouge_score import rouge_scorer

    from mgpt.llm.eval.wordnet import load_wordnet

    bleu = sacrebleu.corpus_bleu(list(predictions), [list(references)]).score

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    sums = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for prediction, reference in zip(predictions, references):
        scores = scorer.score(reference, prediction)  # (target, prediction) order
        for key in sums:
            sums[key] += scores[key].fmeasure

    source = load_wordnet(enabled=wordnet)
    meteor = sum(
        meteor_score([_words(reference)], _words(prediction), wordnet=source.reader)
        for prediction, reference in zip(predictions, references)
    )

    n = len(predictions)
    return TextMetrics(
        count=n,
        bleu=float(bleu),
        rouge1=sums["rouge1"] / n,
        rouge2=sums["rouge2"] / n,
        rougeL=sums["rougeL"] / n,
        meteor=float(meteor) / n,
        meteor_wordnet=source.available,
        meteor_note=source.location,
    )


def _is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in (".jsonl", ".ndjson")


def _read_lines(path: Path, what: str) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise EvalInputError(f"The {what} file {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise EvalInputError(f"The {what} file {path} is not UTF-8 text ({exc}).") from None
    lines = text.splitlines()
    if not lines:
        raise EvalInputError(f"The {what} file {path} is empty.")
    return lines


def _read_jsonl(path: Path, what: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(_read_lines(path, what), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalInputError(f"{path} line {number} is not JSON ({exc.msg}).") from None
        if not isinstance(row, dict):
            raise EvalInputError(f"{path} line {number} is not a JSON object.")
        rows.append(row)
    if not rows:
        raise EvalInputError(f"The {what} file {path} has no JSON lines.")
    return rows


def _field(rows: list[dict[str, Any]], key: str, path: Path) -> list[str]:
    values = []
    for number, row in enumerate(rows, start=1):
        value = row.get(key)
        if not isinstance(value, str):
            raise EvalInputError(
                f"{path} record {number} has no string field {key!r} "
                f"(fields: {', '.join(sorted(row)) or 'none'})."
            )
        values.append(value)
    return values


def read_texts(path: Path, field: str) -> list[str]:
    """One text per line of ``path``; for ``.jsonl`` files, the string ``field`` of each
    JSON object (``prediction`` or ``reference``)."""
    path = Path(path)
    what = f"{field}s"
    if _is_jsonl(path):
        return _field(_read_jsonl(path, what), field, path)
    return _read_lines(path, what)


def read_predictions(predictions: Path, references: Path | None = None) -> tuple[list[str], list[str]]:
    """Read generations (predictions) and their references, checking they line up.

    With ``references`` omitted, ``predictions`` must be a JSONL file whose records carry
    both ``prediction`` and ``reference``.
    """
    predictions = Path(predictions)
    if references is None:
        if not _is_jsonl(predictions):
            raise EvalInputError(
                f"{predictions} is plain text, so give the references too (--references FILE), "
                "or use a .jsonl file with 'prediction' and 'reference' fields."
            )
        rows = _read_jsonl(predictions, "predictions")
        preds, refs = _field(rows, "prediction", predictions), _field(rows, "reference", predictions)
    else:
        preds = read_texts(predictions, "prediction")
        refs = read_texts(Path(references), "reference")
    if len(preds) != len(refs):
        raise EvalInputError(
            f"{predictions} has {len(preds)} predictions but {references} has {len(refs)} "
            "references: the files must line up one to one."
        )
    return preds, refs

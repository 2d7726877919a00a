"""Distillation: recorded company runs become chat examples for ``mgpt train sft`` / ``lora``.

Every model call in a transcript (:mod:`mgpt.llm.backends.replay`) is one example: the request's
messages followed by the recorded answer as the assistant turn, so a small local model
learns to answer what the hosted model answered, in the company's own prompt format::

    {"messages": [{"role": "system", ...}, {"role": "user", ...}, {"role": "assistant", ...}],
     "meta": {"role": "Engineer", "action": "WriteCode", "turn": 2, "run": "runs/a/transcript.jsonl",
              "model": "openai:gpt-4o-mini"}}

The chat reader (:func:`mgpt.llm.train.data.read_chat_jsonl`) reads ``messages`` and
ignores ``meta``; the tags are there for filtering and for the counts in ``distil.json``.

Why the split is by run and never by call: the calls of one run share most of their
prompt (the PRD is quoted in the design request, the design in every code request), so a
validation call from a run whose other calls were trained on measures memory, not
learning. Whole transcript files go to validation instead, chosen by a hash of the file's
content: the same runs land in the same split wherever the files are, and adding a run
never moves the others.

Duplicates (the same messages and answer, e.g. a run replayed and re-recorded) are kept
once; a validation example that also occurs in training is dropped from validation.
Transcripts hold no keys, but every text still goes through
:func:`mgpt.agents.secrets.redact`, so a key that leaked into a prompt never reaches a
training file.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from mgpt.agents.secrets import redact

from mgpt.llm.errors import TranscriptError
from mgpt.llm.backends.replay import Transcript
from mgpt.llm.train.errors import TrainError

__all__ = ["DistilResult", "distil", "expand_transcripts", "examples_of", "split_runs"]


@dataclass
class DistilResult:
    """What :func:`distil` wrote, with counts for the report and ``distil.json``."""

    train_path: str
    val_path: str | None
    train_runs: list[str]
    val_runs: list[str]
    train_examples: int
    val_examples: int
    duplicates: int
    """Examples dropped because an identical one was already kept."""
    skipped: int
    """Calls with no answer text (nothing to learn) or filtered out by ``roles``."""
    by_action: dict[str, int] = field(default_factory=dict)
    """Kept examples per ``Role/Action``, both splits together."""

    def to_dict(self) -> dict:
        return asdict(self)


def expand_transcripts(patterns: Iterable[str | Path]) -> list[Path]:
    """Files matched by ``patterns`` (paths or globs, ``**`` recursive; a folder means every
    ``*.jsonl`` under it), sorted and without repeats; an error if nothing matches."""
    found: dict[str, Path] = {}
    patterns = [str(p) for p in patterns]
    for pattern in patterns:
        expanded = os.path.expanduser(pattern)
        if os.path.isdir(expanded):
            matches = glob.glob(os.path.join(expanded, "**", "*.jsonl"), recursive=True)
        elif glob.has_magic(expanded):
            matches = glob.glob(expanded, recursive=True)
        else:
            matches = [expanded]
        for m in matches:
            p = Path(m)
            if p.is_file():
                found.setdefault(str(p.resolve()), p)
            elif not glob.has_magic(expanded):
                raise TrainError(f"transcript not found: {p} (record one with `mgpt run --record FILE`; "
                                 "every run also writes WORKSPACE/.mgpt/transcript.jsonl)")
    if not found:
        raise TrainError(f"no transcript matches {', '.join(patterns) or '(nothing given)'}: give files, folders "
                         "or a quoted glob such as 'runs/**/transcript.jsonl'")
    return [found[k] for k in sorted(found)]


def _run_key(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split_runs(paths: list[Path], val_fraction: float) -> tuple[list[Path], list[Path]]:
    """``(train, val)`` transcript files: ``round(n * val_fraction)`` runs, at least one when
    there are two or more and ``val_fraction > 0``, go to validation, picked by content hash."""
    if not 0.0 <= val_fraction < 1.0:
        raise TrainError(f"val_fraction must be in [0, 1), not {val_fraction}")
    n_val = 0
    if len(paths) >= 2 and val_fraction > 0:
        n_val = min(len(paths) - 1, max(1, round(len(paths) * val_fraction)))
    ranked = sorted(paths, key=lambda p: (_run_key(p), str(p)))
    val = set(map(str, ranked[:n_val]))
    return [p for p in paths if str(p) not in val], [p for p in paths if str(p) in val]


def examples_of(path: Path, roles: set[str] | None = None) -> tuple[list[dict], int]:
    """The chat examples of one transcript, and how many calls were skipped."""
    try:
        transcript = Transcript.load(path)
    except TranscriptError as e:
        raise TrainError(str(e)) from None
    examples, skipped = [], 0
    for call in transcript.calls:
        if (roles and call.role not in roles) or not call.response.text.strip():
            skipped += 1
            continue
        messages = [{"role": m.role, "content": redact(m.content)} for m in call.request]
        messages.append({"role": "assistant", "content": redact(call.response.text)})
        if messages[0]["role"] == "assistant":  # the chat reader refuses these: nothing to condition on
            skipped += 1
            continue
        examples.append({"messages": messages, "meta": {
            "role": call.role, "action": call.action, "turn": call.turn, "run": str(path),
            "model": transcript.header.model}})
    return examples, skipped


def _key(example: dict) -> str:
    return hashlib.sha256(json.dumps(example["messages"], sort_keys=True).encode()).hexdigest()


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def distil(
    transcripts: Iterable[str | Path],
    out_dir: str | Path,
    *,
    val_fraction: float = 0.2,
    roles: Iterable[str] | None = None,
) -> DistilResult:
    """Write ``out_dir/train.jsonl``, ``out_dir/val.jsonl`` (when a run is held out) and
    ``out_dir/distil.json`` from the transcripts; ``roles`` keeps only those roles' calls."""
    paths = expand_transcripts(transcripts)
    role_set = set(roles) if roles else None
    train_runs, val_runs = split_runs(paths, val_fraction)
    seen: set[str] = set()
    duplicates = skipped = 0
    by_action: Counter[str] = Counter()
    splits: dict[str, list[dict]] = {"train": [], "val": []}
    # Training runs first, so an example found in both splits stays in training only.
    for split, runs in (("train", train_runs), ("val", val_runs)):
        for path in runs:
            examples, n_skipped = examples_of(path, role_set)
            skipped += n_skipped
            for ex in examples:
                key = _key(ex)
                if key in seen:
                    duplicates += 1
                    continue
                seen.add(key)
                splits[split].append(ex)
                by_action[f"{ex['meta']['role']}/{ex['meta']['action']}"] += 1
    if not splits["train"]:
        what = f" of roles {sorted(role_set)}" if role_set else ""
        raise TrainError(f"no model calls{what} with an answer in the training runs "
                         f"({', '.join(map(str, train_runs))}): nothing to learn from")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_path, val_path = out / "train.jsonl", out / "val.jsonl"
    _write_jsonl(train_path, splits["train"])
    if splits["val"]:
        _write_jsonl(val_path, splits["val"])
    elif val_path.exists():
        val_path.unlink()  # a stale validation file from an earlier distil would be trained against
    result = DistilResult(
        train_path=str(train_path), val_path=str(val_path) if splits["val"] else None,
        train_runs=list(map(str, train_runs)), val_runs=list(map(str, val_runs)),
        train_examples=len(splits["train"]), val_examples=len(splits["val"]),
        duplicates=duplicates, skipped=skipped, by_action=dict(sorted(by_action.items())),
    )
    (out / "distil.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    return result

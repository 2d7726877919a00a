"""``mgpt eval write``: the writers' room against one call, on the Python HOWTOs.

One task per HOWTO of the documentation's ``howto/`` folder: its title is the brief; the
sources are the library reference (``library/``) less the pages quoting the HOWTO (the
leak guard, :meth:`~mgpt.domains.pydocs.howtos.Howto.sources`); the HOWTO itself is the
reference the document is scored against. Rows, each with the same model:

- ``single``: one call, "write a HOWTO on X", no sources;
- ``room-no-exec``: the writers' room without the tester (nobody runs the examples);
- ``room``: the full room.

Scores against the real HOWTO: ROUGE-L and METEOR (:mod:`mgpt.llm.eval.metrics`, on the
HOWTO as plain text and the document as written) and the share of the HOWTO's API names
(``:func:``, ``:class:``, ``:meth:`` targets) the document covers. Our own checks: the share
of the document's code examples that run in the sandbox (run again here, for every row),
and the share of its citations whose quotation appears in the cited source. Every prompt
of every run is checked against the HOWTO's text: ``leaked`` counts the prompts holding
twelve words of it in a row (the sources cannot carry any; a model that recites the HOWTO
from memory into a draft can).

The split: :data:`TUNE` are the HOWTOs prompts and settings were tried on; every other
HOWTO is reported, and never tuned on.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from mgpt.actions.document_checks import check_citations, run_examples
from mgpt.actions.writing import DOCUMENT, Research
from mgpt.agents.errors import MgptError
from mgpt.domains.pydocs.corpus import DEBIAN_SOURCES, Corpus, load_corpus
from mgpt.domains.pydocs.howtos import Howto, LeakGuard, api_coverage, howtos
from mgpt.llm.backends.base import Model
from mgpt.llm.backends.client import LLM
from mgpt.llm.backends.replay import RecordingModel, Transcript, TranscriptHeader
from mgpt.sandbox.isolation import Limits
from mgpt.workflows.harness import RunOptions
from mgpt.workflows.writing import RoomOptions, run_writers_room

__all__ = ["ROWS", "TUNE", "RowScore", "WriteEvalOptions", "WriteEvalResult", "format_table", "run_write_eval",
           "score_document", "select_tasks"]

ROWS = ("single", "room-no-exec", "room")
#: The HOWTOs the room's prompts and settings were tried on: never reported.
TUNE = ("sorting", "argparse")
SINGLE_PROMPT = ("Write {brief} for Python programmers, in Markdown: a title, a few sections, and code "
                 "examples in ```python blocks that run on their own.")


@dataclass
class WriteEvalOptions:
    """What ``mgpt eval write`` runs."""

    model: str = "local"
    base_url: str | None = None
    #: the documentation's sources: ``howto/`` (the tasks) and ``library/`` (the sources)
    sources: str | Path = DEBIAN_SOURCES
    #: "report" (every HOWTO not in TUNE), "tune", or "all"
    split: str = "report"
    #: only these HOWTOs (names, e.g. "enum"), within the split
    tasks: list[str] = field(default_factory=list)
    rows: Sequence[str] = ROWS
    out: str | Path = "runs/eval_write"
    #: completion tokens one call may use
    max_new_tokens: int = 512
    sections: int = 3
    fix_rounds: int = 1
    revision_rounds: int = 1
    threads: int | None = None
    #: called with a line of progress
    progress: Callable[[str], None] | None = None
    #: builds the model of one run (default: the registry, from ``model``); tests pass scripted ones
    make_model: Callable[[], Model] | None = None


@dataclass
class RowScore:
    """One document (one task, one row), scored."""

    task: str
    row: str
    rouge_l: float = 0.0
    meteor: float = 0.0
    apis_covered: int = 0
    apis: int = 0
    examples_ran: int = 0
    examples: int = 0
    citations_matched: int = 0
    citations: int = 0
    #: prompts that held twelve words of the HOWTO in a row
    leaked: int = 0
    calls: int = 0
    seconds: float = 0.0
    error: str = ""


@dataclass
class WriteEvalResult:
    model: str
    split: str
    tasks: list[str]
    scores: list[RowScore] = field(default_factory=list)

    def row(self, name: str) -> list[RowScore]:
        return [s for s in self.scores if s.row == name]

    def to_dict(self) -> dict:
        return {"model": self.model, "split": self.split, "tasks": self.tasks,
                "tune": list(TUNE), "scores": [asdict(s) for s in self.scores]}


def select_tasks(all_howtos: list[Howto], split: str, names: Sequence[str] = ()) -> list[Howto]:
    """The HOWTOs of ``split`` ("report", "tune", "all"), only ``names`` if given."""
    if split not in ("report", "tune", "all"):
        raise MgptError(f"split {split!r}: use report, tune or all")
    chosen = [h for h in all_howtos if split == "all" or (h.name in TUNE) == (split == "tune")]
    if names:
        known = {h.name for h in chosen}
        missing = [n for n in names if n not in known]
        if missing:
            raise MgptError(f"no HOWTO {', '.join(missing)} in the {split} split; it has: {', '.join(sorted(known))}")
        chosen = [h for h in chosen if h.name in names]
    return chosen


# -- one run ---------------------------------------------------------------------------------


def _model(opts: WriteEvalOptions) -> Model:
    if opts.make_model is not None:
        return opts.make_model()
    from mgpt.llm.models import infer_model

    return infer_model(opts.model, base_url=opts.base_url, max_tokens=opts.max_new_tokens, threads=opts.threads)


async def single_call(brief: str, model: Model, workspace: Path) -> str:
    """The baseline: one call asks for the whole document (recorded like a room's calls)."""
    workspace.mkdir(parents=True, exist_ok=True)
    recorder = RecordingModel(model, workspace / ".mgpt" / "transcript.jsonl",
                              header=TranscriptHeader(idea=brief, model=model.name))
    try:
        completion = await LLM(recorder, role="Writer").ask(SINGLE_PROMPT.format(brief=brief), action="WriteDocument")
    finally:
        recorder.close()
        await model.aclose()
    (workspace / DOCUMENT).write_text(completion.text, encoding="utf-8")
    return completion.text


async def _room(task: Howto, row: str, library: Corpus, opts: WriteEvalOptions,
                workspace: Path) -> tuple[str, dict[int, str]]:
    """The room's document (or "" when it published none) and its sources by number."""
    result = await run_writers_room(
        task.brief, model=_model(opts), options=RunOptions(workspace=workspace, force=True, max_rounds=40, history=False),
        room=RoomOptions(sources=library, sections=opts.sections, fix_rounds=opts.fix_rounds,
                         revision_rounds=opts.revision_rounds, run_examples=row == "room", guard=task.guard()))
    research = next((m.payload for m in result.run.messages if isinstance(m.payload, Research)), None)
    sources = {n: s.text for n, s in research.by_number().items()} if research is not None else {}
    return (result.document.markdown if result.document is not None else ""), sources


def score_document(markdown: str, task: Howto, sources: dict[int, str], workspace: Path,
                   limits: Limits | None = None) -> RowScore:
    """A document scored against its HOWTO, its examples run, its citations checked."""
    from mgpt.llm.eval.metrics import compute_text_metrics

    body = markdown.split("\n## Sources\n")[0]  # the list of sources is not text, nor citations
    metrics = compute_text_metrics([body if body.strip() else "-"], [task.plain])
    covered, total = api_coverage(task.apis, body)
    runs = run_examples(body, workspace, section=0, limits=limits or Limits(timeout=10))
    cites = check_citations(body, sources)
    return RowScore(task=task.name, row="", rouge_l=metrics.rougeL, meteor=metrics.meteor, apis_covered=covered,
                    apis=total, examples_ran=sum(r.ok for r in runs), examples=len(runs),
                    citations_matched=sum(c.ok for c in cites), citations=len(cites))


def leaked_prompts(transcript: Path, guard: LeakGuard) -> tuple[int, int]:
    """(prompts holding a shingle of the guarded text, calls) of a recorded run."""
    if not transcript.is_file():
        return 0, 0
    calls = Transcript.load(transcript).calls
    leaked = sum(1 for c in calls if any(m.role in ("system", "user") and guard.leak(m.content) for m in c.request))
    return leaked, len(calls)


def _run_one(task: Howto, row: str, library: Corpus, opts: WriteEvalOptions) -> RowScore:
    workspace = Path(opts.out) / task.name / row
    shutil.rmtree(workspace, ignore_errors=True)
    started = time.perf_counter()
    error, markdown, sources = "", "", {}
    try:
        if row == "single":
            markdown = asyncio.run(single_call(task.brief, _model(opts), workspace))
        else:
            markdown, sources = asyncio.run(_room(task, row, library, opts, workspace))
    except MgptError as exc:  # a run that fails scores what it wrote: nothing
        error = str(exc).splitlines()[0][:300]
    seconds = time.perf_counter() - started
    score = score_document(markdown, task, sources, workspace / ".score")
    score.row, score.seconds, score.error = row, round(seconds, 1), error or ("" if markdown else "no document")
    score.leaked, score.calls = leaked_prompts(workspace / ".mgpt" / "transcript.jsonl", task.guard())
    return score


def run_write_eval(opts: WriteEvalOptions) -> WriteEvalResult:
    """Every chosen task in every chosen row; results.json written as it goes."""
    corpus = load_corpus(opts.sources, under=["library", "howto"])
    library = corpus.without(p for p in list(corpus.pages) if not p.startswith("library/"))
    if not len(library):
        raise MgptError(f"{opts.sources} has no library/ folder: the room would have no sources")
    tasks = select_tasks(howtos(corpus), opts.split, opts.tasks)
    result = WriteEvalResult(model=opts.model, split=opts.split, tasks=[t.name for t in tasks])
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        for row in opts.rows:
            score = _run_one(task, row, library, opts)
            result.scores.append(score)
            (out / "results.json").write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
            if opts.progress is not None:
                opts.progress(f"{task.name} / {row}: ROUGE-L {score.rouge_l:.3f}, METEOR {score.meteor:.3f}, APIs "
                              f"{score.apis_covered}/{score.apis}, examples {score.examples_ran}/{score.examples}, "
                              f"citations {score.citations_matched}/{score.citations}, {score.seconds:.0f} s"
                              + (f" ({score.error})" if score.error else ""))
    return result


# -- the table -------------------------------------------------------------------------------


def _share(num: int, den: int) -> str:
    return f"{num / den:.2f} ({num}/{den})" if den else "— (0/0)"


def format_table(result: WriteEvalResult) -> str:
    """The rows side by side (means over tasks; shares pooled over tasks), then each task."""
    lines = [f"model {result.model}, {result.split} split: {', '.join(result.tasks)}", "",
             "| row | ROUGE-L | METEOR | API names covered | examples that run | citations that match "
             "| leaked prompts | calls / task | s / task |", "|---|---|---|---|---|---|---|---|---|"]
    rows = list(dict.fromkeys(s.row for s in result.scores))
    for name in rows:
        ss = result.row(name)
        n = len(ss)
        lines.append(
            f"| {name} | {sum(s.rouge_l for s in ss) / n:.3f} | {sum(s.meteor for s in ss) / n:.3f} | "
            f"{_share(sum(s.apis_covered for s in ss), sum(s.apis for s in ss))} | "
            f"{_share(sum(s.examples_ran for s in ss), sum(s.examples for s in ss))} | "
            f"{_share(sum(s.citations_matched for s in ss), sum(s.citations for s in ss))} | "
            f"{sum(s.leaked for s in ss)} | {sum(s.calls for s in ss) / n:.1f} | {sum(s.seconds for s in ss) / n:.0f} |")
    lines += ["", "| task | row | ROUGE-L | METEOR | APIs | examples | citations | calls | s | note |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for s in result.scores:
        lines.append(f"| {s.task} | {s.row} | {s.rouge_l:.3f} | {s.meteor:.3f} | {s.apis_covered}/{s.apis} | "
                     f"{s.examples_ran}/{s.examples} | {s.citations_matched}/{s.citations} | {s.calls} | "
                     f"{s.seconds:.0f} | {s.error} |")
    return "\n".join(lines)

"""``mgpt recommend USER_ID`` and ``mgpt eval recommend``: thin commands over
:mod:`mgpt.workflows.recommend` and :mod:`mgpt.workflows.recommend_eval`.

Nothing heavy is imported at module level (numpy, the model backends and torch load inside
the commands), so ``mgpt --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from mgpt.agents.errors import MgptError

__all__ = ["eval_recommend_command", "recommend_command", "register"]

ModelOption = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Model spec for the ranker and explainer: openai:<name>, hf:<dir>, local[:<name>], "
    "replay:<file>. Default: $MGPT_MODEL, the config file, else the embedded local model.")]
BaseUrl = Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible server URL.")]
ApiKeyFile = Annotated[Optional[Path], typer.Option("--api-key-file", help="Read the API key from this file.")]
Retriever = Annotated[str, typer.Option(
    "--retriever", help="The learned retriever: als (default; trains in seconds), cooc (mgpt's co-occurrence "
    "embeddings; minutes), itemknn, bpr, pop.")]
Candidates = Annotated[int, typer.Option("--candidates", min=1, max=100,
                                         help="How many of the retriever's best movies the ranker re-orders.")]
Summary = Annotated[bool, typer.Option(
    "--summary", help="The profiler also asks the model for a sentence on the user's taste (one more call).")]
Threads = Annotated[Optional[int], typer.Option("--threads", min=1, help="torch threads for a local model.")]


def _err(line: str) -> None:
    typer.echo(line, err=True)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(2)


def _model(spec: Optional[str], base_url: Optional[str], api_key_file: Optional[Path], threads: Optional[int]):
    """The model the flags and the settings name (the embedded one pulled first if need be)."""
    from mgpt.cli.config import load_settings
    from mgpt.cli.models import prepare_local
    from mgpt.llm.models import infer_model

    settings = load_settings(model=spec, base_url=base_url, api_key_file=api_key_file)
    for note in settings.notes:
        _err(f"note: {note}")
    chosen = settings.model or "local"
    if chosen.partition(":")[0] == "local":
        prepare_local(chosen, announce=_err)
    return infer_model(chosen, base_url=settings.base_url, api_key=settings.api_key, timeout=settings.timeout,
                       max_tokens=settings.max_tokens_per_call, threads=threads)


def recommend_command(
    user_id: Annotated[Optional[str], typer.Argument(help="The MovieLens-100K user id (1-943).")] = None,
    count: Annotated[int, typer.Option("--count", "-k", min=1, max=50, help="How many movies to recommend.")] = 5,
    candidates: Candidates = 20,
    explain: Annotated[Optional[int], typer.Option(
        "--explain", min=0, help="Explain only the first N recommendations (0: no explanations; default: all).")] = None,
    summary: Summary = False,
    model: ModelOption = None,
    base_url: BaseUrl = None,
    api_key_file: ApiKeyFile = None,
    retriever: Retriever = "als",
    store: Annotated[Optional[Path], typer.Option(
        "--store", help="The trained store's folder (default: $MGPT_HOME/recommend/ml-100k-RETRIEVER).")] = None,
    train: Annotated[bool, typer.Option("--train", help="Train the store again first (with no USER_ID: only train).")] = False,
    record: Annotated[Optional[Path], typer.Option("--record", help="Write the transcript of the run here.")] = None,
    threads: Threads = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the result here as JSON.")] = None,
) -> None:
    """Recommend movies to a MovieLens-100K user, each explained by the movies they rated.

    The store (the learned retriever) is trained on first use: ALS takes a few seconds, cooc several minutes."""
    import asyncio

    from mgpt.actions.recommend import RecommendRequest
    from mgpt.domains.movielens.store import open_store, retriever_named
    from mgpt.workflows.recommend import recommend

    if user_id is None and not train:
        raise _fail("say whose recommendations: mgpt recommend USER_ID (or mgpt recommend --train)")
    try:
        trained = open_store(retriever_named(retriever), folder=store, train=train, progress=_err)
        if user_id is None:
            return
        trained.user(user_id)  # an unknown user is refused before the model loads
        request = RecommendRequest(user_id=user_id, count=count, candidates=candidates, explain=explain,
                                   summary=summary)
        result = asyncio.run(recommend(request, store=trained, model=_model(model, base_url, api_key_file, threads),
                                       record=record))
    except MgptError as exc:
        raise _fail(str(exc)) from None
    typer.echo(result.to_markdown())
    spend, tally = result.run.spend, result.tally
    _err(f"{spend.calls} model call(s), {tally.prompt_tokens} prompt + {tally.completion_tokens} completion tokens, "
         f"{result.run.seconds:.1f} s; store {trained.folder} ({trained.meta['retriever']})")
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_dict(), indent=1), encoding="utf-8")


def eval_recommend_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Model spec for the LLM stages (default: the embedded "
                                                              "model).")] = "local",
    base_url: BaseUrl = None,
    api_key_file: ApiKeyFile = None,
    users: Annotated[int, typer.Option(
        "--users", min=0, help="Run the team on this many users drawn with --subset-seed (0: all 943).")] = 100,
    subset_seed: Annotated[int, typer.Option("--subset-seed", help="Seed of the users' draw.")] = 0,
    seed: Annotated[List[int], typer.Option("--seed", help="A retriever seed (repeatable; default 0 1 2).")] = [],  # noqa: B006
    explain_seed: Annotated[List[int], typer.Option(
        "--explain-seed", help="Only these seeds' teams explain (repeatable; default: every seed).")] = [],  # noqa: B006
    retriever: Retriever = "als",
    count: Annotated[int, typer.Option("--count", "-k", min=1, max=50,
                                       help="Recommendations per user: the ranker's top, the metrics' cut-off.")] = 10,
    candidates: Candidates = 20,
    explain: Annotated[int, typer.Option("--explain", min=0, help="Explanations per user (0: no Explainer).")] = 5,
    summary: Summary = False,
    per_task: Annotated[int, typer.Option("--per-task", min=1, help="Users per task of the runner.")] = 10,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Tasks at once, each in its own process.")] = 1,
    ray: Annotated[Optional[str], typer.Option("--ray", help="Run the tasks on a Ray cluster: auto or HOST:PORT.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the stores, results and transcripts.")] = Path(
        "eval-recommend"),
    resume: Annotated[bool, typer.Option("--resume", help="Continue the evaluation in --out (users done are kept).")] = False,
    report: Annotated[bool, typer.Option("--report", help="Run nothing: tabulate the users --out already holds "
                                                         "(a stopped or partly failed run).")] = False,
    threads: Annotated[int, typer.Option("--threads", min=1, help="torch threads per worker (local models).")] = 1,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Where to write the results (default OUT/results.json).")] = None,
) -> None:
    """The recommender team on MovieLens-100K: the retriever alone, + the LLM ranker, the full team with explanations
    (full ranking and 99 sampled negatives), and the share of explanations citing movies the user really rated."""
    from mgpt.workflows.recommend_eval import RecommendEvalOptions, run_recommend_eval, table

    options = RecommendEvalOptions(
        model=model, base_url=base_url, api_key_file=str(api_key_file) if api_key_file else None, users=users,
        subset_seed=subset_seed, seeds=list(seed) or [0, 1, 2], explain_seeds=list(explain_seed) or None,
        retriever=retriever, count=count, candidates=candidates, explain=explain, summary=summary, per_task=per_task,
        workers=workers, ray=ray, resume=resume, report_only=report, threads=threads)
    if model.partition(":")[0] == "local" and not report:
        from mgpt.cli.models import prepare_local

        prepare_local(model, announce=_err)
    try:
        result = run_recommend_eval(options, out, on_update=_progress, log=_err)
    except MgptError as exc:
        raise _fail(str(exc)) from None
    typer.echo(table(result))
    for seed_, shares in result.citations.items():
        _err(f"seed {seed_}: {shares.get('explanations', 0)} explanations; citing only rated movies "
             f"{shares.get('cited_rated', 0):.3f}, naming a cited movie {shares.get('named_cited', 0):.3f}, "
             f"naming an unrated movie {shares.get('named_unrated', 0):.3f}")
    for seed_, diff in result.paired.items():
        work = result.work.get(seed_, {})
        _err(f"seed {seed_}: the team minus the retriever, NDCG@{count} on the same users: {diff['diff']:+.4f} "
             f"(standard error {diff['se']:.4f}; {diff['better']} users ranked better, {diff['worse']} worse); per user "
             f"{work.get('seconds', 0):.1f} s, the ranker named {work.get('named', 0):.1f} distinct candidates, "
             f"repaired {work.get('repaired', 0):.0%}, fell back {work.get('fallback', 0):.0%}")
    target = json_out or out / "results.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result.to_dict(), indent=1), encoding="utf-8")
    _err(f"wrote {target} ({result.seconds:.0f} s)")
    if result.failed_tasks:
        raise _fail(f"{len(result.failed_tasks)} task(s) failed ({', '.join(result.failed_tasks[:5])}); see "
                    f"{out / 'runs'}: the table holds the users they finished (--report tabulates them again); "
                    "--resume skips a failed task, so measure its users again with a new --out")


def _progress(update: Any) -> None:
    """One line per task that starts or ends (the runner's updates)."""
    if update.status in ("running", "queued"):
        if update.status == "running":
            _err(f"{update.id}: running ({update.worker})")
        return
    outcome = update.outcome
    detail = f", {outcome.seconds:.0f} s" if outcome is not None else ""
    error = f": {outcome.error.splitlines()[0]}" if outcome is not None and outcome.error else ""
    _err(f"{update.id}: {update.status}{detail}{error}")


def register(app: typer.Typer) -> None:
    """Add ``mgpt recommend`` to the top-level app (``mgpt eval recommend`` is added by cli/eval.py)."""
    app.command("recommend")(recommend_command)

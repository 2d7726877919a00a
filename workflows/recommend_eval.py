"""``mgpt eval recommend``: the recommender team measured on MovieLens-100K, user by user.

For each seed a store learns from each user's training items (RecBole's protocol; the
validation and test items are in no history, so no profile or prompt can show them). Then:

- **the retriever alone**: every user's test item ranked by the store's scores, on all users
  and on the evaluated subset;
- **retriever + LLM ranker**, and **the full team** (with explanations): each user of a
  fixed, seeded subset goes through the team; the ranker re-orders the retriever's top
  ``candidates`` (its first ``count`` are the recommendations), and every other movie keeps
  the retriever's order below them (:func:`~mgpt.domains.movielens.evaluate.reranked`), so
  full-ranking metrics stay defined. Both protocols are read off that one ranking: the test
  item among all movies less the user's training and validation items (full), and among
  the 99 unrated movies drawn with the protocol's seed (sampled).
- **explanations**: each one checked against what the user really rated
  (:func:`~mgpt.domains.movielens.citations.check_citation`).

The users run on the task runner (``workers`` local processes, or ``ray``), ``per_task``
users a task, so a local model is loaded once per task; each task appends one line per user
to its ``results.jsonl`` (its journal: a retried or resumed task skips the users done) and
keeps each user's transcript. :func:`run_recommend_eval` returns a :class:`RecommendEval`
whose rows :func:`table` prints.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = ["RecommendEval", "RecommendEvalOptions", "run_recommend_eval", "score_users", "table"]

RESULTS = "results.jsonl"


@dataclass
class RecommendEvalOptions:
    """What ``mgpt eval recommend`` measures, and how (its flags, one to one)."""

    #: the model the LLM stages run on (any model spec)
    model: str = "local"
    base_url: str | None = None
    api_key_file: str | None = None
    #: the users the team runs on: this many drawn with ``subset_seed`` (0: all users)
    users: int = 100
    subset_seed: int = 0
    #: one store (and one pass of the team) per seed
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    #: the seeds whose team also explains (None: every seed)
    explain_seeds: list[int] | None = None
    retriever: str = "als"
    #: recommendations per user (the ranker's top; NDCG@count), candidates re-ranked, explained
    count: int = 10
    candidates: int = 20
    explain: int = 5
    summary: bool = False
    #: the sampled protocol's negatives and their seed
    negatives: int = 99
    protocol_seed: int = 0
    #: users per task of the runner, tasks at once, a Ray cluster
    per_task: int = 10
    workers: int = 1
    ray: str | None = None
    resume: bool = False
    #: run nothing: tabulate the users ``out`` already holds (a stopped or partly failed run)
    report_only: bool = False
    #: torch threads per worker for a local model
    threads: int = 1


@dataclass
class RecommendEval:
    """The measurements: per seed, each row's metrics; and what every user gave."""

    options: RecommendEvalOptions
    #: row name -> per seed {"full": Metrics dict, "sampled": ...}
    rows: dict[str, list[dict[str, Any]]]
    #: per seed: the team's per-user results (full_rank, sampled_rank, explanations...)
    users: dict[int, list[dict[str, Any]]]
    #: explanation checks, per seed that explained
    citations: dict[int, dict[str, float]]
    #: team minus retriever on the same users, NDCG@k (full), per seed (:func:`paired_difference`)
    paired: dict[int, dict[str, float]]
    #: how the team worked, per seed (:func:`behaviour`)
    work: dict[int, dict[str, float]]
    seconds: float
    failed_tasks: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"options": asdict(self.options), "rows": self.rows, "citations": self.citations,
                "paired": self.paired, "work": self.work, "seconds": self.seconds, "failed_tasks": self.failed_tasks,
                "users": {str(k): v for k, v in self.users.items()}}


# -- on a worker: one task, a few users ---------------------------------------------------------


def score_users(ctx: Any) -> dict[str, Any]:
    """Task function: run the team for each user of ``ctx.args["users"]`` and rank their test
    item. Appends one JSON line per user to ``results.jsonl`` in the task's folder (users
    already there are skipped)."""
    args = ctx.args
    done_file = Path(ctx.workdir) / RESULTS
    done = {json.loads(line)["user"] for line in done_file.read_text().splitlines()} if done_file.is_file() else set()
    todo = [u for u in args["users"] if u["user"] not in done]
    if todo:
        asyncio.run(score_all(todo, args, Path(ctx.workdir), ctx.budget))
    lines = done_file.read_text().splitlines() if done_file.is_file() else []
    return {"ok": True, "users": len(lines)}


async def score_all(todo: list[dict[str, Any]], args: dict[str, Any], workdir: Path, budget: Any) -> None:
    from mgpt.actions.recommend import RecommendRequest
    from mgpt.domains.movielens.citations import TitleIndex
    from mgpt.domains.movielens.store import RecommendStore
    from mgpt.llm.models import infer_model
    from mgpt.workflows.recommend import recommend

    store = RecommendStore.load(args["store"])
    index = TitleIndex(store.movies)
    api_key = Path(args["api_key_file"]).read_text().strip() if args.get("api_key_file") else None
    model = infer_model(args["model"], base_url=args.get("base_url"), api_key=api_key, threads=args.get("threads"))
    try:
        for case in todo:
            request = RecommendRequest(user_id=case["user"], count=args["count"], candidates=args["candidates"],
                                       explain=args["explain"], summary=args["summary"])
            started = time.perf_counter()
            result = await recommend(request, store=store, model=model, budget=budget,
                                     record=workdir / "transcripts" / f"user-{case['user']}.jsonl")
            line = user_line(case, result, store, index, time.perf_counter() - started)
            with (workdir / RESULTS).open("a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")
    finally:
        await model.aclose()


def user_line(case: dict[str, Any], result: Any, store: Any, index: Any, seconds: float) -> dict[str, Any]:
    """One user's measurement: the test item's ranks under the team's ranking and under the
    retriever's, the ranker's repairs, the explanations checked, the time per role."""
    import numpy as np

    from mgpt.domains.movielens.citations import check_citation
    from mgpt.domains.movielens.evaluate import reranked
    from mgpt.domains.movielens.metrics import full_ranks, sampled_ranks

    u = store.user(case["user"])
    target = store.item(case["target"])
    negatives = np.array([[store.item(i) for i in case["negatives"]]])
    plain = store.scores_of(case["user"])
    order = [store.item(c.item_id) for c in (result.ranking.items if result.ranking else [])]
    team = reranked(plain, order)
    mask = [np.asarray(store.masked[u], dtype=np.int64)]
    ranks = {name: (int(full_ranks(row[None], np.array([target]), mask)[0]),
                    int(sampled_ranks(row[None], np.array([target]), negatives)[0]))
             for name, row in (("team", team), ("retriever", plain))}
    rated = {store.item_ids[i] for i in store.histories[u]}
    profile = result.profile
    shown = {m.item_id for m in profile.citable()} if profile else set()
    checks = [asdict(check_citation(e.item_id, e.because, e.sentence, rated, index))
              for e in (result.explanations.items if result.explanations else [])]
    return {
        "user": case["user"], "full_rank": ranks["team"][0], "sampled_rank": ranks["team"][1],
        "retriever_full_rank": ranks["retriever"][0], "retriever_sampled_rank": ranks["retriever"][1],
        "top": [c.item_id for c in result.ranking.top] if result.ranking else [],
        "named": result.ranking.named if result.ranking else [], "note": result.ranking.note if result.ranking else "",
        "explanations": [e.model_dump() for e in result.explanations.items] if result.explanations else [],
        "explain_note": result.explanations.note if result.explanations else "", "citations": checks,
        "target_in_profile": case["target"] in shown, "seconds": round(seconds, 2), "role_seconds": result.tally.seconds,
        "prompt_tokens": result.tally.prompt_tokens, "completion_tokens": result.tally.completion_tokens,
    }


# -- in the driver ------------------------------------------------------------------------------


def subset_of(user_ids: list[str], size: int, seed: int) -> list[str]:
    """``size`` of ``user_ids`` drawn with ``seed`` (all of them when size is 0 or more than
    there are), in the ids' order: the same subset for every row and seed."""
    import numpy as np

    if size <= 0 or size >= len(user_ids):
        return list(user_ids)
    picked = np.random.default_rng(seed).choice(len(user_ids), size=size, replace=False)
    return [user_ids[i] for i in sorted(picked)]


def seed_store(data: Any, options: RecommendEvalOptions, seed: int, out: Path, log: Callable[[str], None]) -> Any:
    """The seed's store, learning from the training items (reused when ``out`` holds it)."""
    from mgpt.domains.movielens.errors import StoreError
    from mgpt.domains.movielens.retrievers import describe
    from mgpt.domains.movielens.store import RecommendStore, retriever_named, train_store

    retriever = retriever_named(options.retriever, seed)
    folder = out / "stores" / f"{options.retriever}-seed{seed}"
    try:
        store = RecommendStore.load(folder)
        if store.meta.get("settings") == describe(retriever)["settings"] and store.meta.get("phase") == "test":
            return store
    except StoreError:
        pass
    store = train_store(data, retriever, phase="test", folder=folder)
    log(f"seed {seed}: trained {options.retriever} in {store.meta['fit_s']} s -> {folder}")
    return store


def retriever_rows(store: Any, split: Any, fold: Any, subset: list[str], options: RecommendEvalOptions) -> dict:
    """The retriever alone: metrics on all users and on the subset, and each user's ranks."""
    from mgpt.domains.movielens.evaluate import Protocol, user_ranks
    from mgpt.domains.movielens.metrics import summarize

    protocol = Protocol(k=options.count, negatives=options.negatives, seed=options.protocol_seed)
    full, sampled = user_ranks(store.scorer.scores, fold, split, protocol)
    ids = [split.user_ids[u] for u in fold.users]
    picked = [ids.index(u) for u in subset]
    both = lambda rows: {"full": summarize(full[rows], options.count).as_dict(),  # noqa: E731
                         "sampled": summarize(sampled[rows], options.count).as_dict()}
    return {"all": both(list(range(len(ids)))), "subset": both(picked),
            "ranks": {u: (int(full[i]), int(sampled[i])) for u, i in zip(subset, picked)}}


def seed_tasks(store: Any, split: Any, fold: Any, subset: list[str], seed: int,
               options: RecommendEvalOptions) -> list[Any]:
    """The runner's tasks for one seed: ``per_task`` users each, with their targets and
    sampled negatives (the team never sees these: they are for ranking its answer)."""
    from mgpt.agents.runner import Task
    from mgpt.domains.movielens.metrics import sample_negatives

    users = fold.users
    negatives = sample_negatives(split.sequences, users, fold.n_items, n=options.negatives, seed=options.protocol_seed)
    row_of = {split.user_ids[u]: n for n, u in enumerate(users)}
    explain = options.explain if options.explain_seeds is None or seed in options.explain_seeds else 0
    common = {"store": str(store.folder), "model": options.model, "base_url": options.base_url,
              "api_key_file": options.api_key_file, "count": options.count, "candidates": options.candidates,
              "explain": explain, "summary": options.summary, "threads": options.threads}
    tasks = []
    for start in range(0, len(subset), options.per_task):
        cases = [{"user": u, "target": split.item_ids[fold.target[split.user_index(u)]],
                  "negatives": [split.item_ids[i] for i in negatives[row_of[u]]]}
                 for u in subset[start:start + options.per_task]]
        tasks.append(Task(id=f"seed{seed}-{start // options.per_task:03d}", fn="mgpt.workflows.recommend_eval:score_users",
                          args={**common, "users": cases}, journal=RESULTS))
    return tasks


def chance_row(store: Any, cases: dict[str, dict[str, Any]], lines: list[dict[str, Any]],
               options: RecommendEvalOptions, draws: int = 50) -> dict[str, Any]:
    """The control for the ranker: for each user, as many distinct candidates as the ranker
    named, drawn at random (``draws`` times, seeded) and repaired the same way (then the other
    candidates, then every other movie, in the retriever's order); metrics averaged over the
    draws. A ranker no better than this adds nothing but its position in the list."""
    import numpy as np

    from mgpt.domains.movielens.evaluate import reranked
    from mgpt.domains.movielens.metrics import full_ranks, sampled_ranks, summarize

    rng = np.random.default_rng(0)
    full, sampled = np.zeros((draws, len(lines))), np.zeros((draws, len(lines)))
    for j, line in enumerate(lines):
        case, u = cases[line["user"]], store.user(line["user"])
        row = store.scores_of(line["user"])
        candidates = np.argsort(-row, kind="stable")[: min(options.candidates, int(np.isfinite(row).sum()))]
        target, mask = np.array([store.item(case["target"])]), [np.asarray(store.masked[u], dtype=np.int64)]
        negatives = np.array([[store.item(i) for i in case["negatives"]]])
        for d in range(draws):
            picks = rng.permutation(len(candidates))[: len(line["named"])]
            order = [*candidates[picks], *np.delete(candidates, picks)]
            team = reranked(row, order)[None]
            full[d, j], sampled[d, j] = full_ranks(team, target, mask)[0], sampled_ranks(team, target, negatives)[0]
    mean = lambda ranks: {key: float(np.mean([summarize(r, options.count).as_dict()[key] for r in ranks]))  # noqa: E731
                          for key in ("ndcg", "recall", "mrr", "mrr_at_k")} | {"k": options.count, "users": len(lines)}
    return {"full": mean(full), "sampled": mean(sampled)}


def read_results(out: Path, seed: int) -> list[dict[str, Any]]:
    lines = []
    for path in sorted((out / "runs").glob(f"seed{seed}-*/{RESULTS}")):
        lines += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines


def citation_share(lines: list[dict[str, Any]]) -> dict[str, float]:
    """Over every explanation: the share citing only movies the user rated, the share whose
    sentence names a cited movie, the share naming an unrated one; and how many there are."""
    checks = [c for line in lines for c in line["citations"]]
    if not checks:
        return {}
    share = lambda key: sum(bool(c[key]) for c in checks) / len(checks)  # noqa: E731
    return {"explanations": len(checks), "cited_rated": share("rated"), "named_cited": share("named"),
            "named_unrated": share("unrated_named"),
            "users_without": sum(1 for line in lines if not line["citations"]) / len(lines)}


def behaviour(lines: list[dict[str, Any]]) -> dict[str, float]:
    """How the team worked, per user on average: seconds (all, the Ranker's, the Explainer's),
    tokens, the distinct candidates the ranker named, and the shares of users whose ranking
    was repaired or fell back to the retriever's order; and how many profiles showed the test
    item (always 0: the store holds it back)."""
    if not lines:
        return {}
    mean = lambda values: statistics.fmean(values) if values else 0.0  # noqa: E731
    return {
        "users": len(lines), "seconds": mean([x["seconds"] for x in lines]),
        "ranker_s": mean([x["role_seconds"].get("Ranker", 0.0) for x in lines]),
        "explainer_s": mean([x["role_seconds"].get("Explainer", 0.0) for x in lines]),
        "prompt_tokens": mean([x["prompt_tokens"] for x in lines]),
        "completion_tokens": mean([x["completion_tokens"] for x in lines]),
        "named": mean([len(x["named"]) for x in lines]),
        "repaired": mean([1.0 if x["note"] and "stands" not in x["note"] else 0.0 for x in lines]),
        "fallback": mean([1.0 if "stands" in x["note"] else 0.0 for x in lines]),
        "target_in_profile": sum(bool(x["target_in_profile"]) for x in lines),
    }


def team_metrics(lines: list[dict[str, Any]], k: int) -> dict[str, Any]:
    import numpy as np

    from mgpt.domains.movielens.metrics import summarize

    return {"full": summarize(np.array([x["full_rank"] for x in lines]), k).as_dict(),
            "sampled": summarize(np.array([x["sampled_rank"] for x in lines]), k).as_dict()}


def paired_difference(lines: list[dict[str, Any]], k: int) -> dict[str, float]:
    """The team's NDCG@k minus the retriever's, user by user: the mean, its standard error, and
    how many users the team ranked better and worse."""
    diffs = [ndcg(x["full_rank"], k) - ndcg(x["retriever_full_rank"], k) for x in lines]
    se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0
    return {"diff": statistics.fmean(diffs), "se": se, "better": sum(d > 0 for d in diffs),
            "worse": sum(d < 0 for d in diffs), "users": len(diffs)}


def ndcg(rank: int, k: int) -> float:
    import math

    return 1.0 / math.log2(rank + 1) if rank <= k else 0.0


def run_recommend_eval(options: RecommendEvalOptions, out: str | Path, *, on_update: Callable[[Any], None] | None = None,
                       log: Callable[[str], None] = lambda line: None, data: Any = None) -> RecommendEval:
    """Measure the retriever, the retriever + LLM ranker and the full team (see the module's
    docstring) on ``data`` (default: MovieLens-100K, fetched on first use); ``out`` keeps the
    stores, each task's results and transcripts (``--resume`` continues from them)."""
    from mgpt.agents.runner import RunnerOptions, run_tasks
    from mgpt.domains.movielens.data import load_movielens
    from mgpt.domains.movielens.split import leave_one_out

    started, out = time.perf_counter(), Path(out)
    data = data if data is not None else load_movielens()
    split = leave_one_out(data.ratings, list(data.movies))
    fold = split.fold("test")
    subset = subset_of([split.user_ids[u] for u in fold.users], options.users, options.subset_seed)
    log(f"{len(subset)} users, seeds {options.seeds}, model {options.model}, retriever {options.retriever}, "
        f"top {options.count} of {options.candidates} candidates re-ranked")
    plans = {}
    for seed in options.seeds:
        store = seed_store(data, options, seed, out, log)
        tasks = seed_tasks(store, split, fold, subset, seed, options)
        plans[seed] = {"store": store, "alone": retriever_rows(store, split, fold, subset, options), "tasks": tasks,
                       "cases": {case["user"]: case for task in tasks for case in task.args["users"]}}
    failed: list[str] = []
    if not options.report_only:
        batch = run_tasks([t for plan in plans.values() for t in plan["tasks"]],
                          RunnerOptions(out=out / "runs", workers=None if options.ray else options.workers,
                                        ray=options.ray, resume=options.resume, on_update=on_update))
        failed = [o.id for o in batch.outcomes if not o.ok]
    result = RecommendEval(options, {name: [] for name in ROWS}, {}, {}, {}, {}, 0.0, failed)
    for seed, plan in plans.items():
        add_seed(result, seed, plan, read_results(out, seed), log)
    result.seconds = time.perf_counter() - started
    return result


#: The table's rows, in order.
ROWS = ("retriever, all users", "retriever, subset", "retriever, users measured", "retriever + LLM ranker, subset",
        "retriever + random picks (control), subset", "full team, subset")


def add_seed(result: RecommendEval, seed: int, plan: dict[str, Any], lines: list[dict[str, Any]],
             log: Callable[[str], None]) -> None:
    """One seed's rows, users, explanation shares, paired difference and work into ``result``."""
    options, alone = result.options, plan["alone"]
    lines = [x for x in lines if x["user"] in alone["ranks"]]
    result.users[seed] = lines
    result.rows["retriever, all users"].append({"seed": seed, **alone["all"]})
    result.rows["retriever, subset"].append({"seed": seed, **alone["subset"]})
    if len(lines) < len(alone["ranks"]):
        log(f"seed {seed}: only {len(lines)} of {len(alone['ranks'])} users measured "
            "(--resume continues a stopped run; the row 'retriever, users measured' is on those users)")
    if not lines:
        return
    if len(lines) < len(alone["ranks"]):
        result.rows["retriever, users measured"].append(
            {"seed": seed, "users": len(lines), **retriever_on(alone["ranks"], lines, options.count)})
    for line in lines:
        if tuple(alone["ranks"][line["user"]]) != (line["retriever_full_rank"], line["retriever_sampled_rank"]):
            log(f"seed {seed} user {line['user']}: the worker's retriever ranks differ from the driver's")
    team = {"seed": seed, "users": len(lines), **team_metrics(lines, options.count)}
    result.rows["retriever + LLM ranker, subset"].append(team)
    result.rows["retriever + random picks (control), subset"].append(
        {"seed": seed, "users": len(lines), **chance_row(plan["store"], plan["cases"], lines, options)})
    result.paired[seed] = paired_difference(lines, options.count)
    result.work[seed] = behaviour(lines)
    if any(x["citations"] or x["explain_note"] for x in lines):
        result.rows["full team, subset"].append(team)
        result.citations[seed] = citation_share(lines)


def retriever_on(ranks: dict[str, tuple[int, int]], lines: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """The retriever alone on the users ``lines`` measured (their ranks from ``ranks``): the
    like-for-like row when a run measured only part of the subset."""
    import numpy as np

    from mgpt.domains.movielens.metrics import summarize

    full = np.array([ranks[x["user"]][0] for x in lines])
    sampled = np.array([ranks[x["user"]][1] for x in lines])
    return {"full": summarize(full, k).as_dict(), "sampled": summarize(sampled, k).as_dict()}


def spread(values: list[float]) -> str:
    """``mean ± std`` over seeds (just the value for one)."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def table(result: RecommendEval) -> str:
    """The rows as a markdown table: mean ± std over seeds of each metric."""
    k = result.options.count
    head = (f"| row | users | seeds | NDCG@{k} | Recall@{k} | MRR | sampled NDCG@{k} | sampled HR@{k} |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for name, runs in result.rows.items():
        if not runs:
            continue
        cell = lambda part, key: spread([r[part][key] for r in runs])  # noqa: E731
        lines.append(f"| {name} | {runs[0]['full']['users']} | {len(runs)} | {cell('full', 'ndcg')} | "
                     f"{cell('full', 'recall')} | {cell('full', 'mrr')} | {cell('sampled', 'ndcg')} | "
                     f"{cell('sampled', 'recall')} |")
    return "\n".join(lines)

"""Candidate retrieval on MovieLens-100K: mgpt's retrievers against RecBole's baselines, on
exactly RecBole's leave-one-out split.

    python3 benchmarks/bench_recommend.py --out runs/bench_recommend       # everything
    python3 benchmarks/bench_recommend.py --skip-recbole                   # mgpt's rows only

1. mgpt's retrievers (Pop, ItemKNN, implicit's ALS and BPR, co-occurrence embeddings
   trained with mgpt's contrastive trainer) are tuned on each user's validation item over
   a small grid; the best of each family is then measured on the test item, stochastic
   ones on 3 seeds, learning from train (RecBole's protocol) and refit on train + validation.
   ItemKNN with RecBole's own settings (k=100) is measured too: the same model on both
   sides. Test is never used to choose.
2. RecBole 1.2.1 runs Pop, ItemKNN, BPR, LightGCN and SASRec in a venv of its own (created
   by this script at ``--venv``, default ``$MGPT_HOME/venvs/recbole``), reading the same
   fetched files, two runs at a time beside mgpt's work. Each run reports RecBole's own test
   metrics, its split (checked against ours user for user) and its full score matrix, which
   mgpt's metric code then scores too, so the split and the metrics are both seen to agree
   where the models are the same. Epochs are capped (``--epoch-cap``); early stopping on
   validation NDCG@10 may end a run sooner.

Protocol (both sides): a model learns from the training items only; the test item is
ranked against all items less the user's train and validation items ("full"), and against
99 unrated items drawn with seed 0 ("sampled"). RecBole masks nothing for SASRec; its own
SASRec row is unmasked, the mgpt-metric row masked like every other.

Every process is niced and single-threaded. Measurements are kept in ``--out`` (``mgpt/``,
``recbole/``), so a rerun reuses them; ``results.json``, ``table.md`` and ``log.txt`` are
written there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

RECBOLE_PINS = ["torch==2.13.0", "recbole==1.2.1", "setuptools<81", "numpy<2", "pandas<3", "scipy<1.13"]
RECBOLE_MODELS = ["Pop", "ItemKNN", "BPR", "LightGCN", "SASRec"]
DETERMINISTIC = {"Pop", "ItemKNN", "pop", "itemknn"}
PRIORS = (0.0, 0.5, 1.0, 1.5)  # the embedding's popularity prior, tried on the validation item
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MGPT_THREADS": "1"}


# -- inside RecBole's venv (no mgpt import here) -------------------------------------------------


def recbole_worker(model_name: str, seed: int, epochs: int, data_path: str, out: Path) -> None:
    """Train one RecBole model on ml-100k, write its metrics, split and test scores into ``out``."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    settings = {
        "data_path": data_path, "checkpoint_dir": str(out / "saved"), "seed": seed, "reproducibility": True,
        "use_gpu": False, "show_progress": False, "epochs": epochs, "stopping_step": 10, "worker": 0,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["NDCG", "Recall", "MRR", "Hit"], "topk": [10], "valid_metric": "NDCG@10",
    }
    if model_name == "SASRec":
        settings["train_neg_sample_args"] = None  # SASRec's cross-entropy loss takes no sampled negatives
    config = Config(model=model_name, dataset="ml-100k", config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    model_class = get_model(model_name)
    torch.autograd.set_detect_anomaly(False)  # importing sequential models (sine.py) switches it on
    model = model_class(config, train.dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], model_name)(config, model)
    epochs_run = []
    train_epoch = trainer._train_epoch
    trainer._train_epoch = lambda *a, **k: (epochs_run.append(1), train_epoch(*a, **k))[1]
    started = time.perf_counter()
    _, best_valid = trainer.fit(train, valid, saved=True, show_progress=False)
    test_result = trainer.evaluate(test, load_best_model=True, show_progress=False)
    seconds = time.perf_counter() - started
    uid, iid = dataset.uid_field, dataset.iid_field

    def tokens(field: str, ids) -> list[str]:
        return [str(t) for t in dataset.id2token(field, ids)]

    split = {name: dict(zip(tokens(uid, part.inter_feat[uid].numpy()), tokens(iid, part.inter_feat[iid].numpy())))
             for name, part in (("valid", valid.dataset), ("test", test.dataset))}
    scores, users = [], []
    trainer.model.eval()
    with torch.no_grad():
        for interaction, _, _, _ in test:
            batch = trainer.model.full_sort_predict(interaction.to(config["device"]))
            scores.append(batch.view(len(interaction), -1).cpu().numpy())
            users.append(interaction[uid].cpu().numpy())
    np.savez_compressed(out / "scores.npz", scores=np.concatenate(scores).astype(np.float32),
                        users=np.array(tokens(uid, np.concatenate(users))),
                        items=np.array(["[PAD]"] + tokens(iid, np.arange(1, dataset.item_num))))
    (out / "result.json").write_text(json.dumps({
        "model": model_name, "seed": seed, "epochs_run": len(epochs_run), "epochs_cap": epochs,
        "seconds": seconds, "valid": {k: float(v) for k, v in best_valid.items()},
        "test": {k: float(v) for k, v in test_result.items()}, "split": split,
    }, indent=1))


# -- in mgpt's Python ----------------------------------------------------------------------------


def ensure_venv(venv: Path) -> Path:
    """RecBole's own venv (created once, pinned): its Python."""
    python = venv / "bin" / "python"
    marker = venv / ".mgpt-ready"
    if marker.is_file() and python.is_file():
        return python
    print(f"creating RecBole's venv at {venv} (pip install {' '.join(RECBOLE_PINS)})", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *RECBOLE_PINS],
                   check=True)
    marker.write_text("\n".join(RECBOLE_PINS) + "\n")
    return python


def run_recbole(python: Path, model: str, seed: int, epochs: int, data_path: Path, out: Path) -> dict:
    """One RecBole run in its venv, niced, one thread; its result.json (cached when present)."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / "result.json").is_file() and (out / "scores.npz").is_file():
        return json.loads((out / "result.json").read_text())
    env = {**os.environ, **ONE_THREAD, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "PYTHONPATH": ""}
    # Niceness 10 in all, as the rest of the benchmark (a niced parent's nice -n 10 would give 19).
    command = ["nice", "-n", str(max(0, 10 - os.nice(0))), str(python), str(Path(__file__).resolve()), "--recbole-worker", model,
               "--seed", str(seed), "--epochs", str(epochs), "--data-path", str(data_path), "--out", str(out)]
    with open(out / "worker.log", "w") as log:
        done = subprocess.run(command, cwd=out, env=env, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        raise RuntimeError(f"RecBole {model} seed {seed} failed; see {out / 'worker.log'}")
    return json.loads((out / "result.json").read_text())


def grid(seed: int) -> dict[str, list]:
    """The settings tried on the validation item, per family."""
    from mgpt.domains.movielens.embedding import CooccurrenceEmbedding
    from mgpt.domains.movielens.retrievers import ImplicitALS, ImplicitBPR, ItemKNN, Popularity

    return {
        "pop": [Popularity()],
        "itemknn": [ItemKNN(k=k) for k in (20, 50, 100, 200, 400)],
        "als": [ImplicitALS(factors=f, regularization=r, seed=seed) for f in (32, 64, 128) for r in (0.05, 1.0, 10.0)],
        "bpr": [ImplicitBPR(factors=f, learning_rate=lr, iterations=it, seed=seed)
                for f in (64, 128) for lr in (0.01, 0.05) for it in (100, 300)],
        "cooc": [CooccurrenceEmbedding(mode=m, seed=seed) for m in ("pairs", "sequence")],
    }


def cache_file(cache: Path, fold, retriever) -> Path:
    """Where one measurement is kept, keyed by the fold and the retriever's settings."""
    from mgpt.domains.movielens.retrievers import describe

    key = json.dumps({"phase": fold.phase, "refit": fold.refit, **describe(retriever)}, sort_keys=True)
    return cache / "mgpt" / (hashlib.sha1(key.encode()).hexdigest()[:16] + ".json")


def measure(scorer, fold, split, protocol, fit_s: float, path: Path) -> dict:
    from mgpt.domains.movielens.evaluate import evaluate

    result = evaluate(scorer.scores, fold, split, protocol)
    out = {"full": result.full.as_dict(), "sampled": result.sampled.as_dict(), "fit_s": fit_s}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


def timed_eval(retriever, fold, split, protocol, cache: Path) -> dict:
    """Fit and measure (or the kept measurement of a rerun)."""
    path = cache_file(cache, fold, retriever)
    if path.is_file():
        return json.loads(path.read_text())
    started = time.perf_counter()
    scorer = retriever.fit(fold)
    return measure(scorer, fold, split, protocol, time.perf_counter() - started, path)


def variants(retriever, fold, split, protocol, cache: Path):
    """(settings, result) for the retriever; for the embedding, one training measured with
    each popularity prior (the prior is applied after training)."""
    from dataclasses import replace

    if not hasattr(retriever, "vectors"):
        yield retriever, timed_eval(retriever, fold, split, protocol, cache)
        return
    each = [replace(retriever, prior=prior) for prior in PRIORS]
    paths = [cache_file(cache, fold, r) for r in each]
    if all(p.is_file() for p in paths):
        yield from ((r, json.loads(p.read_text())) for r, p in zip(each, paths))
        return
    started = time.perf_counter()
    vectors = retriever.vectors(fold)
    fit = time.perf_counter() - started
    for r, p in zip(each, paths):
        yield r, measure(vectors.scorer(r.prior), fold, split, protocol, fit, p)


def select_on_valid(split, families: list[str], protocol, cache: Path, log) -> dict[str, dict]:
    """Each family's best settings by full-ranking NDCG@10 on the validation item."""
    from mgpt.domains.movielens.retrievers import describe

    fold = split.fold("valid")
    chosen = {}
    for family in families:
        for base in grid(seed=0)[family]:
            for retriever, result in variants(base, fold, split, protocol, cache):
                result = {**describe(retriever), **result}
                log(f"valid {family} {result['settings']}: NDCG@10 {result['full']['ndcg']:.4f} "
                    f"HR@10 {result['full']['recall']:.4f} (fit {result['fit_s']:.1f} s)")
                if family not in chosen or result["full"]["ndcg"] > chosen[family]["full"]["ndcg"]:
                    chosen[family] = {**result, "object": retriever}
    return chosen


def with_seed(retriever, seed: int):
    from dataclasses import replace

    return replace(retriever, seed=seed) if hasattr(retriever, "seed") else retriever


def mgpt_test_rows(split, chosen: dict, args, protocol, log) -> list[dict]:
    """Each chosen retriever on the test item, learning from train (RecBole's protocol) and
    refit on train + validation; and ItemKNN with RecBole's own settings (the same model on
    both sides)."""
    from mgpt.domains.movielens.retrievers import ItemKNN

    default = max(chosen, key=lambda f: chosen[f]["full"]["ndcg"])
    test, refit = split.fold("test"), split.fold("test", refit=True)
    plans = [(f, chosen[f]["object"], test, f"mgpt {f}") for f in chosen]
    if "itemknn" in chosen:
        plans.insert(0, ("itemknn", ItemKNN(), test, "mgpt itemknn, RecBole's settings (k=100)"))
    plans += [(f, chosen[f]["object"], refit, f"mgpt {f}, refit on train+valid") for f in chosen]
    rows = []
    for family, retriever, fold, label in plans:
        runs = []
        seeds = [0] if family in DETERMINISTIC else args.refit_seeds if fold.refit else args.seeds
        for seed in seeds:
            runs.append(timed_eval(with_seed(retriever, seed), fold, split, protocol, args.out))
            log(f"test {label} seed {seed}: NDCG@10 {runs[-1]['full']['ndcg']:.4f}")
        rows.append({"model": family, "by": label, "runs": runs, "default": label == f"mgpt {default}"})
    return rows


def recbole_jobs(args) -> list[tuple[str, int]]:
    """Every (model, seed), the slowest models first so parallel runs finish together."""
    jobs = [(m, seed) for m in args.recbole_models for seed in ([0] if m in DETERMINISTIC else args.seeds)]
    slow = {"SASRec": 0, "LightGCN": 1, "BPR": 2}
    return sorted(jobs, key=lambda job: slow.get(job[0], 3))


def start_recbole(python: Path, args, log) -> tuple[threading.Thread, dict]:
    """Run RecBole's jobs, ``--recbole-parallel`` at a time, in threads beside mgpt's own work."""
    from concurrent.futures import ThreadPoolExecutor

    done: dict = {}

    def one(job: tuple[str, int]) -> None:
        model, seed = job
        out = args.out / "recbole" / f"{model}-{seed}"
        try:
            done[job] = run_recbole(python, model, seed, args.epochs.get(model, 1), args.data_path, out)
            log(f"recbole {model} seed {seed}: {done[job]['epochs_run']} epochs, {done[job]['seconds']:.0f} s")
        except (RuntimeError, OSError) as exc:
            done[job] = exc
            log(f"recbole {model} seed {seed} FAILED: {exc}")

    def run_all() -> None:
        with ThreadPoolExecutor(args.recbole_parallel) as pool:
            list(pool.map(one, recbole_jobs(args)))

    thread = threading.Thread(target=run_all, name="recbole")
    thread.start()
    return thread, done


def recbole_rows(split, done: dict, args, protocol, log) -> tuple[list[dict], dict]:
    """RecBole's runs: its own metrics, and mgpt's metrics on its scores; the split check."""
    import numpy as np

    from mgpt.domains.movielens.evaluate import evaluate

    rows, agree = [], {}
    fold = split.fold("test")
    for model in args.recbole_models:
        own, ours = [], []
        for (name, seed), result in sorted(done.items()):
            if name != model or isinstance(result, Exception):
                continue
            saved = np.load(args.out / "recbole" / f"{model}-{seed}" / "scores.npz")
            agree[f"{model}-{seed}"] = split_agreement(split, result["split"])
            order = {t: j for j, t in enumerate(saved["items"])}
            columns = np.array([order[t] for t in split.item_ids])
            by_user = {t: r for r, t in enumerate(saved["users"])}
            matrix = saved["scores"][[by_user[u] for u in split.user_ids]][:, columns]
            ev = evaluate(lambda users: matrix[users], fold, split, protocol)
            extra = {"fit_s": result["seconds"], "epochs": result["epochs_run"]}
            own.append({"full": {"ndcg": result["test"]["ndcg@10"], "recall": result["test"]["recall@10"],
                                 "mrr_at_k": result["test"]["mrr@10"]}, **extra})
            ours.append({"full": ev.full.as_dict(), "sampled": ev.sampled.as_dict(), **extra})
            log(f"recbole {model} seed {seed}: own NDCG@10 {own[-1]['full']['ndcg']:.4f}, mgpt metrics "
                f"{ev.full.ndcg:.4f}; split {agree[f'{model}-{seed}']}")
        if own:
            rows.append({"model": model, "by": f"RecBole {model}, RecBole's metrics", "runs": own})
            rows.append({"model": model, "by": f"RecBole {model}, mgpt's metrics", "runs": ours})
    return rows, agree


def split_agreement(split, theirs: dict) -> str:
    """How many users have the same validation and test item on both sides."""
    same_test = sum(split.item_ids[split.test(u)] == theirs["test"].get(uid) for u, uid in enumerate(split.user_ids))
    same_valid = sum(split.item_ids[split.valid(u)] == theirs["valid"].get(uid) for u, uid in enumerate(split.user_ids))
    n = len(split.user_ids)
    return f"test {same_test}/{n}, valid {same_valid}/{n}"


def cell(runs: list[dict], part: str, key: str) -> str:
    values = [r[part][key] for r in runs if part in r and key in r[part]]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def table(rows: list[dict]) -> str:
    head = ("| model | seeds | NDCG@10 | Recall@10 | MRR@10 | MRR | sampled NDCG@10 | sampled HR@10 | fit s |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = []
    for row in rows:
        runs = row["runs"]
        name = f"**{row['by']}** (default)" if row.get("default") else row["by"]
        fit = statistics.mean(r["fit_s"] for r in runs)
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(
            cell(runs, part, key) for part, key in (("full", "ndcg"), ("full", "recall"), ("full", "mrr_at_k"),
                                                    ("full", "mrr"), ("sampled", "ndcg"), ("sampled", "recall")))
            + f" | {fit:.0f} |")
    return head + "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench_recommend"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--refit-seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="seeds of the stochastic retrievers refit on train+valid")
    p.add_argument("--recbole-parallel", type=int, default=2, help="RecBole runs at a time")
    p.add_argument("--families", nargs="+", default=["pop", "itemknn", "als", "bpr", "cooc"])
    p.add_argument("--recbole-models", nargs="+", default=RECBOLE_MODELS)
    p.add_argument("--skip-recbole", action="store_true")
    p.add_argument("--venv", type=Path, default=None, help="RecBole's venv (default $MGPT_HOME/venvs/recbole)")
    p.add_argument("--epoch-cap", nargs="+", default=["BPR=50", "LightGCN=30", "SASRec=2"],
                   help="MODEL=EPOCHS caps (early stopping on validation NDCG@10 after 10 epochs without gain)")
    # The worker's arguments (this file run by RecBole's venv).
    p.add_argument("--recbole-worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--data-path", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.recbole_worker:
        args.epochs = {m: int(e) for m, _, e in (c.partition("=") for c in args.epoch_cap)}
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.recbole_worker:
        recbole_worker(args.recbole_worker, args.seed, args.epochs, args.data_path, Path(args.out).resolve())
        return
    from mgpt.domains.movielens.data import fetch_movielens, load_movielens, mgpt_home
    from mgpt.domains.movielens.evaluate import Protocol
    from mgpt.domains.movielens.split import leave_one_out

    os.environ.update(ONE_THREAD)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    logfile = (args.out / "log.txt").open("a")

    def log(line: str) -> None:
        print(line, flush=True)
        logfile.write(line + "\n")
        logfile.flush()

    started = time.perf_counter()
    folder = fetch_movielens(progress=log)
    args.data_path = folder.parent
    data = load_movielens(folder)
    split = leave_one_out(data.ratings, list(data.movies))
    protocol = Protocol(k=10, negatives=99, seed=0)
    recbole = None
    if not args.skip_recbole:
        python = ensure_venv(args.venv or mgpt_home(os.environ) / "venvs" / "recbole")
        recbole = start_recbole(python, args, log)
    chosen = select_on_valid(split, args.families, protocol, args.out, log)
    rows = mgpt_test_rows(split, chosen, args, protocol, log)
    agree = {}
    if recbole is not None:
        recbole[0].join()
        recbole_part, agree = recbole_rows(split, recbole[1], args, protocol, log)
        rows = recbole_part + rows
    wall = time.perf_counter() - started
    text = table(rows)
    log("\n" + text)
    log(f"split agreement with RecBole: {agree}")
    log(f"wall {wall:.0f} s on {platform.node()} ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    (args.out / "table.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps({
        "valid": {f: {k: v for k, v in c.items() if k != "object"} for f, c in chosen.items()},
        "rows": rows, "split_agreement": agree, "wall_s": wall, "argv": sys.argv[1:],
    }, indent=1, default=str))


if __name__ == "__main__":
    main()

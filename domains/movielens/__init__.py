"""MovieLens-100K as a domain: the data (fetched from the ``recbole`` wheel), RecBole's exact
leave-one-out split, ranking metrics, learned candidate retrievers and a store that keeps
one trained. Plain software: no LLM calls. Needs numpy and scipy (``pip install
'mgpt[recommend]'``, which also brings ``implicit`` for the ALS and BPR retrievers)::

    from mgpt.domains.movielens import ItemKNN, evaluate, leave_one_out, load_movielens
    data = load_movielens()
    split = leave_one_out(data.ratings, list(data.movies))
    fold = split.fold("valid")
    print(evaluate(ItemKNN().fit(fold).scores, fold, split).full)

Names are imported lazily: ``import mgpt.domains.movielens`` imports neither numpy nor scipy.
"""

from mgpt._lazy import lazy_exports

_EXPORTS = {
    "DatasetUnavailable": "errors", "MovieLensError": "errors", "StoreError": "errors",
    "UnknownItemError": "errors", "UnknownUserError": "errors",
    "FETCH_COMMAND": "data", "Movie": "data", "MovieLens": "data", "Ratings": "data",
    "dataset_dir": "data", "fetch_movielens": "data", "load_movielens": "data",
    "Fold": "split", "Split": "split", "leave_one_out": "split", "recbole_order": "split",
    "Metrics": "metrics", "full_ranks": "metrics", "sample_negatives": "metrics", "sampled_ranks": "metrics",
    "summarize": "metrics",
    "Evaluation": "evaluate", "Protocol": "evaluate", "evaluate": "evaluate",
    "ImplicitALS": "retrievers", "ImplicitBPR": "retrievers", "ItemKNN": "retrievers", "Popularity": "retrievers",
    "CooccurrenceEmbedding": "embedding",
    "DEFAULT_RETRIEVER": "store",
    "Recommendation": "store", "RecommendStore": "store", "train_store": "store",
}

__all__ = sorted(_EXPORTS)
_getattr, __dir__ = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str):
    try:
        return _getattr(name)
    except ModuleNotFoundError as exc:
        if exc.name not in ("numpy", "scipy"):
            raise
        from .errors import MovieLensError

        raise MovieLensError(f"the MovieLens domain needs {exc.name}: pip install 'mgpt[recommend]'") from None

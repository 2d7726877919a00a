"""Ranking metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mgpt.domains.movielens.errors import MovieLensError
from mgpt.domains.movielens.metrics import full_ranks, sample_negatives, sampled_ranks, summarize


def test_full_rank_masks_and_counts_ties_against_the_target():
    scores = np.array([[0.9, 0.5, 0.7, 0.1, 0.7],
                       [0.2, 0.3, 0.1, 0.0, 0.4]])
    # Row 0: target 2 (0.7); item 0 (0.9) is masked, item 4 ties at 0.7 and ranks above it.
    # Row 1: target 3 (0.0), nothing masked: last of 5.
    ranks = full_ranks(scores, np.array([2, 3]), [np.array([0]), np.array([], dtype=np.int64)])
    assert ranks.tolist() == [2, 5]
    assert full_ranks(scores[:1], np.array([2]), [np.array([], dtype=np.int64)]).tolist() == [3]
    assert scores[0, 0] == 0.9  # the caller's scores are not overwritten


def test_a_masked_target_is_refused():
    with pytest.raises(MovieLensError, match="target item 1 is masked"):
        full_ranks(np.zeros((1, 3)), np.array([1]), [np.array([1])])


def test_constant_scores_rank_the_target_last():
    assert full_ranks(np.ones((1, 6)), np.array([0]), [np.array([], dtype=np.int64)]).tolist() == [6]


def test_summary_by_hand():
    m = summarize(np.array([1, 2, 11, 4]), k=10)
    assert m.recall == pytest.approx(3 / 4)
    assert m.ndcg == pytest.approx((1 + 1 / math.log2(3) + 0 + 1 / math.log2(5)) / 4)
    assert m.mrr == pytest.approx((1 + 1 / 2 + 1 / 11 + 1 / 4) / 4)
    assert m.mrr_at_k == pytest.approx((1 + 1 / 2 + 0 + 1 / 4) / 4)
    assert (m.k, m.users) == (10, 4)
    assert summarize(np.array([3]), k=2).as_dict() == {"ndcg": 0.0, "recall": 0.0, "mrr": pytest.approx(1 / 3),
                                                       "mrr_at_k": 0.0, "k": 2, "users": 1}
    with pytest.raises(MovieLensError):
        summarize(np.array([], dtype=np.int64))
    with pytest.raises(MovieLensError):
        summarize(np.array([0]))


def test_sampled_rank_by_hand():
    scores = np.array([[0.1, 0.8, 0.3, 0.5, 0.8]])
    # Target 1 (0.8) against negatives 0, 2, 4: item 4 ties with it.
    assert sampled_ranks(scores, np.array([1]), np.array([[0, 2, 4]])).tolist() == [2]
    assert sampled_ranks(scores, np.array([3]), np.array([[0, 2]])).tolist() == [1]


def test_negatives_are_unrated_distinct_and_seeded():
    rated = [np.array([0, 1, 2]), np.array([5, 6])]
    users = np.array([0, 1])
    neg = sample_negatives(rated, users, 12, n=5, seed=7)
    assert neg.shape == (2, 5)
    for row, items in zip(neg, rated):
        assert len(set(row.tolist())) == 5 and not set(row.tolist()) & set(items.tolist())
    assert (sample_negatives(rated, users, 12, n=5, seed=7) == neg).all()
    assert not (sample_negatives(rated, users, 12, n=5, seed=8) == neg).all()
    with pytest.raises(MovieLensError, match="cannot sample 10"):
        sample_negatives(rated, users, 12, n=10, seed=0)

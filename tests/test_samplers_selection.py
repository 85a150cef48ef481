"""best-of-k and weighted majority against brute force over all k-subsets."""

import itertools

import numpy as np
import pytest
from conftest import brute_vote
from hypothesis import given, settings
from hypothesis import strategies as st

from ttc.metrics.estimators import best_of_k, majority_at_k, pass_at_k, weighted_majority_at_k


def brute_best(scores, correct, k):
    """Average over subsets; within a subset, average over the tied top-scored samples."""
    vals = []
    for s in itertools.combinations(range(len(scores)), k):
        top = max(scores[i] for i in s)
        tied = [i for i in s if scores[i] == top]
        vals.append(np.mean([correct[i] for i in tied]))
    return float(np.mean(vals))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=7), st.data())
def test_best_of_k_matches_brute_force(items, data):
    scores = [float(s) for s, _ in items]  # few distinct values: many ties
    correct = [c for _, c in items]
    k = data.draw(st.integers(1, len(items)))
    assert best_of_k(scores, correct, k) == pytest.approx(brute_best(scores, correct, k))


def test_best_of_k_by_hand():
    # scores 0.9 (wrong), 0.5 (right), 0.1 (right); k=2: subsets {a,b} -> wrong, {a,c} -> wrong, {b,c} -> right
    assert best_of_k([0.9, 0.5, 0.1], [False, True, True], 2) == pytest.approx(1 / 3)
    assert best_of_k([0.9, 0.5, 0.1], [False, True, True], 1) == pytest.approx(2 / 3)
    assert best_of_k([0.9, 0.5, 0.1], [False, True, True], 3) == 0.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=8), st.data())
def test_oracle_best_of_k_equals_pass_at_k(correct, data):
    k = data.draw(st.integers(1, len(correct)))
    scores = [1.0 if c else 0.0 for c in correct]
    assert best_of_k(scores, correct, k) == pytest.approx(pass_at_k(len(correct), sum(correct), k))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["1", "2", "3", None]), st.sampled_from([0.0, 0.25, 0.5, 1.0])),
                min_size=1, max_size=7), st.data())
def test_weighted_majority_matches_brute_force(items, data):
    answers = [a for a, _ in items]
    weights = [w for _, w in items]
    correct = [a == "2" for a in answers]
    k = data.draw(st.integers(1, len(items)))
    assert weighted_majority_at_k(answers, weights, correct, k) == pytest.approx(
        brute_vote(answers, correct, k, weights))


def test_equal_weights_give_the_plain_vote():
    answers = ["1", "2", "2", "3", None, "2", "1"]
    correct = [a == "1" for a in answers]
    for k in range(1, 8):
        assert weighted_majority_at_k(answers, [1.0] * 7, correct, k) == pytest.approx(
            majority_at_k(answers, correct, k))


def test_weighted_vote_by_hand():
    # "1" has one sample scored 0.9; "2" two samples scored 0.3 each: 0.9 > 0.6, so "1" wins
    assert weighted_majority_at_k(["1", "2", "2"], [0.9, 0.3, 0.3], [True, False, False], 3) == 1.0
    with pytest.raises(ValueError):
        weighted_majority_at_k(["1"], [-1.0], [True], 1)

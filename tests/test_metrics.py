"""Estimators on cases computed by hand."""

from math import comb

import numpy as np
import pytest

from ttc.metrics.estimators import bootstrap_ci, bootstrap_ci_runs, majority_at_k, pass_at_k


@pytest.mark.parametrize("n,c,k,expected", [
    (4, 0, 2, 0.0),
    (4, 4, 1, 1.0),
    (4, 1, 1, 0.25),
    (4, 1, 2, 0.5),          # 1 - C(3,2)/C(4,2) = 1 - 3/6
    (5, 2, 2, 0.7),          # 1 - C(3,2)/C(5,2) = 1 - 3/10
    (10, 3, 4, 1 - comb(7, 4) / comb(10, 4)),
    (3, 2, 2, 1.0),          # n - c < k
])
def test_pass_at_k(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_rejects_bad_input():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_majority_full_set_and_ties():
    answers, correct = ["7", "7", "3"], [True, True, False]
    assert majority_at_k(answers, correct, 3) == 1.0
    # 2-subsets: {7,7} right, {7,3} x2 a tie worth 1/2 each -> (1 + 0.5 + 0.5) / 3
    assert majority_at_k(answers, correct, 2) == pytest.approx(2 / 3)
    # k=1 is the mean accuracy
    assert majority_at_k(answers, correct, 1) == pytest.approx(2 / 3)


def test_majority_ignores_unparsed_answers():
    assert majority_at_k([None, None, "5"], [False, False, True], 3) == 1.0
    assert majority_at_k([None, None], [False, False], 2) == 0.0
    # subsets of size 2 from [None, None, "5"]: {N,N}=0, {N,5}=1, {N,5}=1 -> 2/3
    assert majority_at_k([None, None, "5"], [False, False, True], 2) == pytest.approx(2 / 3)


def test_majority_is_exact_where_enumeration_is_impossible():
    # 30 samples, k=15: 155 million subsets. Two answer classes of 12 (right) and 10, 8 unparsed: the vote
    # is right iff X_right > X_wrong, half when they tie, 0 when both are absent (impossible at k=15 > 8).
    answers = ["r"] * 12 + ["w"] * 10 + [None] * 8
    correct = [True] * 12 + [False] * 18
    k, expected = 15, 0.0
    for x in range(0, 13):
        for y in range(0, 11):
            z = k - x - y
            if not 0 <= z <= 8:
                continue
            p = comb(12, x) * comb(10, y) * comb(8, z) / comb(30, k)
            expected += p * (1.0 if x > y else 0.5 if x == y and x > 0 else 0.0)
    assert majority_at_k(answers, correct, k) == pytest.approx(expected, abs=1e-12)


def test_bootstrap_ci_brackets_mean():
    values = [0, 1] * 50
    lo, hi = bootstrap_ci(values, seed=0)
    assert lo < 0.5 < hi
    assert 0.35 < lo and hi < 0.65
    assert bootstrap_ci([0.3]) == (0.3, 0.3)


@pytest.mark.parametrize("max_cells", [1 << 22, 5000, 100])
def test_bootstrap_of_many_runs_equals_one_run_at_a_time(max_cells):
    """Bit for bit, runs of one length sharing their draws, in chunks or not (5000 cells: a run at a time; 100:
    a few resamples at a time too)."""
    rng = np.random.default_rng(7)
    sizes = rng.choice([1, 2, 3, 8, 8, 8, 13, 40], size=60)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    values = rng.random(int(sizes.sum())).round(3) / 3
    lo, hi = bootstrap_ci_runs(values, starts, n_boot=500, seed=11, max_cells=max_cells)
    for a, m, low, high in zip(starts, sizes, lo, hi):
        assert (low, high) == bootstrap_ci(values[a:a + m], n_boot=500, seed=11)

"""Estimators that derive every budget k <= n from one set of n stored samples per problem.

* ``pass_at_k``: Chen et al. (2021), ``1 - C(n-c, k) / C(n, k)``: the probability that a uniformly random
  k-subset of the n samples holds at least one correct one. Unbiased for the k-sample pass rate.
* ``majority_at_k``: self-consistency (Wang et al. 2022) at budget k: the expected accuracy of a
  majority vote over a uniformly random k-subset. Samples whose answer could not be extracted do not
  vote; a subset with no votes scores 0. Ties are broken uniformly at random, so a tie between the
  correct answer and t-1 others scores 1/t. Computed exactly by enumerating subsets when there are at
  most ``exact_limit`` of them, else by ``n_draws`` random subsets from a seeded generator.
* ``bootstrap_ci``: percentile interval of the mean over problems, resampling problems.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    # 1 - prod_{i=n-c+1}^{n} (1 - k/i), numerically stable form of the binomial ratio
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _vote(answers: Sequence[Hashable | None], correct: Sequence[bool]) -> float:
    """Score of one majority vote: 1/t if the correct answer is among t tied winners, else 0."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return 0.0
    top = max(counts.values())
    winners = [a for a, v in counts.items() if v == top]
    good = {a for a, ok in zip(answers, correct) if ok and a is not None}
    return sum(1 for w in winners if w in good) / len(winners)


def majority_at_k(answers: Sequence[Hashable | None], correct: Sequence[bool], k: int,
                  exact_limit: int = 5000, n_draws: int = 2000, seed: int = 0) -> float:
    """Expected accuracy of a majority vote over a random k-subset of the samples."""
    n = len(answers)
    if len(correct) != n or not 1 <= k <= n:
        raise ValueError(f"need len(answers) == len(correct) and 1 <= k <= n, got n={n} k={k}")
    if k == n:
        return _vote(answers, correct)
    if math.comb(n, k) <= exact_limit:
        subsets = itertools.combinations(range(n), k)
        scores = [_vote([answers[i] for i in s], [correct[i] for i in s]) for s in subsets]
        return float(np.mean(scores))
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(n_draws):
        s = rng.choice(n, size=k, replace=False)
        total += _vote([answers[i] for i in s], [correct[i] for i in s])
    return total / n_draws


def bootstrap_ci(values: Sequence[float], n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of per-problem values."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"))
    if x.size == 1:
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1 - level) / 2
    return (float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)))

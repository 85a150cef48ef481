"""Estimators for choosing among n stored, scored samples at every budget k <= n.

* ``best_of_k``: the expected accuracy of the top-scored sample of a uniformly random k-subset, exact and
  in closed form. Sort the n samples by score, highest first; the sample at rank i (from 0) is the top of
  a random k-subset with probability ``C(n-1-i, k-1) / C(n, k)``. Ties are broken uniformly at random, so
  a sample's correctness is replaced by the mean over its tie group. (search-and-learn's best-of-n picks
  from one fixed subset per k; this averages over all of them.)
* ``weighted_majority_at_k``: the expected accuracy of a vote over a random k-subset in which each
  distinct answer collects the sum of its samples' scores; unextracted answers do not vote; a tie between
  the correct answer and t-1 others scores 1/t. Exact by enumeration when there are at most
  ``exact_limit`` subsets, else averaged over ``n_draws`` seeded random subsets (as ``majority_at_k``).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np


def best_of_k(scores: Sequence[float], correct: Sequence[bool], k: int) -> float:
    n = len(scores)
    if len(correct) != n or not 1 <= k <= n:
        raise ValueError(f"need len(scores) == len(correct) and 1 <= k <= n, got n={n} k={k}")
    order = sorted(range(n), key=lambda i: -scores[i])
    ranked = [float(correct[i]) for i in order]
    s = [scores[i] for i in order]
    i = 0
    while i < n:  # tie groups: every member gets the group's mean correctness
        j = i
        while j + 1 < n and s[j + 1] == s[i]:
            j += 1
        mean = sum(ranked[i:j + 1]) / (j + 1 - i)
        ranked[i:j + 1] = [mean] * (j + 1 - i)
        i = j + 1
    total = math.comb(n, k)
    return float(sum(math.comb(n - 1 - r, k - 1) * ranked[r] for r in range(n - k + 1)) / total)


def _weighted_vote(answers, weights, correct) -> float:
    votes: dict = defaultdict(float)
    for a, w in zip(answers, weights):
        if a is not None:
            votes[a] += w
    if not votes:
        return 0.0
    top = max(votes.values())
    winners = [a for a, v in votes.items() if math.isclose(v, top, rel_tol=1e-12, abs_tol=1e-15)]
    good = {a for a, ok in zip(answers, correct) if ok and a is not None}
    return sum(1 for w in winners if w in good) / len(winners)


def weighted_majority_at_k(answers: Sequence[Hashable | None], weights: Sequence[float],
                           correct: Sequence[bool], k: int, exact_limit: int = 5000, n_draws: int = 2000,
                           seed: int = 0) -> float:
    n = len(answers)
    if not (len(weights) == len(correct) == n) or not 1 <= k <= n:
        raise ValueError(f"need equal lengths and 1 <= k <= n, got n={n} k={k}")
    if any(w < 0 for w in weights):
        raise ValueError("vote weights must be non-negative")

    def vote(idx):
        return _weighted_vote([answers[i] for i in idx], [weights[i] for i in idx], [correct[i] for i in idx])

    if k == n:
        return vote(range(n))
    if math.comb(n, k) <= exact_limit:
        return float(np.mean([vote(s) for s in itertools.combinations(range(n), k)]))
    rng = np.random.default_rng(seed)
    return float(np.mean([vote(rng.choice(n, size=k, replace=False)) for _ in range(n_draws)]))

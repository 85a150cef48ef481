"""Estimators that derive every budget k <= n from one set of n stored samples per problem.

All of them are expectations over a uniformly random k-subset of the n samples, computed exactly:

* ``pass_at_k``: Chen et al. (2021), ``1 - C(n-c, k) / C(n, k)``: some sample of the subset is correct.
  Unbiased for the k-sample pass rate; ``pass_at_k_array`` vectorizes it over problems.
* ``majority_at_k``: self-consistency (Wang et al. 2022): a majority vote over the subset is correct.
  Samples whose answer could not be extracted do not vote; a subset with no votes scores 0. Ties are broken
  uniformly at random, so a tie between the correct answer and t-1 others scores 1/t. An answer is correct
  if any of its samples was graded correct. Exact at any n by counting over answer classes
  (``ttc.metrics.voting``), never by enumerating or sampling subsets.
* ``best_of_k``: the top-scored sample of the subset is correct; a tie in score is broken uniformly at
  random. Closed form: sorted by score, the sample at rank i (from 0) tops the subset with probability
  ``C(n-1-i, k-1) / C(n, k)``; a tie group shares its mean correctness.
* ``weighted_majority_at_k``: each distinct answer collects the sum of its samples' scores; the highest
  total wins, ties as for ``majority_at_k``. Exact when every sample of an answer has the same score
  (a weighted class count), or when there are at most ``exact_limit`` subsets; otherwise the class totals
  are subset sums of real numbers, for which no counting formula exists, and the value is a Monte Carlo
  mean over ``n_draws`` seeded subsets whose standard error is returned beside it
  (``weighted_majority_with_se``) and stored in the summary's ``se`` column.
* ``bootstrap_ci``: percentile interval of the mean over problems, resampling problems.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Sequence

import numpy as np
from scipy.special import gammaln

from ttc.metrics.voting import classes, vote_at_k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    # 1 - prod_{i=n-c+1}^{n} (1 - k/i), numerically stable form of the binomial ratio
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_array(n, c, k: int) -> np.ndarray:
    """``pass_at_k`` for arrays of (n, c) at one k; NaN where k > n."""
    n, c = np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64)
    if n.size == 0:
        return np.zeros(0)
    top = int(n.max())
    # cum[i] = sum_{j=k+1}^{i} log(1 - k/j): the product's logarithm between any two bounds above k
    j = np.arange(1, top + 1, dtype=float)
    terms = np.zeros(top)
    above = j > k
    terms[above] = np.log1p(-k / j[above])
    cum = np.concatenate([[0.0], np.cumsum(terms)])
    lo = np.clip(np.maximum(n - c, k), 0, top)
    out = np.where(n - c < k, 1.0, 0.0 - np.expm1(cum[n.clip(0, top)] - cum[lo]))  # 0.0 -: never -0.0
    return np.where(k > n, np.nan, out)


def majority_at_k(answers: Sequence[Hashable | None], correct: Sequence[bool], k: int) -> float:
    """Expected accuracy of a majority vote over a random k-subset of the samples (exact)."""
    n = len(answers)
    if len(correct) != n or not 1 <= k <= n:
        raise ValueError(f"need len(answers) == len(correct) and 1 <= k <= n, got n={n} k={k}")
    counts, good, unparsed, _ = classes(answers, correct)
    return vote_at_k(counts, good, unparsed, k) if counts else 0.0


def best_of_k(scores: Sequence[float], correct: Sequence[bool], k: int) -> float:
    """Expected accuracy of the top-scored sample of a random k-subset (exact)."""
    s = np.asarray(scores, dtype=float)
    ok = np.asarray(correct, dtype=float)
    n = s.size
    if ok.size != n or not 1 <= k <= n:
        raise ValueError(f"need len(scores) == len(correct) and 1 <= k <= n, got n={n} k={k}")
    order = np.argsort(-s, kind="stable")
    s, ok = s[order], ok[order]
    # tie groups: every member gets the group's mean correctness
    starts = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
    sums = np.add.reduceat(ok, starts)
    sizes = np.diff(np.concatenate([starts, [n]]))
    ranked = np.repeat(sums / sizes, sizes)
    r = np.arange(n - k + 1)
    lf = gammaln(np.arange(n + 1, dtype=float) + 1.0)  # log j!
    # log C(n-1-r, k-1) - log C(n, k)
    logw = (lf[n - 1 - r] - lf[k - 1] - lf[n - k - r]) - (lf[n] - lf[k] - lf[n - k])
    return float(np.dot(np.exp(logw), ranked[: n - k + 1]))


def weighted_majority_with_se(answers: Sequence[Hashable | None], weights: Sequence[float],
                              correct: Sequence[bool], k: int, exact_limit: int = 5000, n_draws: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """``(value, standard error)`` of a score-weighted vote over a random k-subset; the error is 0 when the
    value is exact (see the module docstring for when it is not)."""
    n = len(answers)
    if not (len(weights) == len(correct) == n) or not 1 <= k <= n:
        raise ValueError(f"need equal lengths and 1 <= k <= n, got n={n} k={k}")
    w = np.asarray(weights, dtype=float)
    if (w < 0).any():
        raise ValueError("vote weights must be non-negative")
    counts, good, unparsed, class_w = classes(answers, correct, w)
    if not counts:
        return 0.0, 0.0
    if class_w is not False:
        return vote_at_k(counts, good, unparsed, k, class_w), 0.0
    if k == n or math.comb(n, k) <= exact_limit:
        subsets = [range(n)] if k == n else itertools.combinations(range(n), k)
        ids, good_arr = _class_ids(answers, correct)
        vals = [_subset_vote(ids[list(s)], w[list(s)], good_arr) for s in subsets]
        return float(np.mean(vals)), 0.0
    ids, good_arr = _class_ids(answers, correct)
    rng = np.random.default_rng(seed)
    draws = np.argpartition(rng.random((n_draws, n)), k - 1, axis=1)[:, :k]
    vals = _draw_votes(ids[draws], w[draws], good_arr)
    return float(vals.mean()), float(vals.std(ddof=1) / math.sqrt(n_draws))


def weighted_majority_at_k(answers, weights, correct, k: int, **kwargs) -> float:
    return weighted_majority_with_se(answers, weights, correct, k, **kwargs)[0]


def _class_ids(answers, correct) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample class index (-1 for unparsed) and per-class correctness."""
    idx: dict = {}
    ids = np.array([-1 if a is None else idx.setdefault(a, len(idx)) for a in answers], dtype=np.int64)
    good = np.zeros(len(idx), dtype=bool)
    for i, ok in zip(ids, correct):
        if i >= 0 and ok:
            good[i] = True
    return ids, good


def _draw_votes(ids: np.ndarray, w: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Scores of weighted votes, one per row of (class ids, weights) of a drawn subset."""
    d, r = ids.shape[0], good.size
    rows = np.repeat(np.arange(d), ids.shape[1])
    flat = ids.ravel()
    keep = flat >= 0
    totals = np.zeros((d, r))
    present = np.zeros((d, r), dtype=bool)
    np.add.at(totals, (rows[keep], flat[keep]), w.ravel()[keep])
    present[rows[keep], flat[keep]] = True
    top = np.where(present, totals, -np.inf).max(axis=1, keepdims=True)
    winners = present & np.isclose(totals, top, rtol=1e-12, atol=1e-15)
    n_win = winners.sum(axis=1)
    return np.where(n_win > 0, (winners & good).sum(axis=1) / np.maximum(n_win, 1), 0.0)


def _subset_vote(ids: np.ndarray, w: np.ndarray, good: np.ndarray) -> float:
    return float(_draw_votes(ids[None, :], w[None, :], good)[0])


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


def bootstrap_ci_runs(values: Sequence[float], starts: Sequence[int], n_boot: int = 2000, level: float = 0.95,
                      seed: int = 0, max_cells: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """``bootstrap_ci`` of every run ``values[starts[i]:starts[i+1]]`` (the last one to the end), the same
    numbers: the resampled indices depend only on the seed and the run's length, so the runs of one length
    are resampled together, and drawn and reduced at most ``max_cells`` resampled values at a time (numpy draws
    the same indices in pieces as at once, so the numbers do not depend on ``max_cells``; the memory does: a
    run of 312,500 problems once took 2000 x 312,500 indices and as many values at once, 10 GB)."""
    x = np.asarray(values, dtype=float)
    starts = np.asarray(starts, dtype=np.int64)
    sizes = np.diff(np.concatenate([starts, [x.size]]))
    lo, hi = np.full(len(starts), np.nan), np.full(len(starts), np.nan)
    one = sizes == 1
    lo[one] = hi[one] = x[starts[one]]
    alpha = (1 - level) / 2
    for m in np.unique(sizes[sizes > 1]).tolist():
        which = np.flatnonzero(sizes == m)
        rows = x[starts[which][:, None] + np.arange(m)]
        rng = np.random.default_rng(seed)
        draws = max(1, min(n_boot, max_cells // m))  # resamples drawn at a time
        step = max(1, max_cells // (draws * m))  # runs reduced at a time
        means = np.empty((len(which), n_boot))
        for r in range(0, n_boot, draws):
            idx = rng.integers(0, m, size=(min(draws, n_boot - r), m))
            for a in range(0, len(which), step):
                part = rows[a:a + step]
                # each run's resamples, stacked: reduced row by row as bootstrap_ci reduces its own
                means[a:a + step, r:r + len(idx)] = part[:, idx].reshape(-1, m).mean(axis=1).reshape(len(part), -1)
        lo[which] = np.quantile(means, alpha, axis=1)
        hi[which] = np.quantile(means, 1 - alpha, axis=1)
    return lo, hi

"""The exact expected score of a (weighted) vote over a uniformly random k-subset of n samples.

The samples fall into answer classes with sizes ``m_i`` (samples whose answer could not be extracted form
the unparsed pool ``u``, which never votes). In a random k-subset the class counts ``X_i`` follow the
multivariate hypergeometric law. Class i's vote total is ``w_i * X_i``; the classes with the highest
positive-count total win, a tie between the correct answer and t-1 others scores 1/t, and a subset with no
votes scores 0. So

    E[score] = sum over correct classes g, over v >= 1 of
               P(X_g = v, every other class's total <= w_g v, t-1 others tied at it) / t.

Counting, not enumerating: the hypergeometric law is the law of independent ``X_i ~ Binomial(m_i, p)``
conditioned on ``sum X_i = k``, for any p in (0, 1); with ``p = k/n`` every factor is a probability, so
nothing overflows and the conditioning event has probability about ``1/sqrt(2 pi k (1-k/n))``. For each
(g, v) the other classes split into free ones (whose total can never exceed ``w_g v``: they and the
unparsed pool merge into one binomial) and constrained ones, whose truncated generating polynomials
``L_i(x) + s E_i(x)`` (``s`` marks a tie) are multiplied with the free pool's; the coefficient of
``x^(k-v)`` integrated over s in [0, 1] turns ``s^(t-1)`` into the ``1/t`` of the tie rule (exactly, by
Gauss-Legendre quadrature: the integrand is a polynomial in s).

Cost: coefficients below ``TINY`` (1e-22) are dropped, so every polynomial lives on a window a few standard
deviations wide; a class whose chance of reaching ``w_g v`` is below ``1e-14 * norm / classes`` counts as
free, and a count v that cannot add 1e-17 to the score is skipped. Against a normaliser of at least ~1e-3
these move the result by far less than 1e-9; the binomial pmfs come from log-factorials, which carries a
relative rounding error of about 1e-11 at n = 10,000 (checked against enumeration and exact integers in
tests/test_voting.py).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.signal import convolve2d
from scipy.special import gammaln

TINY = 1e-22  # absolute probability below which a polynomial coefficient is dropped


def _window(pmf: np.ndarray, lo: int = 0) -> tuple[int, np.ndarray]:
    """``(offset, coefficients)`` of the part of ``pmf`` (indexed from ``lo``) above ``TINY``."""
    keep = np.flatnonzero(pmf > TINY)
    if keep.size == 0:
        return lo, np.zeros(0)
    return lo + int(keep[0]), pmf[keep[0]:keep[-1] + 1]


class _Binomial:
    """Windowed pmfs of Binomial(m, p) for every m <= n at one p, from a table of log-factorials."""

    def __init__(self, n: int, p: float):
        self.lf = gammaln(np.arange(n + 1, dtype=float) + 1.0)  # log j!
        self.lp, self.lq = math.log(p), math.log1p(-p)
        self.p = p
        self._cache: dict = {}

    def __call__(self, m: int) -> tuple[int, np.ndarray]:
        if m not in self._cache:
            mean, sd = m * self.p, math.sqrt(m * self.p * (1 - self.p))
            a, b = max(0, int(mean - 12 * sd) - 25), min(m, int(mean + 12 * sd) + 25)
            j = np.arange(a, b + 1)
            logpmf = self.lf[m] - self.lf[j] - self.lf[m - j] + j * self.lp + (m - j) * self.lq
            self._cache[m] = _window(np.exp(logpmf), a)
        return self._cache[m]

    def pmf(self, m: int, j: int) -> float:
        off, c = self(m)
        return float(c[j - off]) if 0 <= j - off < c.size else 0.0


def _first_reaching(weights: np.ndarray, target: float) -> np.ndarray:
    """Per class, the smallest count j >= 1 whose total ``weight * j`` reaches ``target`` (ties included);
    infinite for a weight-0 class against a positive target."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(weights > 0, np.maximum(1, np.ceil(target / weights * (1 - 1e-12) - 1e-12)),
                        np.where(target <= 1e-15, 1, np.inf))


class _Type:
    """Answer classes that share size, weight and correctness: one pmf window, a multiplicity."""

    def __init__(self, m: int, w: float, good: bool, count: int, binomial: _Binomial):
        self.m, self.w, self.good, self.count = m, w, good, count
        self.lo, self.pmf = binomial(m)  # pmf[j - lo] for j in the window
        self.hi = self.lo + self.pmf.size - 1
        self.tail = np.cumsum(self.pmf[::-1])[::-1]  # P(X >= j) for j in the window

    def at_most(self, j: int) -> float:
        """P(X <= j), to within the mass dropped outside the window."""
        if j < self.lo:
            return 0.0
        return 1.0 - (float(self.tail[j + 1 - self.lo]) if j + 1 <= self.hi else 0.0)

    def reach(self, eps: float) -> int:
        """The largest count j with P(X >= j) > eps: a class needing more than that to reach a total counts
        as free, which moves less than eps of probability."""
        above = np.flatnonzero(self.tail > eps)
        return self.lo + int(above[-1]) if above.size else -1

    def split(self, target: float, j0: int):
        """[below, tied] windowed polynomials of one class against ``target``, ``j0`` being its first count that
        reaches it: counts whose total is below it (and the count 0), and counts >= 1 whose total equals it."""
        if self.w <= 0:  # target 0: every present class of weight 0 ties
            return [_slice(self.lo, self.pmf, 0, 0), _slice(self.lo, self.pmf, 1, self.m)]
        tie = math.isclose(self.w * j0, target, rel_tol=1e-12, abs_tol=1e-15)
        below = _slice(self.lo, self.pmf, 0, j0 - 1)  # holds the count 0: absent classes do not vote
        tied = _slice(self.lo, self.pmf, j0, j0) if tie else (0, np.zeros(0))
        return [below, tied]


def _slice(lo: int, c: np.ndarray, a: int, b: int) -> tuple[int, np.ndarray]:
    """The part of the windowed polynomial ``(lo, c)`` of degrees a..b."""
    a, b = max(a, lo), min(b, lo + c.size - 1)
    return (a, c[a - lo: b - lo + 1]) if a <= b else (0, np.zeros(0))


def _mul_nodes(P: tuple[int, np.ndarray], factor: list, s: np.ndarray, limit: int) -> tuple[int, np.ndarray]:
    """Multiply the polynomials in x held one per quadrature node (rows of ``P``, one shared window) by a
    class's factor ``below + s * tied`` at each node's s, truncated at degree ``limit``."""
    (op, A), (ob, b), (ot, t) = P, factor[0], factor[1]
    parts = []
    conv = (lambda a, k: np.convolve(a[0], k)[None, :]) if A.shape[0] == 1 else (lambda a, k: convolve2d(a, k[None, :]))
    if b.size:
        parts.append((op + ob, conv(A, b)))
    if t.size:
        parts.append((op + ot, s[:, None] * (conv(A, t) if t.size > 1 else A * t[0])))
    parts = [(o, c) for o, c in parts if o <= limit]
    if not parts:
        return 0, np.zeros((A.shape[0], 0))
    lo = min(o for o, _ in parts)
    hi = min(limit, max(o + c.shape[1] for o, c in parts) - 1)
    out = np.zeros((A.shape[0], hi - lo + 1))
    for o, c in parts:
        w = min(c.shape[1], hi - o + 1)
        out[:, o - lo: o - lo + w] += c[:, :w]
    keep = np.flatnonzero(out.max(axis=0) > TINY)
    if keep.size == 0:
        return 0, np.zeros((A.shape[0], 0))
    return lo + int(keep[0]), out[:, keep[0]:keep[-1] + 1]


@functools.lru_cache(maxsize=None)
def _nodes(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1]: exact for polynomials of degree < 2q."""
    nodes, wts = np.polynomial.legendre.leggauss(q)
    return (nodes + 1) / 2, wts / 2


def _inner(pool: tuple[int, np.ndarray], factors: list, rest: int) -> float:
    """sum over t of [x^rest] pool * (the configurations with t classes tied with g) / (t + 1).

    The tie marker s turns that sum into an integral over s in [0, 1] of a polynomial in s whose degree is
    at most the number of classes that can tie; Gauss-Legendre quadrature with that many / 2 + 1 nodes
    integrates it exactly, and at each node the product over the classes is an ordinary polynomial in x."""
    ties = sum(c for (_, tied), c in factors if tied[1].size)
    s, wts = _nodes(min(ties, rest) // 2 + 1)
    P = (0, np.ones((s.size, 1)))
    for factor, c in factors:
        for _ in range(c):
            P = _mul_nodes(P, factor, s, rest)
            if P[1].shape[1] == 0:
                return 0.0
    return float(sum(w * _dot_at(pool, (P[0], row), rest) for w, row in zip(wts, P[1])))


def _dot_at(a: tuple[int, np.ndarray], b: tuple[int, np.ndarray], degree: int) -> float:
    """The coefficient of x^degree in the product of two windowed polynomials."""
    (oa, ca), (ob, cb) = a, b
    # i + j = degree - oa - ob with 0 <= i < ca.size, 0 <= j < cb.size
    d = degree - oa - ob
    i0, i1 = max(0, d - cb.size + 1), min(ca.size - 1, d)
    if i0 > i1:
        return 0.0
    return float(np.dot(ca[i0:i1 + 1], cb[d - i1: d - i0 + 1][::-1]))


def vote_at_k(counts, good, unparsed: int, k: int, weights=None) -> float:
    """Expected score of a vote over a random k-subset; ``counts[i]`` samples gave answer class i, ``good[i]``
    says whether that answer is correct, ``weights[i]`` (default 1) is each of its samples' vote."""
    m = np.asarray(counts, dtype=np.int64)
    good = np.asarray(good, dtype=bool)
    w = np.ones(m.size) if weights is None else np.asarray(weights, dtype=float)
    n = int(m.sum()) + int(unparsed)
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n} k={k}")
    if (w < 0).any():
        raise ValueError("vote weights must be non-negative")
    if not good.any():
        return 0.0
    if k == n:  # the whole set: one vote
        totals = w * m
        winners = np.isclose(totals, totals.max(), rtol=1e-12, atol=1e-15) & (m > 0)
        return float(good[winners].sum() / winners.sum())
    p = k / n
    keys: dict = {}
    for key in zip(m.tolist(), w.tolist(), good.tolist()):
        keys[key] = keys.get(key, 0) + 1
    binomial = _Binomial(n, p)
    types = [_Type(mi, wi, gi, c, binomial) for (mi, wi, gi), c in keys.items()]
    norm = binomial.pmf(n, k)
    # treating a class as free moves at most eps of probability, so at most len(types) * eps / norm of score
    eps = 1e-14 * norm / len(types)
    t_w = np.array([t.w for t in types])
    t_hi = np.array([t.reach(eps) for t in types])
    t_m = np.array([t.m for t in types])
    t_count = np.array([t.count for t in types])
    skip = 1e-17 * norm  # a v whose own probability is below this adds less than 1e-17 to the score
    total = 0.0
    for gi, g in enumerate(types):
        if not g.good:
            continue
        count = t_count - (np.arange(len(types)) == gi)
        for v in range(max(g.lo, 1), min(g.hi, k) + 1):
            pv = g.pmf[v - g.lo]
            if pv < skip:
                continue
            rest = k - v
            target = g.w * v
            j0 = _first_reaching(t_w, target)
            reach = (j0 <= t_hi) & (count > 0)  # classes that can reach or tie g's total
            free = int(unparsed) + int((count * t_m)[~reach].sum())
            constrained = np.flatnonzero(reach)
            pool = binomial(free)
            # every coefficient is a probability, so the inner sum is at most max(pool) times the chance that
            # each constrained class stays at or below g's count: skip a v that cannot matter
            bound = pv * g.count * float(pool[1].max(initial=0.0))
            for ti in constrained:
                t = types[ti]
                bound *= t.at_most(int(j0[ti])) ** int(count[ti]) if t.w > 0 else 1.0
                if bound < skip:
                    break
            if bound < skip:
                continue
            factors = [(types[ti].split(target, int(j0[ti])), int(count[ti])) for ti in constrained]
            total += pv * g.count * _inner(pool, factors, rest)
    return float(min(max(total / norm, 0.0), 1.0))


def classes(answers, correct, weights=None):
    """``(counts, good, unparsed, class_weights)`` of a list of samples; ``class_weights`` is None unless
    ``weights`` is given, and then only when every sample of a class has the same weight (else ``False``)."""
    idx: dict = {}
    counts, good, cw = [], [], []
    unparsed = 0
    uniform = True
    for j, (a, ok) in enumerate(zip(answers, correct)):
        if a is None:
            unparsed += 1
            continue
        i = idx.setdefault(a, len(counts))
        if i == len(counts):
            counts.append(0)
            good.append(False)
            cw.append(None if weights is None else float(weights[j]))
        counts[i] += 1
        good[i] = good[i] or bool(ok)
        if weights is not None and not math.isclose(cw[i], float(weights[j]), rel_tol=1e-12, abs_tol=1e-15):
            uniform = False
    if weights is None:
        return counts, good, unparsed, None
    return counts, good, unparsed, (cw if uniform else False)

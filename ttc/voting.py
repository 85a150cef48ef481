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
nothing overflows and the conditioning event has probability ``norm``, about ``1/sqrt(2 pi k (1-k/n))``.
For each (g, v) the other classes split into free ones (whose total can never exceed ``w_g v``: they and
the unparsed pool merge into one binomial) and constrained ones, whose truncated generating polynomials
``L_i(x) + s E_i(x)`` (``s`` marks a tie) are multiplied with the free pool's; the coefficient of
``x^(k-v)``, integrated over s in [0, 1], turns ``s^(t-1)`` into the ``1/t`` of the tie rule. The counts v
at which no class can reach g's total need only the pool's coefficient; all the others are done together
(``_contested``): the polynomials are multiplied at the roots of unity (FFT) for every v at once and the
integral over s is a Gauss-Legendre quadrature.

Every step that is not exact arithmetic has a bound far below the 1e-9 promised (``norm`` is at least
~1e-3 at n = 10,000): coefficients below ``TINY`` (1e-22) are dropped, so every pmf lives on a window a few
standard deviations wide; a class whose chance of reaching ``w_g v`` is below ``1e-14 * norm / classes``
counts as free, and a count v that cannot add 1e-17 to the score is skipped; the roots of unity are
chosen so the degrees that alias onto the one read carry less than ``1e-13 * norm``, and the quadrature
has enough nodes that the tie terms it cannot integrate exactly (``P(T >= t) <= mu^t / t!``) carry less
than that too. The binomial pmfs come from log-factorials, which carries a relative rounding error of
about 1e-11 at n = 10,000; FFT rounding is about 1e-16 of the largest coefficient. tests/test_voting.py
checks the result against enumeration and exact integers.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.fft
from scipy.special import gammaln

TINY = 1e-22  # absolute probability below which a polynomial coefficient is dropped
CHUNK = 1 << 21  # complex numbers in one block of class factors (32 MB)


def _window(pmf: np.ndarray, lo: int = 0) -> tuple[int, np.ndarray]:
    """``(offset, coefficients)`` of the part of ``pmf`` (indexed from ``lo``) above ``TINY``."""
    keep = np.flatnonzero(pmf > TINY)
    if keep.size == 0:
        return lo, np.zeros(0)
    return lo + int(keep[0]), pmf[keep[0]:keep[-1] + 1]


class _Binomial:
    """Windowed pmfs of Binomial(m, p) for every m <= n at p = k/n, from a table of log-factorials, and what
    ``vote_at_k`` derives from them. Problems of a run share n and k, and their answer classes mostly share
    sizes, so one instance serves them all (``_binomial``); its caches are bounded by ``CACHE``."""

    CACHE = 20_000  # windows kept per instance (each a few kB at n = 10,000)

    def __init__(self, n: int, k: int):
        self.n, self.k = n, k
        self.p = p = k / n
        self.lf = _log_factorials(n)  # log j!
        self.lp, self.lq = math.log(p), math.log1p(-p)
        self._cache: dict = {}
        self._tails: dict = {}
        self._pools: dict = {}
        self.norm = self.pmf(n, k)  # P(a Binomial(n, p) subset has exactly k samples)

    def __call__(self, m: int) -> tuple[int, np.ndarray]:
        if m not in self._cache:
            if len(self._cache) > self.CACHE:
                self._cache.clear()
                self._tails.clear()
            mean, sd = m * self.p, math.sqrt(m * self.p * (1 - self.p))
            a, b = max(0, int(mean - 12 * sd) - 25), min(m, int(mean + 12 * sd) + 25)
            j = np.arange(a, b + 1)
            logpmf = self.lf[m] - self.lf[j] - self.lf[m - j] + j * self.lp + (m - j) * self.lq
            self._cache[m] = _window(np.exp(logpmf), a)
        return self._cache[m]

    def tail(self, m: int) -> np.ndarray:
        """P(X >= j) for j in the window of ``self(m)``."""
        if m not in self._tails:
            self._tails[m] = np.cumsum(self(m)[1][::-1])[::-1]
        return self._tails[m]

    def pool(self, m: int, size: int) -> np.ndarray:
        """The rfft of Binomial(m, p)'s pmf wrapped modulo ``size``: its values at the size-th roots of unity."""
        key = (m, size)
        if key not in self._pools:
            if len(self._pools) > self.CACHE:
                self._pools.clear()
            off, pc = self(m)
            self._pools[key] = scipy.fft.rfft(np.bincount((off + np.arange(pc.size)) % size, pc, minlength=size))
        return self._pools[key]

    @functools.cached_property
    def size(self) -> int:
        """The number of roots of unity ``_contested`` multiplies at (see ``_cycle``)."""
        return _cycle(self, self.k, 1e-13 * self.norm)

    def peaks(self, ms: np.ndarray) -> np.ndarray:
        """The largest probability of Binomial(m, p), for each m in ``ms``."""
        uniq, inv = np.unique(ms, return_inverse=True)
        return np.array([self(m)[1].max(initial=0.0) for m in uniq.tolist()])[inv]

    def pools(self, ms: np.ndarray, size: int) -> np.ndarray:
        """``pool(m, size)`` for each m in ``ms``, stacked."""
        uniq, inv = np.unique(ms, return_inverse=True)
        return np.stack([self.pool(m, size) for m in uniq.tolist()])[inv]

    def pmf(self, m: int, j: int) -> float:
        return float(self.pmf_many(m, np.array([j]))[0])

    def pmf_many(self, m: int, j: np.ndarray) -> np.ndarray:
        """P(Binomial(m, p) = j) for each count in ``j``."""
        off, c = self(m)
        i = j - off
        inside = (i >= 0) & (i < c.size)
        return np.where(inside, np.append(c, 0.0)[np.where(inside, i, c.size)], 0.0)


@functools.lru_cache(maxsize=2)
def _log_factorials(n: int) -> np.ndarray:
    return gammaln(np.arange(n + 1, dtype=float) + 1.0)


@functools.lru_cache(maxsize=2)
def _binomial(n: int, k: int) -> _Binomial:
    """The shared ``_Binomial`` of (n, k): callers that loop over budgets outside and problems inside reuse it."""
    return _Binomial(n, k)


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
        self.tail = binomial.tail(m)  # P(X >= j) for j in the window

    def at_most(self, j: np.ndarray) -> np.ndarray:
        """P(X <= j) for each count in ``j``, to within the mass dropped outside the window."""
        idx = np.clip(j + 1 - self.lo, 0, self.tail.size).astype(int)
        above = np.append(self.tail, 0.0)[idx]  # P(X >= j + 1)
        return np.where(j < self.lo, 0.0, 1.0 - above)

    def reach(self, eps: float) -> int:
        """The largest count j with P(X >= j) > eps: a class needing more than that to reach a total counts
        as free, which moves less than eps of probability."""
        above = np.flatnonzero(self.tail > eps)
        return self.lo + int(above[-1]) if above.size else -1


def _at_most(types: list, j: np.ndarray) -> np.ndarray:
    """``types[t].at_most(j[t])`` for every class t at once."""
    lo = np.array([t.lo for t in types])[:, None]
    width = max(t.tail.size for t in types)
    tails = np.zeros((len(types), width + 1))
    for i, t in enumerate(types):
        tails[i, :t.tail.size] = t.tail
    above = tails[np.arange(len(types))[:, None], np.clip(j + 1 - lo, 0, width).astype(int)]  # P(X >= j + 1)
    return np.where(j < lo, 0.0, 1.0 - above)


@functools.lru_cache(maxsize=None)
def _nodes(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1]: exact for polynomials of degree < 2q."""
    nodes, wts = np.polynomial.legendre.leggauss(q)
    return (nodes + 1) / 2, wts / 2


def _contested(binomial: _Binomial, g: _Type, types: list, count: np.ndarray, v: np.ndarray, pv: np.ndarray,
               j0: np.ndarray, reach: np.ndarray, free: np.ndarray, k: int, size: int, tol: float) -> np.ndarray:
    """For each count v[i] of class g (of probability pv[i]): the sum over t of [x^(k - v)] pool * (the
    configurations of the other classes in which none exceeds g's total and t tie with it) / (t + 1).

    A tie marker s turns the sum over t into an integral over s in [0, 1] of a polynomial in s, done by
    Gauss-Legendre quadrature: q nodes are exact up to degree 2q - 1, and the terms of degree t >= 2q (t
    classes tied) carry at most P(T >= t) <= mu^t / t! (mu: the expected number of ties), so q is the
    smallest that keeps their total, weighted by pv, below ``tol``. At each node the product over the classes
    is a polynomial in x, multiplied for all counts at once modulo ``x^size - 1``, that is at the size-th
    roots of unity (each class's truncated pmf evaluated there from one cumulative sum over its window): the
    coefficient read at k - v also holds those at k - v +- size, ..., probabilities of the whole k-subset's
    size being k +- size, which ``vote_at_k`` makes negligible by its choice of ``size``. Rounding is about
    1e-16 of the largest coefficient, all of them probabilities."""
    targets = g.w * v
    cons = np.flatnonzero(reach.any(axis=1))
    reach, j0, c = reach[cons], j0[cons], count[cons]
    lo = np.array([types[t].lo for t in cons])
    width = max(types[t].pmf.size for t in cons)
    pmf = np.zeros((cons.size, width))
    for i, t in enumerate(cons):
        pmf[i, :types[t].pmf.size] = types[t].pmf
    # each class's counts below g's total (from 0) and tied with it, as windows [0, below) and [below, tied)
    w = np.array([types[t].w for t in cons])[:, None]
    j0 = np.where(reach, j0, 0).astype(np.int64)
    tie = np.where(w > 0, np.isclose(w * j0, targets, rtol=1e-12, atol=1e-15), True)
    last = np.where(w > 0, np.where(tie, j0, j0 - 1), np.array([types[t].m for t in cons])[:, None])
    below = np.clip(j0 - lo[:, None], 0, width)
    tied = np.clip(last + 1 - lo[:, None], below, width)
    # P(tie) per class and count; the quadrature's order from the expected number of ties
    cum = np.concatenate([np.zeros((cons.size, 1)), np.cumsum(pmf, axis=1)], axis=1)
    rows = np.arange(cons.size)[:, None]
    mu = (c[:, None] * reach * (cum[rows, tied] - cum[rows, below])).sum(axis=0)
    exact = min(int((c[:, None] * (reach & (tied > below))).sum(axis=0).max()), int((k - v).max()))  # ties use samples
    s, wts = _nodes(_order(mu, pv, exact, tol))
    # truncated pmfs at the roots of unity, from cumulative sums of pmf[j] * omega^(l (lo + j))
    freq = np.arange(size // 2 + 1)
    phase = np.exp(-2j * np.pi * np.outer(np.arange(width), freq) / size)
    shift = np.exp(-2j * np.pi * np.outer(lo % size, freq) / size)
    terms = pmf[:, :, None] * phase[None] * shift[:, None, :]
    pre = np.concatenate([np.zeros((cons.size, 1, freq.size)), np.cumsum(terms, axis=1)], axis=1)
    B = pre[rows, below]  # (classes, counts, freq)
    T = pre[rows, tied] - B
    prod = np.ones((v.size, s.size, freq.size), dtype=complex)  # (counts, nodes, freq)
    # the classes in blocks of one multiplicity, each block at most CHUNK numbers; a count a class cannot
    # reach contributes a factor 1
    order = np.argsort(c, kind="stable")
    step = max(1, CHUNK // prod.size)
    for e in np.unique(c).tolist():
        group = order[c[order] == e]
        for a in range(0, group.size, step):
            i = group[a:a + step]
            factor = B[i, :, None, :] + s[None, None, :, None] * T[i, :, None, :]  # (classes, counts, nodes, freq)
            factor[~reach[i]] = 1.0
            prod *= _power(factor.prod(axis=0), int(e))
    prod *= binomial.pools(free, size)[:, None, :]
    coef = scipy.fft.irfft(prod, n=size, axis=2)[np.arange(v.size), :, (k - v) % size]
    return coef @ wts


def _power(base: np.ndarray, e: int) -> np.ndarray:
    """``base ** e`` by repeated squaring (numpy's complex power above 2 goes through logarithms: slower and
    less exact)."""
    out = None
    while e:
        if e & 1:
            out = base if out is None else out * base
        e >>= 1
        if e:
            base = base * base
    return out


def _order(mu: np.ndarray, weight: np.ndarray, exact: int, tol: float) -> int:
    """Gauss-Legendre nodes needed when the expected numbers of ties are ``mu`` (one per count, of probability
    ``weight``): the smallest q with sum weight mu^(2q) / (2q)! <= tol, at most the exact order for ``exact``
    possible ties."""
    top = exact // 2 + 1
    keep = mu > 0
    mu, weight = mu[keep], weight[keep]
    for q in range(1, top):
        if mu.size == 0 or weight @ np.exp(np.minimum(2 * q * np.log(mu) - gammaln(2 * q + 1), 700.0)) <= tol:
            return q
    return top


def _cycle(binomial: _Binomial, k: int, tol: float) -> int:
    """The number of points for ``_contested``: a fast FFT length N with P(|S - k| >= N) <= tol for the
    k-subset's size S ~ Binomial(n, p) (the probabilities that alias onto the coefficient read)."""
    lo, c = binomial(binomial.n)
    d = np.abs(np.arange(lo, lo + c.size) - k)
    order = np.argsort(-d, kind="stable")
    far = np.cumsum(c[order])  # mass at distance >= d[order[i]]
    beyond = d[order][far > tol]
    return scipy.fft.next_fast_len(int(beyond[0]) + 1 if beyond.size else 1, real=True)


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
    if k == 1:  # one sample: it wins alone, whatever its weight
        return float(m[good].sum() / n)
    if k == n:  # the whole set: one vote
        totals = w * m
        winners = np.isclose(totals, totals.max(), rtol=1e-12, atol=1e-15) & (m > 0)
        return float(good[winners].sum() / winners.sum())
    keys: dict = {}
    for key in zip(m.tolist(), w.tolist(), good.tolist()):
        keys[key] = keys.get(key, 0) + 1
    binomial = _binomial(n, k)
    types = [_Type(mi, wi, gi, c, binomial) for (mi, wi, gi), c in keys.items()]
    norm = binomial.norm
    # treating a class as free moves at most eps of probability, so at most len(types) * eps / norm of score
    eps = 1e-14 * norm / len(types)
    t_w = np.array([t.w for t in types])
    t_hi = np.array([t.reach(eps) for t in types])
    t_m = np.array([t.m for t in types])
    t_count = np.array([t.count for t in types])
    skip = 1e-17 * norm  # a v whose own probability is below this adds less than 1e-17 to the score
    size = binomial.size
    total = 0.0
    for gi, g in enumerate(types):
        if not g.good:
            continue
        count = t_count - (np.arange(len(types)) == gi)
        v = np.arange(max(g.lo, 1), min(g.hi, k) + 1)
        v = v[g.pmf[v - g.lo] >= skip]
        if v.size == 0:
            continue
        pv = g.pmf[v - g.lo] * g.count
        # every count v at once: the classes that can reach or tie g's total, and the free pool's size
        j0 = _first_reaching(t_w[:, None], g.w * v[None, :])
        reach = (j0 <= t_hi[:, None]) & (count[:, None] > 0)
        free = int(unparsed) + (count * t_m) @ ~reach
        alone = ~reach.any(axis=0)  # no class can reach g's total: the pool's coefficient is the answer
        if alone.any():
            total += float(pv[alone] @ binomial.pmf_many(n - g.m, k - v[alone]))
        # the inner sum is at most max(pool) times the chance that each constrained class stays at or
        # below g's count (every coefficient is a probability): skip the counts that cannot matter
        bound = pv * binomial.peaks(free)
        held = np.flatnonzero(reach.any(axis=1) & (t_w > 0))
        if held.size:
            stay = _at_most([types[t] for t in held], j0[held])  # P(X <= j0) per class and count
            bound = bound * np.where(reach[held], stay ** count[held, None], 1.0).prod(axis=0)
        busy = ~alone & (bound >= skip)
        if busy.any():
            inner = _contested(binomial, g, types, count, v[busy], pv[busy], j0[:, busy], reach[:, busy], free[busy], k,
                               size, 1e-13 * norm)
            total += float(pv[busy] @ inner)
    return float(min(max(total / norm, 0.0), 1.0))


_MEMO: dict = {}


def votes(jobs: list) -> list[list[float]]:
    """Each job's votes at its budgets; a job is ``((counts, good, unparsed, class_weights), budgets)``, with
    ``class_weights`` None for a plain vote. Budgets outside, problems inside, so that the problems share
    each budget's binomial tables; problems with the same answer counts share the work."""
    out = [[0.0] * len(ks) for _, ks in jobs]
    for k in sorted({k for _, ks in jobs for k in ks}):
        for i, ((counts, good, unparsed, cw), ks) in enumerate(jobs):
            if k not in ks or not counts.size:  # not this budget, or no answer at all (score 0)
                continue
            shape = tuple(sorted(zip(counts.tolist(), good.tolist(),
                                     cw.tolist() if cw is not None else [1.0] * counts.size)))
            key = (shape, unparsed, k)
            if key not in _MEMO:
                if len(_MEMO) > 100_000:
                    _MEMO.clear()
                _MEMO[key] = vote_at_k(counts, good, unparsed, k, cw)
            out[i][ks.index(k)] = _MEMO[key]
    return out


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

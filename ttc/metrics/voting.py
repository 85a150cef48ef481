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
(``_contested``): the polynomials are multiplied at the roots of unity for every v at once and the
integral over s is a Gauss-Legendre quadrature.

``vote_many`` computes many problems at one k together: they share the binomial tables (problems of a run
have the same n, and their classes mostly share sizes), and every step runs over the problems' classes
and counts at once, so that the cost is arithmetic rather than one small array operation after another.

Every step that is not exact arithmetic has a bound far below the 1e-9 promised (``norm`` is at least ~1e-3 at
n = 10,000): coefficients below ``TINY`` (1e-22) are dropped, so every pmf lives on a window a few standard
deviations wide; a class whose chance of reaching ``w_g v`` is below ``1e-14 * norm / classes`` (``classes``:
the most answer types of any problem computed together) counts as free, and a count v that cannot add 1e-17 to
the score is skipped; the roots of unity are chosen so the degrees that alias onto the one read carry less
than ``1e-13 * norm``, and the quadrature has enough nodes that the tie terms it cannot integrate exactly
(``P(T >= t) <= mu^t / t!``) carry less than that too. The binomial pmfs come from log-factorials, which
carries a relative rounding error of about 1e-11 at n = 10,000; the transforms' rounding is about 1e-16 of the
largest coefficient. tests/test_voting.py checks the result against enumeration and exact integers.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.fft
from scipy.special import gammaln

TINY = 1e-22  # absolute probability below which a polynomial coefficient is dropped
CHUNK = 1 << 21  # numbers in one block of the arrays computed together (complex: 32 MB)


def _window(pmf: np.ndarray, lo: int = 0) -> tuple[int, np.ndarray]:
    """``(offset, coefficients)`` of the part of ``pmf`` (indexed from ``lo``) above ``TINY``."""
    keep = np.flatnonzero(pmf > TINY)
    if keep.size == 0:
        return lo, np.zeros(0)
    return lo + int(keep[0]), pmf[keep[0]:keep[-1] + 1]


class _Binomial:
    """Binomial(m, p) for every m <= n at p = k/n, from a table of log-factorials: windowed pmfs and what is
    derived from them per m (prefix sums, values at the roots of unity), cached, since the problems of a run
    share n and k and their answer classes mostly share sizes. The caches are emptied past ``CACHE`` bytes."""

    CACHE = 1 << 27

    def __init__(self, n: int, k: int):
        self.n, self.k = n, k
        self.p = p = k / n
        self.lf = _log_factorials(n)  # log j!
        self.lp, self.lq = math.log(p), math.log1p(-p)
        self._windows: dict = {}
        self._cums: dict = {}
        self._tails: dict = {}
        self._pres: dict = {}
        self._pools: dict = {}
        self._bytes = 0
        self.norm = float(self.pmf_at(np.array(n), np.array(k)))  # P(Binomial(n, p) = k)

    def _keep(self, cache: dict, key, value):
        self._bytes += getattr(value, "nbytes", 0) if not isinstance(value, tuple) else value[1].nbytes
        if self._bytes > self.CACHE:
            for c in (self._windows, self._cums, self._tails, self._pres, self._pools):
                c.clear()
            self._bytes = 0
        cache[key] = value
        return value

    def __call__(self, m: int) -> tuple[int, np.ndarray]:
        """``(lo, pmf)``: P(X = lo + i) = pmf[i] on the window where it exceeds ``TINY``."""
        out = self._windows.get(m)
        if out is None:
            mean, sd = m * self.p, math.sqrt(m * self.p * (1 - self.p))
            a, b = max(0, int(mean - 12 * sd) - 25), min(m, int(mean + 12 * sd) + 25)
            out = self._keep(self._windows, m, _window(self.pmf_at(np.array(m), np.arange(a, b + 1)), a))
        return out

    def pmf_at(self, m: np.ndarray, j: np.ndarray) -> np.ndarray:
        """P(Binomial(m, p) = j) elementwise, 0 where it is below ``TINY``."""
        m, j = np.broadcast_arrays(np.asarray(m, dtype=np.int64), np.asarray(j, dtype=np.int64))
        ok = (j >= 0) & (j <= m)
        m, j = np.where(ok, m, 0), np.where(ok, j, 0)
        val = np.exp(self.lf[m] - self.lf[j] - self.lf[m - j] + j * self.lp + (m - j) * self.lq)
        return np.where(ok & (val > TINY), val, 0.0)

    def peak(self, m: np.ndarray) -> np.ndarray:
        """The largest probability of Binomial(m, p), elementwise (at the mode, floor((m + 1) p))."""
        return self.pmf_at(m, np.minimum(np.floor((m + 1) * self.p), m))

    def cum(self, m: int) -> np.ndarray:
        """P(lo <= X < lo + i) for i = 0 .. window size (a prefix sum over the window)."""
        out = self._cums.get(m)
        if out is None:
            out = self._keep(self._cums, m, np.concatenate([[0.0], np.cumsum(self(m)[1])]))
        return out

    def reach(self, m: int, eps: float) -> int:
        """The largest count j with P(X >= j) > eps (-1 if none): a class needing more than that to reach a
        total counts as free, which moves less than eps of probability."""
        neg = self._tails.get(m)
        if neg is None:  # -P(X >= lo + i), summed from the top so that small tails keep their digits
            neg = self._keep(self._tails, m, -np.cumsum(self(m)[1][::-1])[::-1])
        above = int(np.searchsorted(neg, -eps, side="left"))  # the first i with P(X >= lo + i) <= eps
        return self(m)[0] + above - 1 if above else -1

    def pre(self, m: int) -> np.ndarray:
        """The truncated pmfs at the size-th roots of unity: row i holds sum_{j < lo + i} P(X = j) w^(-j l)
        for l = 0 .. size // 2 (w = exp(2 pi i / size))."""
        out = self._pres.get(m)
        if out is None:
            lo, pmf = self(m)
            size = self.size
            expo = (np.arange(lo, lo + pmf.size)[:, None] * np.arange(size // 2 + 1)[None, :]) % size
            terms = pmf[:, None] * np.exp(-2j * np.pi * expo / size)
            out = self._keep(self._pres, m, np.concatenate([np.zeros((1, expo.shape[1])), np.cumsum(terms, axis=0)]))
        return out

    def pool(self, m: int) -> np.ndarray:
        """Binomial(m, p)'s pmf at the size-th roots of unity (the rfft of the pmf wrapped modulo size)."""
        out = self._pools.get(m)
        if out is None:
            off, pc = self(m)
            wrapped = np.bincount((off + np.arange(pc.size)) % self.size, pc, minlength=self.size)
            out = self._keep(self._pools, m, scipy.fft.rfft(wrapped))
        return out

    @functools.cached_property
    def size(self) -> int:
        """The number of roots of unity ``_contested`` multiplies at (see ``_cycle``)."""
        return _cycle(self, self.k, 1e-13 * self.norm)

    def table(self, ms: np.ndarray, rows) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(flat, offset, lo, width)`` for the sizes ``ms``: ``rows(m)`` of every distinct m stacked in
        ``flat``, and per element of ``ms`` where its rows start, its window's first count and its size."""
        uniq, inv = np.unique(ms, return_inverse=True)
        parts = [rows(m) for m in uniq.tolist()]
        lens = np.array([len(a) for a in parts])
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        lo = np.array([self(m)[0] for m in uniq.tolist()])
        inv = inv.reshape(np.shape(ms))
        return np.concatenate(parts), starts[inv], lo[inv], (lens - 1)[inv]


@functools.lru_cache(maxsize=2)
def _log_factorials(n: int) -> np.ndarray:
    return gammaln(np.arange(n + 1, dtype=float) + 1.0)


@functools.lru_cache(maxsize=2)
def _binomial(n: int, k: int) -> _Binomial:
    """The shared ``_Binomial`` of (n, k): callers that loop over budgets outside and problems inside reuse it."""
    return _Binomial(n, k)


def _first_reaching(weights: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per class, the smallest count j >= 1 whose total ``weight * j`` reaches ``target`` (ties included);
    infinite for a weight-0 class against a positive target."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(weights > 0, np.maximum(1, np.ceil(target / weights * (1 - 1e-12) - 1e-12)),
                        np.where(target <= 1e-15, 1, np.inf))


@functools.lru_cache(maxsize=None)
def _nodes(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1]: exact for polynomials of degree < 2q."""
    nodes, wts = np.polynomial.legendre.leggauss(q)
    return (nodes + 1) / 2, wts / 2


def _orders(mu: np.ndarray, weight: np.ndarray, exact: np.ndarray, tol: float) -> np.ndarray:
    """Per problem (row), the Gauss-Legendre nodes needed when the expected numbers of ties are ``mu`` (one
    per count, of probability ``weight``): the smallest q with sum weight mu^(2q) / (2q)! <= tol, at most the
    exact order for ``exact`` possible ties."""
    top = exact // 2 + 1
    q = top.copy()
    with np.errstate(divide="ignore"):
        logmu = np.log(mu)
    open_ = np.ones(q.size, bool)
    for order in range(1, int(top.max())):
        err = (weight * np.exp(np.minimum(2 * order * logmu - gammaln(2 * order + 1), 700.0))).sum(axis=1)
        hit = open_ & (order < top) & (err <= tol)
        q[hit] = order
        open_ &= ~hit
        if not open_.any():
            break
    return q


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
    return float(vote_many([(counts, good, unparsed, weights)], k)[0])


def vote_many(cases: list, k: int) -> np.ndarray:
    """``vote_at_k`` of each case ``(counts, good, unparsed, weights)`` at one budget k, the cases with the
    same number of samples computed together."""
    out = np.zeros(len(cases))
    groups: dict[int, list] = {}
    for i, (counts, good, unparsed, weights) in enumerate(cases):
        m = np.asarray(counts, dtype=np.int64)
        good = np.asarray(good, dtype=bool)
        w = np.ones(m.size) if weights is None else np.asarray(weights, dtype=float)
        n = int(m.sum()) + int(unparsed)
        if not 1 <= k <= n:
            raise ValueError(f"need 1 <= k <= n, got n={n} k={k}")
        if (w < 0).any():
            raise ValueError("vote weights must be non-negative")
        if not good.any():
            continue
        if k == 1:  # one sample: it wins alone, whatever its weight
            out[i] = m[good].sum() / n
        elif k == n:  # the whole set: one vote
            totals = w * m
            winners = np.isclose(totals, totals.max(), rtol=1e-12, atol=1e-15) & (m > 0)
            out[i] = good[winners].sum() / winners.sum()
        else:
            groups.setdefault(n, []).append((i, m, w, good, int(unparsed)))
    for n, items in groups.items():
        out[[it[0] for it in items]] = _vote_group(_binomial(n, k), items)
    return out


def _vote_group(b: _Binomial, items: list) -> np.ndarray:
    """The votes of problems with the same n at b's k. A task is a (problem, correct answer type) pair; its
    counts v run along a second axis and the problem's answer types along a third."""
    n, k, norm = b.n, b.k, b.norm
    skip = 1e-17 * norm  # a v whose own probability is below this adds less than 1e-17 to the score
    # answer types: classes that share size, weight and correctness, with their multiplicity
    kinds = []
    for _, m, w, good, _ in items:
        keys: dict = {}
        for key in zip(m.tolist(), w.tolist(), good.tolist()):
            keys[key] = keys.get(key, 0) + 1
        kinds.append(keys)
    width = max(len(kd) for kd in kinds)
    eps = 1e-14 * norm / width  # treating a class as free moves at most eps of probability
    flat = [(ci, ti, mi, wi, gi, c) for ci, kd in enumerate(kinds) for ti, ((mi, wi, gi), c) in enumerate(kd.items())]
    ci, ti, mi, wi, gi, cnt = (np.array(col) for col in zip(*flat))
    shape = (len(items), width)
    t_m, t_w = np.zeros(shape, np.int64), np.ones(shape)
    t_good, t_count, t_hi = np.zeros(shape, bool), np.zeros(shape, np.int64), np.full(shape, -1, np.int64)
    t_m[ci, ti], t_w[ci, ti], t_good[ci, ti], t_count[ci, ti] = mi, wi, gi.astype(bool), cnt
    reach_of = {m: b.reach(m, eps) for m in np.unique(mi).tolist()}
    t_hi[ci, ti] = [reach_of[m] for m in mi.tolist()]
    unparsed = np.array([it[4] for it in items])
    # the tasks, and each one's range of counts v of its correct class
    qc, qg = np.nonzero(t_good)
    g_m, g_w, g_count = t_m[qc, qg], t_w[qc, qg], t_count[qc, qg]
    lo_of = {m: b(m) for m in np.unique(g_m).tolist()}
    v0 = np.array([max(lo_of[m][0], 1) for m in g_m.tolist()], dtype=np.int64)
    v1 = np.array([min(lo_of[m][0] + lo_of[m][1].size - 1, k) for m in g_m.tolist()], dtype=np.int64)
    total = np.zeros(qc.size)
    span = np.maximum(v1 - v0 + 1, 0)
    order = np.argsort(span, kind="stable")
    cost = np.maximum(span[order], 1) * max(width, 4 * (b.size // 2 + 1))
    start = 0
    while start < order.size:  # chunks of tasks of similar span, each within CHUNK numbers
        stop = start + max(1, int(np.searchsorted(np.cumsum(cost[start:]), CHUNK, side="right")))
        sel = order[start:stop]
        start = stop
        if span[sel].max() == 0:
            continue
        v = v0[sel, None] + np.arange(span[sel].max())  # (tasks, counts)
        pg = b.pmf_at(g_m[sel, None], v)
        valid = (v <= v1[sel, None]) & (pg >= skip)
        pv = np.where(valid, pg * g_count[sel, None], 0.0)
        others = t_count[qc[sel]] - (np.arange(width) == qg[sel, None])  # (tasks, types)
        m, w, hi = t_m[qc[sel]], t_w[qc[sel]], t_hi[qc[sel]]
        # every count v at once: the classes that can reach or tie g's total, and the free pool's size
        j0 = _first_reaching(w[:, :, None], (g_w[sel, None] * v)[:, None, :])  # (tasks, types, counts)
        reach = (j0 <= hi[:, :, None]) & (others > 0)[:, :, None] & valid[:, None, :]
        free = unparsed[qc[sel], None] + ((others * m)[:, :, None] * ~reach).sum(axis=1)
        alone = valid & ~reach.any(axis=1)  # no class can reach g's total: the pool's coefficient is the answer
        total[sel] += np.where(alone, pv * b.pmf_at(n - g_m[sel, None], k - v), 0.0).sum(axis=1)
        # the inner sum is at most max(pool) times the chance that each constrained class stays at or
        # below g's count (every coefficient is a probability): skip the counts that cannot matter
        held = reach & (w > 0)[:, :, None]
        flat_cum, off, lo, wd = b.table(m, b.cum)
        j = np.where(held, j0, 0).astype(np.int64)
        stay = flat_cum[off[:, :, None] + np.clip(j + 1 - lo[:, :, None], 0, wd[:, :, None])]  # P(X <= j0)
        bound = pv * b.peak(free) * np.where(held, stay ** others[:, :, None], 1.0).prod(axis=1)
        busy = valid & ~alone & (bound >= skip)
        rows = np.flatnonzero(busy.any(axis=1))
        if rows.size:
            total[sel[rows]] += _contested(b, g_w[sel[rows]], v[rows], pv[rows], busy[rows], j0[rows],
                                           reach[rows] & busy[rows, None, :], m[rows], w[rows], others[rows],
                                           free[rows])
    per_case = np.bincount(qc, total, minlength=len(items))
    return np.clip(per_case / norm, 0.0, 1.0)


def _contested(b: _Binomial, g_w: np.ndarray, v: np.ndarray, pv: np.ndarray, busy: np.ndarray, j0: np.ndarray,
               reach: np.ndarray, m: np.ndarray, w: np.ndarray, count: np.ndarray, free: np.ndarray) -> np.ndarray:
    """For each task (row) and each of its busy counts v (of probability pv): the sum over t of
    [x^(k - v)] pool * (the configurations of the other classes in which none exceeds g's total and t tie
    with it) / (t + 1), weighted by pv and summed over v.

    A tie marker s turns the sum over t into an integral over s in [0, 1] of a polynomial in s, done by
    Gauss-Legendre quadrature: q nodes are exact up to degree 2q - 1, and the terms of degree t >= 2q (t
    classes tied) carry at most P(T >= t) <= mu^t / t! (mu: the expected number of ties), so q is the
    smallest that keeps their total, weighted by pv, below ``tol`` (the tasks computed together take the
    largest). At each node the product over the classes is a polynomial in x, multiplied for all counts at
    once modulo ``x^size - 1``, that is at the size-th roots of unity (each class's truncated pmf there from
    one prefix sum over its window): the coefficient read at k - v also holds those at k - v +- size, ...,
    probabilities of the whole k-subset's size being k +- size, which ``b.size`` makes negligible. Rounding
    is about 1e-16 of the largest coefficient, all of them probabilities.

    The work is laid out flat: a cell is a (task, busy count), an entry a (cell, class constrained there)."""
    k, tol = b.k, 1e-13 * b.norm
    cq, cv = np.nonzero(busy)  # cells
    cell = np.full(busy.shape, -1)
    cell[cq, cv] = np.arange(cq.size)
    eq, et, ev = np.nonzero(reach)  # entries: reach is already limited to busy counts
    ec = cell[eq, ev]
    em, ew, ee = m[eq, et], w[eq, et], count[eq, et]
    ej = j0[eq, et, ev].astype(np.int64)
    target = g_w[eq] * v[eq, ev]
    # each class's counts below g's total (from its window's start) and tied with it
    flat_cum, off, lo, wd = b.table(em, b.cum)
    tie = np.where(ew > 0, np.isclose(ew * ej, target, rtol=1e-12, atol=1e-15), True)
    last = np.where(ew > 0, np.where(tie, ej, ej - 1), em)
    below = np.clip(ej - lo, 0, wd)
    tied = np.clip(last + 1 - lo, below, wd)
    # P(tie) per cell; the quadrature's order from the expected number of ties
    mu = np.zeros(busy.shape)
    mu[cq, cv] = np.bincount(ec, ee * (flat_cum[off + tied] - flat_cum[off + below]), minlength=cq.size)
    ties = np.zeros(busy.shape)
    ties[cq, cv] = np.bincount(ec, ee * (tied > below), minlength=cq.size)
    exact = np.minimum(ties.max(axis=1), k - np.where(busy, v, k).min(axis=1)).astype(np.int64)  # ties use samples
    need = _orders(mu, np.where(busy, pv, 0.0), exact, tol)[cq]  # nodes per cell
    # cells in groups of one quadrature order (rounded up to a few sizes: more nodes are exact too)
    nodes = np.array([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64])
    order_of = np.where(need <= nodes[-1], nodes[np.minimum(np.searchsorted(nodes, need), nodes.size - 1)], need)
    flat_pre, off2, _, _ = b.table(em, b.pre)
    uniq, inv = np.unique(free[cq, cv], return_inverse=True)
    pools = np.stack([b.pool(f) for f in uniq.tolist()])[inv]  # the free pool per cell
    out = np.zeros(busy.shape[0])
    for q in np.unique(order_of).tolist():
        cs = np.flatnonzero(order_of == q)
        renumber = np.full(cq.size, -1)
        renumber[cs] = np.arange(cs.size)
        es = np.flatnonzero(renumber[ec] >= 0)
        inner = _cells(b, q, renumber[ec[es]], ee[es], off2[es] + below[es], off2[es] + tied[es], flat_pre,
                       pools[cs], k - v[cq[cs], cv[cs]])
        out += np.bincount(cq[cs], pv[cq[cs], cv[cs]] * inner, minlength=out.size)
    return out


def _cells(b: _Binomial, q: int, ec: np.ndarray, ee: np.ndarray, lower_at: np.ndarray, upper_at: np.ndarray,
           flat_pre: np.ndarray, pools: np.ndarray, degree: np.ndarray) -> np.ndarray:
    """Per cell, the quadrature over q nodes of [x^degree] pool * the product of its entries' factors; an
    entry (of cell ``ec``, multiplicity ``ee``) is the class's truncated pmf ``flat_pre[lower_at]`` plus s
    times its tied part. The entries of one multiplicity are done together (one power each), in blocks of
    at most CHUNK numbers."""
    size = b.size
    s, wts = _nodes(q)
    freq = size // 2 + 1
    prod = np.ones((pools.shape[0], s.size, freq), dtype=complex)
    order = np.lexsort((ec, ee))
    step = max(1, CHUNK // (s.size * freq))
    for group in np.split(order, np.flatnonzero(np.diff(ee[order])) + 1):
        if not group.size:
            continue
        e = int(ee[group[0]])
        for a in range(0, group.size, step):
            i = group[a:a + step]
            # problems share most factors (the same class size constrained at the same count): each once
            keys, inv = np.unique(lower_at[i] * flat_pre.shape[0] + upper_at[i], return_inverse=True)
            lower = flat_pre[keys // flat_pre.shape[0]]  # (factors, freq)
            upper = flat_pre[keys % flat_pre.shape[0]] - lower
            factor = _power(lower[:, None, :] + s[None, :, None] * upper[:, None, :], e)[inv.ravel()]
            firsts = np.flatnonzero(np.concatenate([[True], ec[i][1:] != ec[i][:-1]]))
            prod[ec[i][firsts]] *= np.multiply.reduceat(factor, firsts, axis=0) if firsts.size < i.size else factor
    # the coefficient of x^degree: one term of the inverse transform
    fold = np.full(freq, 2.0)
    fold[0] = 1.0
    if size % 2 == 0:
        fold[-1] = 1.0
    expo = ((degree % size)[:, None] * np.arange(freq)) % size
    inverse = pools * fold * np.exp(2j * np.pi * expo / size) / size
    return np.einsum("csf,cf->cs", prod, inverse).real @ wts


_MEMO: dict = {}


def votes(jobs: list) -> list[list[float]]:
    """Each job's votes at its budgets; a job is ``((counts, good, unparsed, class_weights), budgets)``, with
    ``class_weights`` None for a plain vote. Budgets outside, problems inside: the problems of one budget are
    computed together (``vote_many``); problems with the same answer counts share the work."""
    out = [[0.0] * len(ks) for _, ks in jobs]
    for k in sorted({k for _, ks in jobs for k in ks}):
        todo: dict = {}  # memo key -> (case, [(job, position)])
        for i, ((counts, good, unparsed, cw), ks) in enumerate(jobs):
            if k not in ks or not counts.size:  # not this budget, or no answer at all (score 0)
                continue
            shape = tuple(sorted(zip(counts.tolist(), good.tolist(),
                                     cw.tolist() if cw is not None else [1.0] * counts.size)))
            key = (shape, unparsed, k)
            if key in _MEMO:
                out[i][ks.index(k)] = _MEMO[key]
            else:
                todo.setdefault(key, ((counts, good, unparsed, cw), []))[1].append((i, ks.index(k)))
        if len(_MEMO) + len(todo) > 100_000:
            _MEMO.clear()
        values = vote_many([case for case, _ in todo.values()], k)
        for (key, (_, where)), value in zip(todo.items(), values.tolist()):
            _MEMO[key] = value
            for i, j in where:
                out[i][j] = value
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

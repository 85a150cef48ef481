"""Per-problem metric tables computed from record columns, vectorized over problems.

A strategy's ``evaluate`` takes the records of one (task, model, sampler) and returns one row per
(problem, budget, metric) with the columns ``TABLE_COLUMNS``: ``value`` is the problem's expected score at
that budget, ``se`` the Monte Carlo standard error of an approximated value (0 when exact), ``flops`` and
``tokens`` what spending the budget on the problem costs. These helpers build such tables from the columns
alone (answers, correctness, token counts, FLOPs), never from texts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ttc.metrics.estimators import best_of_k, pass_at_k_array
from ttc.metrics.voting import votes
from ttc.metrics.workers import cpus, map_parts

TABLE_COLUMNS = ["problem_id", "budget", "metric", "value", "se", "flops", "tokens"]
# Above this many (problem, budget) vote computations the work is spread over the cores (``ttc.metrics.workers``).
PARALLEL_VOTES = 2000


@dataclass(frozen=True)
class Problems:
    """The records of one (task, model, sampler) grouped by problem: sorted by problem id, then sample
    index; problem i owns rows ``start[i] : start[i] + n[i]``."""

    ids: np.ndarray
    start: np.ndarray
    n: np.ndarray
    df: pd.DataFrame

    @classmethod
    def of(cls, df: pd.DataFrame) -> "Problems":
        df = sort_by(df, ["problem_id", "sample_index"])
        starts = starts_of(df, ["problem_id"])
        if len(starts) == 0:
            return cls(np.array([], dtype=object), np.zeros(0, int), np.zeros(0, int), df)
        sizes = sizes_of(starts, len(df))
        return cls(df["problem_id"].to_numpy()[starts], starts, sizes, df)

    def sums(self, column: str) -> np.ndarray:
        x = self.df[column].to_numpy(dtype=float)
        return np.add.reduceat(x, self.start) if len(x) else np.zeros(0)

    def means(self, column: str) -> np.ndarray:
        return self.sums(column) / np.maximum(self.n, 1)

    def first(self, column: str) -> np.ndarray:
        return self.df[column].to_numpy()[self.start]

    def correct(self) -> np.ndarray:
        return self.df["correct"].astype(bool).to_numpy()

    def n_correct(self) -> np.ndarray:
        return np.add.reduceat(self.correct().astype(np.int64), self.start) if len(self.df) else np.zeros(0, int)


def sort_by(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``df`` in the order of ``keys``, with a fresh index: taken as it is when already in that order (the
    store returns records sorted by their key), else stable-sorted."""
    if len(df) > 1:
        before = np.zeros(len(df) - 1, bool)  # row i+1 sorts before row i
        tied = np.ones(len(df) - 1, bool)  # rows i and i+1 equal on the keys so far
        try:
            for k in keys:
                c = df[k].to_numpy()
                before |= tied & (c[1:] < c[:-1])
                tied &= c[1:] == c[:-1]
        except TypeError:  # values that do not compare (a missing value among strings): let pandas order them
            before[:] = True
        if before.any():
            return df.sort_values(keys, kind="stable").reset_index(drop=True)
    return df.reset_index(drop=True)


def starts_of(df: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """The rows where a run of equal ``keys`` begins, in a frame sorted by them (``sort_by``)."""
    if len(df) == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.zeros(len(df), bool)
    new[0] = True
    for k in keys:
        c = df[k].to_numpy()
        new[1:] |= c[1:] != c[:-1]
    return np.flatnonzero(new)


def sizes_of(starts: np.ndarray, length: int) -> np.ndarray:
    """The length of each run, from where the runs begin (``starts_of``) in ``length`` rows."""
    return np.diff(np.concatenate([starts, [length]])).astype(np.int64)


def sampling_cost(p: Problems, k: int, per_sample_extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(FLOPs, generated tokens) per problem of spending budget k on repeated sampling: the prompt's prefill
    (once when it is shared by the samples, else k times) plus k times the mean decode cost (and the mean of
    ``per_sample_extra``, e.g. a verifier's cost)."""
    shared = p.first("prefill_shared").astype(bool)
    prefills = np.where(shared, 1, k)
    flops = prefills * p.first("prefill_flops").astype(float) + k * p.means("decode_flops")
    if per_sample_extra is not None:
        flops = flops + k * per_sample_extra
    return flops, k * p.means("generated_tokens")


def table(p: Problems, k: int, metric: str, value, flops, tokens, se=None) -> dict:
    """Rows of one metric at budget k for the problems with at least k samples, as columns (``concat``
    makes the table of several)."""
    mask = p.n >= k
    value = np.asarray(value, dtype=float)
    se = np.zeros(len(p.ids)) if se is None else np.asarray(se, dtype=float)
    return {"problem_id": p.ids[mask], "budget": np.full(int(mask.sum()), k), "metric": metric,
            "value": value[mask], "se": se[mask], "flops": np.asarray(flops, dtype=float)[mask],
            "tokens": np.asarray(tokens, dtype=float)[mask]}


def concat(tables: list[dict]) -> pd.DataFrame:
    """One table (``TABLE_COLUMNS``) of ``table``'s rows, in order."""
    tables = [t for t in tables if len(t["problem_id"])]
    if not tables:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    cols = {c: np.concatenate([t[c] for t in tables]) for c in TABLE_COLUMNS if c != "metric"}
    cols["metric"] = np.concatenate([np.full(len(t["problem_id"]), t["metric"], dtype=object) for t in tables])
    return pd.DataFrame({c: cols[c] for c in TABLE_COLUMNS})


def pass_values(p: Problems, k: int) -> np.ndarray:
    return pass_at_k_array(p.n, p.n_correct(), k)


def answer_classes(problem: np.ndarray, answers: np.ndarray) -> tuple:
    """Samples grouped by (problem, answer): ``order``, the samples' positions sorted by problem, then answer
    (in string order), each class's samples in their given order; ``first``, where each class begins in
    ``order``; and the ``code`` of each sample's answer among the sorted distinct ``uniques``."""
    code, uniques = pd.factorize(answers, sort=True)
    order = np.lexsort((code, problem))  # stable: within a class, the samples keep their order
    p, c = problem[order], code[order]
    first = np.flatnonzero(np.concatenate([[True], (p[1:] != p[:-1]) | (c[1:] != c[:-1])]))
    return order, first, code, uniques


def vote_classes(p: Problems, weights: np.ndarray | None = None) -> list[tuple]:
    """Per problem ``(counts, good, unparsed, class_weights)`` of its answers, in the order each answer first
    appears among its samples (an answer is good if any of its samples is correct; ``class_weights`` is each
    answer's common weight, or None when an answer's samples differ in weight)."""
    answers = p.df["answer"].to_numpy(dtype=object)
    rows = np.flatnonzero([isinstance(a, str) for a in answers])  # the samples that vote
    problem = np.repeat(np.arange(len(p.ids)), p.n)[rows]
    unparsed = p.n - np.bincount(problem, minlength=len(p.ids))
    out: list = [(np.zeros(0, int), np.zeros(0, bool), int(u), None) for u in unparsed]
    if not len(rows):
        return out
    order, first, _, _ = answer_classes(problem, answers[rows])
    rows, problem = rows[order], problem[order]
    counts = sizes_of(first, len(rows))
    good = np.maximum.reduceat(p.correct()[rows].astype(np.int8), first).astype(bool)
    if weights is not None:
        w = np.asarray(weights, dtype=float)[rows]
        wmin, wmax = np.minimum.reduceat(w, first), np.maximum.reduceat(w, first)
    by = np.lexsort((rows[first], problem[first]))  # each problem's answers in order of first appearance
    cls_problem = problem[first][by]
    bounds = np.flatnonzero(np.concatenate([[True], cls_problem[1:] != cls_problem[:-1], [True]]))
    for a, b in zip(bounds[:-1], bounds[1:]):
        pi, sel = int(cls_problem[a]), by[a:b]
        cw = None
        if weights is not None:
            same = np.isclose(wmin[sel], wmax[sel], rtol=1e-12, atol=1e-15).all()
            cw = wmin[sel] if same else None
        out[pi] = (counts[sel], good[sel], int(unparsed[pi]), cw)
    return out


def vote_values(p: Problems, budgets: tuple[int, ...], weights: np.ndarray | None = None) -> dict[int, np.ndarray]:
    """Exact (weighted) majority vote at each budget k, per problem (NaN where k exceeds its samples, and
    for a weighted vote where an answer's samples differ in weight: those are left to the caller)."""
    jobs = [(c, [k for k in budgets if k <= n] if (weights is None or c[3] is not None) else [])
            for c, n in zip(vote_classes(p, weights), p.n)]
    work = sum(len(ks) for _, ks in jobs)
    parts = min(cpus(), 8) if work > PARALLEL_VOTES else 1
    results = map_parts(votes, [jobs[i::parts] for i in range(parts)])  # problem j is in part j % parts
    out = {k: np.full(len(p.ids), np.nan) for k in budgets}
    for i, (_, ks) in enumerate(jobs):
        for k, v in zip(ks, results[i % parts][i // parts]):
            out[k][i] = v
    return out


def best_values(p: Problems, scores: np.ndarray, k: int) -> np.ndarray:
    """best@k per problem from each record's score."""
    correct = p.correct()
    out = np.full(len(p.ids), np.nan)
    for i, (s, n) in enumerate(zip(p.start, p.n)):
        if k <= n:
            out[i] = best_of_k(scores[s:s + n], correct[s:s + n], k)
    return out


def table_from_problems(df: pd.DataFrame, evaluate_problem, budgets: tuple[int, ...], seed: int = 0) -> pd.DataFrame:
    """A table from a function of one problem's records (sorted by sample index) that returns row dicts with
    budget, metric, value, flops, tokens (and optionally se): for strategies whose problems are small."""
    p = Problems.of(df)
    rows = []
    for pid, a, n in zip(p.ids, p.start, p.n):
        for r in evaluate_problem(p.df.iloc[a:a + n], budgets, seed=seed):
            rows.append({"problem_id": pid, "se": 0.0, **r})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)

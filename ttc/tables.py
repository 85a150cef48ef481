"""Per-problem metric tables computed from record columns, vectorized over problems.

A strategy's ``evaluate`` takes the records of one (task, model, sampler) and returns one row per
(problem, budget, metric) with the columns ``TABLE_COLUMNS``: ``value`` is the problem's expected score at
that budget, ``se`` the Monte Carlo standard error of an approximated value (0 when exact), ``flops`` and
``tokens`` what spending the budget on the problem costs. These helpers build such tables from the columns
alone (answers, correctness, token counts, FLOPs), never from texts.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ttc.metrics import best_of_k, pass_at_k_array
from ttc.voting import vote_at_k

TABLE_COLUMNS = ["problem_id", "budget", "metric", "value", "se", "flops", "tokens"]
# Above this many (problem, budget) vote computations the work is spread over processes.
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
        pid, idx = df["problem_id"].to_numpy(), df["sample_index"].to_numpy()
        ordered = len(pid) < 2 or bool(np.all((pid[1:] > pid[:-1]) | ((pid[1:] == pid[:-1]) & (idx[1:] > idx[:-1]))))
        df = df.reset_index(drop=True) if ordered else \
            df.sort_values(["problem_id", "sample_index"], kind="stable").reset_index(drop=True)
        pid = df["problem_id"].to_numpy()
        if len(pid) == 0:
            return cls(np.array([], dtype=object), np.zeros(0, int), np.zeros(0, int), df)
        starts = np.flatnonzero(np.concatenate([[True], pid[1:] != pid[:-1]]))
        sizes = np.diff(np.concatenate([starts, [len(pid)]]))
        return cls(pid[starts], starts, sizes, df)

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


def table(p: Problems, k: int, metric: str, value, flops, tokens, se=None) -> pd.DataFrame:
    """Rows of one metric at budget k for the problems with at least k samples."""
    mask = p.n >= k
    value = np.asarray(value, dtype=float)
    se = np.zeros(len(p.ids)) if se is None else np.asarray(se, dtype=float)
    return pd.DataFrame({"problem_id": p.ids[mask], "budget": k, "metric": metric, "value": value[mask],
                         "se": se[mask], "flops": np.asarray(flops, dtype=float)[mask],
                         "tokens": np.asarray(tokens, dtype=float)[mask]})


def concat(tables: list[pd.DataFrame]) -> pd.DataFrame:
    tables = [t for t in tables if len(t)]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=TABLE_COLUMNS)


def pass_values(p: Problems, k: int) -> np.ndarray:
    return pass_at_k_array(p.n, p.n_correct(), k)


def vote_classes(p: Problems, weights: np.ndarray | None = None) -> list[tuple]:
    """Per problem ``(counts, good, unparsed, class_weights)`` of its answers, by one grouping over all
    records (an answer is good if any of its samples is correct; ``class_weights`` is each answer's
    common weight, or None when an answer's samples differ in weight)."""
    answers = p.df["answer"].where(p.df["answer"].map(lambda a: isinstance(a, str)), None)
    frame = pd.DataFrame({"pi": np.repeat(np.arange(len(p.ids)), p.n), "answer": answers,
                          "correct": p.correct()})
    if weights is not None:
        frame["w"] = weights
    valid = frame[frame["answer"].notna()]
    agg = {"count": ("correct", "size"), "good": ("correct", "any")}
    if weights is not None:
        agg.update(wmin=("w", "min"), wmax=("w", "max"))
    g = valid.groupby(["pi", "answer"], sort=False).agg(**agg).reset_index()
    unparsed = p.n - np.bincount(valid["pi"].to_numpy(), minlength=len(p.ids))
    out: list = [(np.zeros(0, int), np.zeros(0, bool), int(u), None) for u in unparsed]
    for pi, rows in g.groupby("pi", sort=False):
        cw = None
        if weights is not None:
            same = np.isclose(rows["wmin"], rows["wmax"], rtol=1e-12, atol=1e-15).all()
            cw = rows["wmin"].to_numpy(dtype=float) if same else None
        out[pi] = (rows["count"].to_numpy(), rows["good"].to_numpy(), int(unparsed[pi]), cw)
    return out


_MEMO: dict = {}


def _votes(job: tuple) -> list[float]:
    """One problem's votes at its budgets; problems with the same answer counts share the work."""
    (counts, good, unparsed, cw), ks, weighted = job
    if not counts.size or not ks:  # no answer, or a weighted vote left to the caller (samples differ in weight)
        return [0.0] * len(ks)
    shape = tuple(sorted(zip(counts.tolist(), good.tolist(), cw.tolist() if weighted else [1.0] * counts.size)))
    out = []
    for k in ks:
        key = (shape, unparsed, k)
        if key not in _MEMO:
            if len(_MEMO) > 100_000:
                _MEMO.clear()
            _MEMO[key] = vote_at_k(counts, good, unparsed, k, cw if weighted else None)
        out.append(_MEMO[key])
    return out


def vote_values(p: Problems, budgets: tuple[int, ...], weights: np.ndarray | None = None) -> dict[int, np.ndarray]:
    """Exact (weighted) majority vote at each budget k, per problem (NaN where k exceeds its samples, and
    for a weighted vote where an answer's samples differ in weight: those are left to the caller)."""
    cls = vote_classes(p, weights)
    weighted = weights is not None
    jobs = []
    for (counts, good, unparsed, cw), n in zip(cls, p.n):
        ks = [k for k in budgets if k <= n] if (not weighted or cw is not None) else []
        jobs.append(((counts, good, unparsed, cw), ks, weighted))
    work = sum(len(j[1]) for j in jobs)
    workers = min(os.cpu_count() or 1, 8)
    if work > PARALLEL_VOTES and workers > 1:
        # spawn: the caller may hold threads (an engine, a progress bar) that fork would copy mid-flight
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_votes, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
    else:
        results = [_votes(j) for j in jobs]
    out = {k: np.full(len(p.ids), np.nan) for k in budgets}
    for i, (job, vals) in enumerate(zip(jobs, results)):
        for k, v in zip(job[1], vals):
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

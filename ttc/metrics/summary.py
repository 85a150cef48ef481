"""From stored records to ``summary.csv``: per-problem metric values, then means with bootstrap CIs.

Each strategy evaluates its own records (``evaluate(df, budgets, seed) -> table``, see ``ttc.metrics.tables``); the
strategies are handed in as a mapping from sampler name (``samplers.SAMPLERS``), so this module depends on no
strategy. Only the columns the strategies name are read (``columns``), never the texts.

Difficulty levels (Snell et al. 2024, "Scaling LLM Test-Time Compute Optimally..."): each problem's
pass@1 for a model is the mean correctness of its repeated samples (the ``sample`` sampler's records when
that sampler ran on it, else all its records), and it falls into one of ``LEVELS`` equal-width bins:
level 1 = pass@1 in [0.8, 1], 2 = [0.6, 0.8), 3 = [0.4, 0.6), 4 = [0.2, 0.4), 5 = [0, 0.2) (computed from
integer counts, so 3 of 5 correct is exactly 0.6, level 2). Snell et al. cut at quantiles of pass@1
instead; equal widths keep a level's meaning fixed across models and runs. The level is assigned from the
same samples that are then scored, so per-level accuracies are descriptive (the easiest level is easy by
construction). ``summary.csv`` holds the overall rows (``level == "all"``) and the same metrics per level.

``se`` is the Monte Carlo standard error of the mean where a strategy had to approximate a value (0 when
every value is exact); ``ci_low``/``ci_high`` are the 95% percentile bootstrap over problems.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ttc.errors import TTCError
from ttc.metrics.estimators import bootstrap_ci_runs
from ttc.metrics.tables import TABLE_COLUMNS, sizes_of, sort_by, starts_of
from ttc.store.runstore import detach_header, load_run, read_header, write_atomic

SUMMARY_COLUMNS = ["task", "model", "sampler", "budget", "metric", "value", "ci_low", "ci_high",
                   "flops_per_problem", "tokens", "n_problems", "level", "se"]
LEVEL_COLUMNS = ["task", "model", "problem_id", "pass@1", "n_samples", "level"]
LEVELS = 5
PER_PROBLEM = "per_problem.parquet"  # the per-problem values behind summary.csv, read by the fits
LEVEL_SAMPLER = "sample"  # repeated sampling: whose records define a problem's pass@1 when present
BASE_COLUMNS = ("task", "model", "sampler", "problem_id", "sample_index", "correct")


def _strategy(strategies: Mapping, name: str):
    """The strategy that evaluates the records of sampler ``name``; a label ``<strategy>:<variant>`` (an
    imported run's filters, ``imported:flex-first``) is evaluated by ``<strategy>``."""
    base, sep, _ = name.partition(":")
    try:
        return strategies[name] if name in strategies or not sep else strategies[base]
    except KeyError:
        raise TTCError(f"no strategy named {name!r} to evaluate its records; known: "
                       f"{', '.join(sorted(strategies))}") from None


def needed_columns(strategies: Mapping, samplers) -> list[str]:
    """The record columns that evaluating ``samplers`` reads."""
    cols = list(BASE_COLUMNS)
    for s in samplers:
        cols += [c for c in getattr(_strategy(strategies, s), "columns", ()) if c not in cols]
    return cols


def load_metric_records(run_dir, strategies: Mapping) -> pd.DataFrame:
    """A run's records with only the columns its strategies' ``evaluate`` reads (never the texts); the header
    is in ``attrs["header"]``."""
    samplers = load_run(run_dir, columns=["sampler"])["sampler"].unique().tolist()
    return load_run(run_dir, columns=needed_columns(strategies, samplers))


def problem_levels(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, model, problem): ``pass@1``, ``n_samples`` and ``level`` (1 easiest .. 5)."""
    if df.empty:
        return pd.DataFrame(columns=LEVEL_COLUMNS)
    keys = ["task", "model", "problem_id"]
    d = sort_by(df[keys + ["sampler", "correct"]], keys)
    starts = starts_of(d, keys)
    problem = np.repeat(np.arange(len(starts)), sizes_of(starts, len(d)))
    correct = d["correct"].astype(bool).to_numpy().astype(np.int64)
    every, base = np.ones(len(d), bool), (d["sampler"] == LEVEL_SAMPLER).to_numpy()
    n_all, n_base = (np.bincount(problem[m], minlength=len(starts)) for m in (every, base))
    c_all, c_base = (np.bincount(problem[m], correct[m], len(starts)) for m in (every, base))
    has = n_base > 0  # repeated sampling's records where they exist, else every record of the problem
    n = np.where(has, n_base, n_all)
    c = np.where(has, c_base, c_all).round().astype(np.int64)
    out = pd.DataFrame({k: d[k].to_numpy()[starts] for k in keys})
    out["pass@1"] = c / n
    out["n_samples"] = n
    out["level"] = LEVELS - np.minimum(c * LEVELS // n, LEVELS - 1)
    return out[LEVEL_COLUMNS]


def per_problem(df: pd.DataFrame, budgets: tuple[int, ...], strategies: Mapping, seed: int = 0) -> pd.DataFrame:
    """One row per (task, model, sampler, problem, budget, metric), from each strategy's ``evaluate``."""
    parts = []
    for (task, model, sampler), g in df.groupby(["task", "model", "sampler"], sort=True):
        t = _strategy(strategies, sampler).evaluate(g, tuple(budgets), seed=seed)
        if len(t):
            t = t.reindex(columns=TABLE_COLUMNS)
            t.insert(0, "sampler", sampler)
            t.insert(0, "model", model)
            t.insert(0, "task", task)
            parts.append(t)
    if not parts:
        return pd.DataFrame(columns=["task", "model", "sampler", *TABLE_COLUMNS])
    out = pd.concat(parts, ignore_index=True)
    out["se"] = out["se"].fillna(0.0)
    return out


def _aggregate(pp: pd.DataFrame, keys: list[str], seed: int, n_boot: int) -> pd.DataFrame:
    """One row per group of ``keys``: the mean over its problems, bootstrap interval, costs and se."""
    pp = pp.dropna(subset=keys)  # as groupby does: a problem without a level is in no level's rows
    pp = sort_by(pp, keys + ["problem_id"])
    starts = starts_of(pp, keys)
    if not len(starts):
        return pd.DataFrame(columns=[*keys, "value", "ci_low", "ci_high", "flops_per_problem", "tokens",
                                     "n_problems", "se"])
    n = sizes_of(starts, len(pp))
    values = pp["value"].to_numpy(dtype=float)
    lo, hi = bootstrap_ci_runs(values, starts, n_boot=n_boot, seed=seed)
    out = pd.DataFrame({k: pp[k].to_numpy()[starts] for k in keys})

    def mean(x):
        return np.add.reduceat(np.asarray(x, dtype=float), starts) / n

    out["value"], out["ci_low"], out["ci_high"] = mean(values), lo, hi
    out["flops_per_problem"], out["tokens"], out["n_problems"] = mean(pp["flops"]), mean(pp["tokens"]), n
    out["se"] = np.sqrt(np.add.reduceat(pp["se"].to_numpy(dtype=float) ** 2, starts)) / n
    return out


def summarize(df: pd.DataFrame, budgets: tuple[int, ...], strategies: Mapping, seed: int = 0,
              n_boot: int = 2000) -> pd.DataFrame:
    """The summary table: mean over problems of each metric at each budget, with a 95% bootstrap CI.

    ``flops_per_problem`` and ``tokens`` (generated tokens) are means over problems at that budget.
    """
    if df.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    return aggregate(per_problem(df, budgets, strategies, seed), problem_levels(df), seed, n_boot)


def aggregate(pp: pd.DataFrame, levels: pd.DataFrame, seed: int = 0, n_boot: int = 2000) -> pd.DataFrame:
    """The summary table from per-problem values (``per_problem``) and the problems' levels."""
    if pp.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    keys = ["task", "model", "sampler", "budget", "metric"]
    overall = _aggregate(pp, keys, seed, n_boot).assign(level="all")
    levels = levels[["task", "model", "problem_id", "level"]]
    pp = pp.merge(levels, on=["task", "model", "problem_id"], how="left")
    per_level = _aggregate(pp, ["task", "model", "sampler", "level", "budget", "metric"], seed, n_boot)
    out = pd.concat([overall, per_level], ignore_index=True)[SUMMARY_COLUMNS]
    out["level"] = out["level"].astype(str)
    for c in ("value", "ci_low", "ci_high", "flops_per_problem", "tokens", "se"):
        out[c] = out[c].astype(float) + 0.0  # -0.0 (1 - 1.0 in an estimator) is written as 0.0
    return out


def write_summary(run_dir, strategies: Mapping, budgets: tuple[int, ...] | None = None, seed: int | None = None,
                  plot: bool = True, records: pd.DataFrame | None = None) -> pd.DataFrame:
    """Recompute ``summary.csv``, ``per_problem.parquet``, ``problems.csv`` and ``curve.png`` of a run from its
    stored records (each file written atomically) and return the summary. ``budgets`` and ``seed`` default to
    the run's own. ``records`` are the run's records when the caller has them loaded already (with at least
    the columns ``needed_columns`` names); else the columns needed are read."""
    run_dir = Path(run_dir)
    df = load_metric_records(run_dir, strategies) if records is None else records
    if records is None and df.empty:
        raise TTCError(f"{run_dir} has no records yet, so there is nothing to summarize; run (or resume) its "
                       f"sweep first")
    header = detach_header(df) or read_header(run_dir)
    budgets = tuple(budgets or header.get("config", {}).get("sweep", {}).get("budgets", ()))
    if not budgets:
        raise TTCError(f"{run_dir}: the header names no budgets; give --budget")
    seed = int(header.get("seed", 0) if seed is None else seed)
    pp = per_problem(df, budgets, strategies, seed)
    levels = problem_levels(df)
    del df, records  # freed here when the caller kept no reference (ttc import's 5M records: 0.6 GB)
    summary = aggregate(pp, levels, seed)
    write_atomic(run_dir / PER_PROBLEM, lambda tmp: pp.to_parquet(tmp, index=False))
    write_atomic(run_dir / "summary.csv", lambda tmp: summary.to_csv(tmp, index=False))
    write_atomic(run_dir / "problems.csv", lambda tmp: levels.to_csv(tmp, index=False))
    if plot and not summary.empty:
        from ttc.report.curve import save_curve

        write_atomic(run_dir / "curve.png",
                     lambda tmp: save_curve(summary, tmp, title=header.get("run_id", run_dir.name)))
    return summary

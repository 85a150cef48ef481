"""From stored records to ``summary.csv``: per-problem metric values, then means with bootstrap CIs."""

from __future__ import annotations

import pandas as pd

from ttc.metrics import bootstrap_ci

SUMMARY_COLUMNS = ["task", "model", "sampler", "budget", "metric", "value", "ci_low", "ci_high",
                   "flops_per_problem", "tokens", "n_problems"]


def per_problem(df: pd.DataFrame, budgets: tuple[int, ...], seed: int = 0) -> pd.DataFrame:
    """One row per (task, model, sampler, problem, budget, metric), from each sampler's ``evaluate``."""
    from samplers import get_sampler

    rows = []
    for (task, model, sampler, pid), group in df.groupby(["task", "model", "sampler", "problem_id"], sort=False):
        group = group.sort_values("sample_index")
        for r in get_sampler(sampler).evaluate(group, budgets, seed=seed):
            rows.append(dict(task=task, model=model, sampler=sampler, problem_id=pid, **r))
    return pd.DataFrame(rows)


def summarize(df: pd.DataFrame, budgets: tuple[int, ...], seed: int = 0) -> pd.DataFrame:
    """The summary table: mean over problems of each metric at each budget, with a 95% bootstrap CI.

    ``flops_per_problem`` and ``tokens`` (generated tokens) are means over problems at that budget.
    """
    if df.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    pp = per_problem(df, budgets, seed)
    rows = []
    for key, g in pp.groupby(["task", "model", "sampler", "budget", "metric"], sort=True):
        lo, hi = bootstrap_ci(g["value"].to_numpy(), seed=seed)
        rows.append(dict(zip(["task", "model", "sampler", "budget", "metric"], key),
                         value=g["value"].mean(), ci_low=lo, ci_high=hi,
                         flops_per_problem=g["flops"].mean(), tokens=g["tokens"].mean(),
                         n_problems=len(g)))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

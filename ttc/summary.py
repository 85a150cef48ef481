"""From stored records to ``summary.csv``: per-problem metric values, then means with bootstrap CIs.

Difficulty levels (Snell et al. 2024, "Scaling LLM Test-Time Compute Optimally..."): each problem's
pass@1 for a model is the mean correctness of its repeated samples (the ``sample`` sampler's records when
that sampler ran on it, else all its records), and it falls into one of ``LEVELS`` equal-width bins:
level 1 = pass@1 in [0.8, 1], 2 = [0.6, 0.8), 3 = [0.4, 0.6), 4 = [0.2, 0.4), 5 = [0, 0.2) (computed from
integer counts, so 3 of 5 correct is exactly 0.6, level 2). Snell et al. cut at quantiles of pass@1
instead; equal widths keep a level's meaning fixed across models and runs. The level is assigned from the
same samples that are then scored, so per-level accuracies are descriptive (the easiest level is easy by
construction). ``summary.csv`` holds the overall rows (``level == "all"``) and the same metrics per level.
"""

from __future__ import annotations

import pandas as pd

from ttc.metrics import bootstrap_ci

SUMMARY_COLUMNS = ["task", "model", "sampler", "budget", "metric", "value", "ci_low", "ci_high",
                   "flops_per_problem", "tokens", "n_problems", "level"]
LEVELS = 5
LEVEL_SAMPLER = "sample"  # repeated sampling: whose records define a problem's pass@1 when present


def problem_levels(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, model, problem): ``pass@1``, ``n_samples`` and ``level`` (1 easiest .. 5)."""
    cols = ["task", "model", "problem_id", "pass@1", "n_samples", "level"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (task, model, pid), g in df.groupby(["task", "model", "problem_id"], sort=True):
        base = g[g["sampler"] == LEVEL_SAMPLER]
        g = base if len(base) else g
        n, c = len(g), int(g["correct"].astype(bool).sum())
        level = LEVELS - min(c * LEVELS // n, LEVELS - 1)
        rows.append(dict(task=task, model=model, problem_id=pid, **{"pass@1": c / n}, n_samples=n, level=level))
    return pd.DataFrame(rows, columns=cols)


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
                         n_problems=len(g), level="all"))
    if not pp.empty:
        levels = problem_levels(df)[["task", "model", "problem_id", "level"]]
        pp = pp.merge(levels, on=["task", "model", "problem_id"], how="left")
        for key, g in pp.groupby(["task", "model", "sampler", "level", "budget", "metric"], sort=True):
            lo, hi = bootstrap_ci(g["value"].to_numpy(), seed=seed)
            rows.append(dict(zip(["task", "model", "sampler", "level", "budget", "metric"], key),
                             value=g["value"].mean(), ci_low=lo, ci_high=hi,
                             flops_per_problem=g["flops"].mean(), tokens=g["tokens"].mean(),
                             n_problems=len(g)))
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    out["level"] = out["level"].astype(str)
    return out

"""Fit a curve to a run's per-problem values, with parameter CIs from resampling problems.

Input is ``ttc.metrics.summary.per_problem`` output restricted to one (task, model, sampler, metric): rows of
``problem_id, budget, value, flops``. The point estimate fits the mean over problems at each budget;
each bootstrap replicate draws problems with replacement, recomputes those means, and refits. A replicate
whose fit raises ``FitError`` (say, every drawn problem scored 0) is counted, not hidden; if more than
``max_failed`` of them fail the whole fit raises, because the CI would describe only the lucky draws.

``reliability`` flags what a CI cannot support, and ``RELIABILITY_NOTE`` says why in one line:

* ``wide``: the CI's ends differ by more than ``WIDE_FACTOR`` (100x): the data do not fix the parameter's
  order of magnitude (a power law's ``a``, its value at 1 FLOP, ten decades left of the data, is the usual
  case: read the fitted curve and its band, not that number);
* ``sign``: the CI holds both signs: not even the direction of the effect is known;
* ``boot``: more than ``MAX_FAILED_SHARE`` (5%) of the replicates could not be fitted. The CI comes from the
  replicates that could; if the failed ones all lay beyond one end, the stated 95% interval covers at
  least 0.95 x (1 - failed share) of the resampling distribution, under 90% past 5.3% failed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ttc.analysis.fits import FITTERS, FitError, FitResult

WIDE_FACTOR = 100.0
MAX_FAILED_SHARE = 0.05
RELIABILITY_NOTE = (f"flag: wide = the 95% CI's ends differ by more than {WIDE_FACTOR:.0f}x (the data do not fix the "
                    f"parameter's order of magnitude); sign = the CI holds both signs; boot = more than "
                    f"{MAX_FAILED_SHARE:.0%} of bootstrap replicates could not be fitted (the CI comes from those "
                    f"that could and may cover under 90%)")


def problem_matrix(pp: pd.DataFrame, x: str = "flops") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(budgets, values[problem, budget], x[problem, budget]) from per-problem rows of one curve.

    ``x`` is ``"flops"`` (inference FLOPs per problem at that budget) or ``"budget"`` (k)."""
    if pp.empty:
        raise FitError("no per-problem rows to fit")
    keys = pp[["task", "model", "sampler", "metric"]].drop_duplicates() if "metric" in pp else None
    if keys is not None and len(keys) > 1:
        raise FitError(f"per-problem rows hold {len(keys)} curves; select one (task, model, sampler, metric)")
    values = pp.pivot_table(index="problem_id", columns="budget", values="value", aggfunc="mean")
    values = values.dropna(axis=0, how="any")
    if len(values) < 2:
        raise FitError(f"need at least 2 problems with every budget to bootstrap, have {len(values)}")
    budgets = values.columns.to_numpy(dtype=float)
    if x == "budget":
        xs = np.broadcast_to(budgets, values.shape).copy()
    elif x == "flops":
        xs = pp.pivot_table(index="problem_id", columns="budget", values="flops", aggfunc="mean")
        xs = xs.loc[values.index, values.columns].to_numpy(dtype=float)
    else:
        raise FitError(f"x must be 'flops' or 'budget', not {x!r}")
    return budgets, values.to_numpy(dtype=float), xs


def fit_with_ci(values: np.ndarray, xs: np.ndarray, form: str, n_boot: int = 200, level: float = 0.95,
                seed: int = 0, max_failed: float = 0.5, **fit_kw) -> FitResult:
    """Fit ``form`` to the per-budget means of ``values`` (problems x budgets) against the mean of ``xs``;
    attach percentile CIs of every fitted parameter over ``n_boot`` problem resamples."""
    fitter = FITTERS[form]
    point = fitter(xs.mean(axis=0), values.mean(axis=0), **fit_kw)
    if n_boot <= 0:
        return point
    rng = np.random.default_rng(seed)
    n = values.shape[0]
    draws: dict[str, list[float]] = {k: [] for k in point.free}
    failed = 0
    if form == "sigmoid":  # warm start each replicate from the point fit (the grid is the fallback)
        fit_kw = {**fit_kw, "start": point.params}
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        try:
            r = fitter(xs[idx].mean(axis=0), values[idx].mean(axis=0), **fit_kw)
        except FitError:
            failed += 1
            continue
        for k in point.free:
            draws[k].append(r.params[k])
    if failed > max_failed * n_boot:
        raise FitError(f"{form} fit: {failed} of {n_boot} bootstrap replicates could not be fitted; "
                       f"the fit is not stable under resampling problems (too few problems?)")
    a = (1 - level) / 2
    ci = {k: (float(np.quantile(v, a)), float(np.quantile(v, 1 - a))) for k, v in draws.items()}
    draws_arr = np.array([draws[k] for k in point.free]).T
    return point.with_ci(ci, n_boot - failed, failed, draws_arr)


def reliability(lo: float, hi: float, n_ok: int, n_failed: int) -> str:
    """Flags of one parameter's CI (``"wide"``, ``"sign"``, ``"boot"``, comma-joined; ``""`` when none), see
    the module docstring. ``n_ok`` and ``n_failed`` are the replicates that were and were not fitted."""
    flags = []
    if np.isfinite(lo) and np.isfinite(hi):
        if lo < 0 < hi:
            flags.append("sign")
        elif lo != 0 and hi != 0 and max(abs(lo), abs(hi)) > WIDE_FACTOR * min(abs(lo), abs(hi)):
            flags.append("wide")
    total = n_ok + n_failed
    if total and n_failed > MAX_FAILED_SHARE * total:
        flags.append("boot")
    return ",".join(flags)


def fit_curve(pp: pd.DataFrame, form: str, x: str = "flops", **kw) -> FitResult:
    """``problem_matrix`` then ``fit_with_ci``: the one call a notebook needs for one curve."""
    _, values, xs = problem_matrix(pp, x)
    return fit_with_ci(values, xs, form, **kw)

"""The compute-optimal test-time policy (Snell et al. 2024, "Scaling LLM Test-Time Compute Optimally can be
More Effective than Scaling Model Parameters", sections 3-5), read from stored per-problem values.

A *configuration* is one strategy at one setting: a (sampler, metric, budget) of the per-problem table
(``ttc.metrics.summary.per_problem``), for example best_of_n best@4 or budget_forcing acc at 32 tokens of thought.
Its *price* is its mean inference FLOPs per problem. Only selection rules that need no gold answer are
strategies (``DEPLOYABLE``: maj@k, best@k, wmaj@k, acc); pass@k is an oracle and is left out.

* **Difficulty** (sec. 3.2): each problem gets a score, higher = easier, and falls into one of ``n_bins``
  quantile bins of that score (the paper's five). *oracle*: the model's own pass@1 over its repeated
  samples (needs the gold answer). *predicted*: a score the policy could compute without the gold answer,
  the mean self log-probability of the first few samples of the problem (``extra["mean_logprob"]``, else
  the verifier ``score``).
* **Policy** (sec. 3.1): for each FLOPs budget B and each bin, the configuration with the highest accuracy
  among those priced at most B. A policy without bins picks one configuration per B for every problem.
* **Cross-fitting**: the problems are split in two halves; the choices (and the bin edges) are fitted on
  one half and scored on the other, and the other way round, so every problem is scored by a policy that
  never saw it. The curve is the mean over all problems of these out-of-fold values.
* **Best single strategy**: for each (sampler, metric), the best affordable budget at each B, cross-fitted
  the same way; the best single strategy is the one whose fitted curve reaches the highest accuracy.
* **FLOPs ratio** (Snell's "4x"): the FLOPs the best single strategy needs to reach its own top accuracy,
  divided by the FLOPs the policy needs to reach that accuracy (log-linear interpolation along its curve;
  nan when the policy never reaches it). ``gain_at_max``: the policy's accuracy minus the best single
  strategy's at the largest budget (always defined). CIs are percentiles over bootstrap replicates that
  resample problems and redo the split, the fit and the scoring; the ratio's CI is given when at least half
  the replicates reach the target (``reached_share``).
* **How many problems** (``min_problems``): two-fold cross-fitting fits each bin's choice on one half, so a
  choice rests on about ``n / (2 x bins)`` problems. Below one problem per bin and half the method is not
  defined (an error). Below ``MIN_PER_BIN`` (10) it is defined but says little, and the result carries a
  note: the difference between two configurations' accuracies on m problems has a standard error of
  sqrt(0.5 / m) for two uncorrelated configurations at accuracy 0.5 (at most 1 / sqrt(m)), 0.22 at m = 10
  and 0.35 at m = 4, as large as the differences between strategies that a difficulty bin can exploit; the
  choice is then mostly the configuration that was lucky on its half (the winner's curse), and the ratio is
  often nan (never reached). The minimum is ``2 x bins x 10`` problems: 100 at the default 5 bins, 20
  without bins.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ttc.analysis.exchange import k_to_reach
from ttc.errors import TTCError

DEPLOYABLE = ("maj@k", "best@k", "wmaj@k", "acc")
MIN_PER_BIN = 10  # problems per bin in each half below which a bin's choice is mostly noise (module docstring)
REPEATED = ("sample", "best_of_n")  # samplers whose records are i.i.d. samples of the problem


@dataclass(frozen=True)
class Configs:
    """Per-problem values and FLOPs of every configuration: ``values[p, c]``, ``flops[p, c]``."""

    problems: np.ndarray
    table: pd.DataFrame          # one row per configuration: sampler, metric, budget, strategy
    values: np.ndarray
    flops: np.ndarray

    @property
    def strategies(self) -> list[str]:
        return list(dict.fromkeys(self.table["strategy"]))


def config_matrix(pp: pd.DataFrame, metrics=DEPLOYABLE) -> Configs:
    """Configurations of one (task, model) from per-problem rows, restricted to problems that every
    configuration scored (the policy compares strategies on the same problems)."""
    if pp.empty:
        raise TTCError("no per-problem rows")
    keys = pp[["task", "model"]].drop_duplicates()
    if len(keys) > 1:
        raise TTCError(f"per-problem rows hold {len(keys)} (task, model) pairs; the policy needs one")
    pp = pp[pp["metric"].isin(metrics)]
    if pp.empty:
        raise TTCError(f"no rows of the deployable metrics {', '.join(metrics)}")
    idx = ["sampler", "metric", "budget"]
    vals = pp.pivot_table(index="problem_id", columns=idx, values="value", aggfunc="mean")
    fl = pp.pivot_table(index="problem_id", columns=idx, values="flops", aggfunc="mean")
    keep = vals.notna().all(axis=1) & fl.notna().all(axis=1)
    vals, fl = vals[keep], fl.loc[keep[keep].index, vals.columns]
    if len(vals) < 4:
        raise TTCError(f"only {len(vals)} problems were scored by every configuration; need at least 4")
    table = pd.DataFrame(list(vals.columns), columns=idx)
    table["strategy"] = table["sampler"] + " " + table["metric"]
    return Configs(vals.index.to_numpy(), table, vals.to_numpy(float), fl.to_numpy(float))


def difficulty_scores(records: pd.DataFrame, problems, first: int = 4) -> pd.DataFrame:
    """Per problem: ``oracle`` (pass@1 of its repeated samples; gold needed) and ``predicted`` (mean of
    the per-sample mean self log-probability over its first ``first`` samples; no gold). Higher = easier.

    Repeated samples are the ``sample`` sampler's records, else ``best_of_n``'s; ``predicted`` comes from
    the first of those samplers whose records carry log-probabilities (nan where none do), and
    ``predictor_flops`` is what generating those ``first`` samples cost per problem."""
    parts = [records[records["sampler"] == s] for s in REPEATED]
    parts = [p for p in parts if len(p)]
    if not parts:
        raise TTCError(f"difficulty needs repeated samples ({' or '.join(REPEATED)}) of the same problems")
    df = parts[0].groupby("problem_id")["correct"].apply(lambda c: float(c.astype(bool).mean())).to_frame("oracle")
    df["predicted"], df["predictor_flops"] = np.nan, np.nan
    for part in parts:
        if not part["extra"].map(lambda e: _logprob(e) is not None).any():
            continue
        for pid, g in part.groupby("problem_id", sort=False):
            g = g.sort_values("sample_index").iloc[:first]
            lp = [v for v in map(_logprob, g["extra"]) if v is not None]
            if lp and pid in df.index:
                df.loc[pid, "predicted"] = float(np.mean(lp))
                df.loc[pid, "predictor_flops"] = float(g["decode_flops"].sum() + g["prefill_flops"].iloc[0])
        break
    missing = set(problems) - set(df.index)
    if missing:
        raise TTCError(f"{len(missing)} problems have no repeated samples to score their difficulty")
    return df.loc[list(problems)]


def _logprob(extra) -> float | None:
    if not isinstance(extra, dict):
        return None
    for key in ("mean_logprob", "score"):
        if extra.get(key) is not None:
            return float(extra[key])
    return None


def quantile_bins(fit_scores: np.ndarray, scores: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each of ``scores`` (0 = lowest score = hardest) by quantile edges of ``fit_scores``.

    Edges sit half-way between distinct fitted values, each chosen so that the share of ``fit_scores``
    below it is nearest to j / n_bins; tied scores always share a bin (with many problems at pass@1 = 0
    there are fewer bins than asked, not a bin split at random)."""
    fit_scores = np.asarray(fit_scores, dtype=float)
    uniq = np.unique(fit_scores)
    if uniq.size < 2 or n_bins < 2:
        return np.zeros(np.shape(scores), dtype=int)
    mids = (uniq[:-1] + uniq[1:]) / 2
    below = np.array([(fit_scores < m).mean() for m in mids])
    edges = np.unique([mids[np.argmin(np.abs(below - t))] for t in np.arange(1, n_bins) / n_bins])
    return np.searchsorted(edges, np.asarray(scores, dtype=float), side="right")


def _choose(values: np.ndarray, prices: np.ndarray, budget: float) -> int:
    """The affordable configuration with the highest mean value (ties: the cheaper); -1 if none."""
    ok = np.flatnonzero(prices <= budget * (1 + 1e-9))
    if ok.size == 0 or values.shape[0] == 0:
        return -1
    means = values[:, ok].mean(axis=0)
    best = np.flatnonzero(means >= means.max() - 1e-12)
    return int(ok[best[np.argmin(prices[ok][best])]])


def _fit_policy(values, flops, bins, n_bins, grid, cols) -> np.ndarray:
    """choice[g, b]: configuration (index into ``cols``) for grid budget g and bin b, fitted on these rows;
    an empty bin falls back to the choice for all rows."""
    prices = flops[:, cols].mean(axis=0)
    out = np.full((len(grid), n_bins), -1)
    for g, B in enumerate(grid):
        pooled = _choose(values[:, cols], prices, B)
        for b in range(n_bins):
            rows = bins == b
            c = _choose(values[rows][:, cols], prices, B) if rows.any() else pooled
            out[g, b] = cols[c] if c >= 0 else -1
    return out


def _score(values, flops, bins, choice) -> tuple[np.ndarray, np.ndarray]:
    """Per-problem value and FLOPs of a fitted choice table, at every grid budget (nan where unaffordable)."""
    c = choice[:, bins]                                  # grid x problems
    rows = np.arange(values.shape[0])[None, :]
    ok = c >= 0
    v = np.where(ok, values[rows, np.where(ok, c, 0)], np.nan)
    f = np.where(ok, flops[rows, np.where(ok, c, 0)], np.nan)
    return v, f


def cross_fit(values, flops, scores, n_bins, grid, cols, folds) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold (accuracy, FLOPs) per grid budget: fit on each fold's complement, score on the fold.
    ``scores`` None: no bins (one choice for all problems)."""
    v_out = np.full((len(grid), values.shape[0]), np.nan)
    f_out = np.full_like(v_out, np.nan)
    nb = n_bins if scores is not None else 1
    for k in np.unique(folds):
        test, train = folds == k, folds != k
        if scores is None:
            b_tr, b_te = np.zeros(train.sum(), int), np.zeros(test.sum(), int)
        else:
            b_tr = quantile_bins(scores[train], scores[train], nb)
            b_te = quantile_bins(scores[train], scores[test], nb)
        choice = _fit_policy(values[train], flops[train], b_tr, nb, grid, cols)
        v, f = _score(values[test], flops[test], b_te, choice)
        v_out[:, test], f_out[:, test] = v, f
    return v_out.mean(axis=1), f_out.mean(axis=1)


def _folds(n: int, rng, groups: np.ndarray | None = None) -> np.ndarray:
    """Two folds of equal size; with ``groups`` (bootstrap copies of one problem) a group stays together."""
    groups = np.arange(n) if groups is None else groups
    uniq = np.unique(groups)
    half = rng.permutation(uniq)[: len(uniq) // 2]
    return np.isin(groups, half).astype(int)


def reach_flops(target: float, flops: np.ndarray, acc: np.ndarray) -> float:
    """FLOPs at which a curve first reaches ``target`` (log-linear between its points); nan if never."""
    ok = np.isfinite(flops) & np.isfinite(acc)
    if not ok.any():
        return float("nan")
    order = np.argsort(flops[ok], kind="stable")
    x = k_to_reach(target, flops[ok][order], acc[ok][order])
    return x if np.isfinite(x) else float("nan")


def _curves(cfg: Configs, idx, scores: dict, n_bins: int, grid, folds) -> dict:
    """Every curve of one (re)sample of problems: the policies and each single strategy."""
    values, flops = cfg.values[idx], cfg.flops[idx]
    all_cols = np.arange(values.shape[1])
    out = {"no bins": cross_fit(values, flops, None, n_bins, grid, all_cols, folds)}
    for name, s in scores.items():
        out[f"{name} bins"] = cross_fit(values, flops, s[idx], n_bins, grid, all_cols, folds)
    for strat in cfg.strategies:
        cols = np.flatnonzero(cfg.table["strategy"].to_numpy() == strat)
        out[strat] = cross_fit(values, flops, None, n_bins, grid, cols, folds)
    return out


def _best_single(curves: dict, strategies: list[str]) -> str:
    return max(strategies, key=lambda s: (np.nanmax(curves[s][0]) if np.isfinite(curves[s][0]).any() else -1))


def _ratios(curves: dict, strategies: list[str]) -> dict:
    """For each policy: the best single strategy, its top accuracy, the FLOPs each needs for it, the ratio."""
    best = _best_single(curves, strategies)
    acc_b, fl_b = curves[best]
    target = float(np.nanmax(acc_b))
    f_base = reach_flops(target, fl_b, acc_b)
    out = {}
    for name, (acc, fl) in curves.items():
        if name in strategies:
            continue
        f_pol = reach_flops(target, fl, acc)
        out[name] = dict(best_single=best, target_accuracy=target, flops_best_single=f_base, flops_policy=f_pol,
                         flops_ratio=f_base / f_pol if np.isfinite(f_pol) else float("nan"),
                         gain_at_max=float(acc[-1] - acc_b[-1]))
    return out


def min_problems(n_bins: int) -> int:
    """Problems a policy with ``n_bins`` difficulty bins needs: two halves x bins x ``MIN_PER_BIN``."""
    return 2 * max(int(n_bins), 1) * MIN_PER_BIN


def size_notes(n: int, n_bins: int) -> tuple[str, ...]:
    """What a policy fitted on ``n`` problems cannot support (empty when ``n`` reaches ``min_problems``)."""
    if n >= min_problems(n_bins):
        return ()
    per_bin = n / (2 * max(n_bins, 1))
    return (f"{n} problems give about {per_bin:.3g} per difficulty bin in each cross-fitting half; a policy needs at "
            f"least {MIN_PER_BIN} per bin and half ({min_problems(n_bins)} problems for {n_bins} bins), else each "
            f"bin's choice is mostly the configuration that was lucky on its half: read these ratios as noise "
            f"(use more problems or fewer --bins)",)


@dataclass(frozen=True)
class PolicyResult:
    curves: pd.DataFrame     # curve, budget_flops, accuracy, flops, ci_low, ci_high
    ratios: pd.DataFrame     # one row per policy: best_single, target_accuracy, FLOPs, ratio with CI
    choices: pd.DataFrame    # fitted on all problems: bin x budget -> configuration (for display)
    n_problems: int
    n_bins: int
    notes: tuple[str, ...] = ()  # what the result cannot support (too few problems for its bins)


def compute_optimal_policy(cfg: Configs, scores: dict[str, np.ndarray], n_bins: int = 5, n_grid: int = 40,
                           n_boot: int = 200, seed: int = 0, level: float = 0.95) -> PolicyResult:
    """Cross-fitted compute-optimal policies (one per difficulty score, and one without bins) against
    every single strategy, with bootstrap CIs over problems (see the module docstring)."""
    n = cfg.values.shape[0]
    if n < 2 * n_bins:
        raise TTCError(f"{n} problems cannot fill {n_bins} bins in each of two halves (a policy needs at least "
                       f"{min_problems(n_bins)}); use fewer bins or more problems")
    for name, s in scores.items():
        if not np.all(np.isfinite(s)):
            raise TTCError(f"difficulty score {name!r} is missing for some problems")
    prices = cfg.flops.mean(axis=0)
    grid = np.logspace(np.log10(prices.min()), np.log10(prices.max()), n_grid)
    rng = np.random.default_rng(seed)
    base = np.arange(n)
    point = _curves(cfg, base, scores, n_bins, grid, _folds(n, rng))
    ratio = _ratios(point, cfg.strategies)
    reps = {k: [] for k in point}
    rep_ratio = {k: [] for k in ratio}
    rep_gain = {k: [] for k in ratio}
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        c = _curves(cfg, idx, scores, n_bins, grid, _folds(n, rng, groups=idx))
        for k, (acc, _) in c.items():
            reps[k].append(acc)
        for k, r in _ratios(c, cfg.strategies).items():
            rep_ratio[k].append(r["flops_ratio"])
            rep_gain[k].append(r["gain_at_max"])
    a = (1 - level) / 2
    rows = []
    for k, (acc, fl) in point.items():
        rep = np.array(reps[k]) if reps[k] else np.full((1, len(grid)), np.nan)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a budget no replicate could afford
            lo = np.nanquantile(rep, a, axis=0) if n_boot else np.full(len(grid), np.nan)
            hi = np.nanquantile(rep, 1 - a, axis=0) if n_boot else np.full(len(grid), np.nan)
        kind = "policy" if k not in cfg.strategies else "strategy"
        for g in range(len(grid)):
            if np.isfinite(acc[g]):
                rows.append(dict(curve=k, kind=kind, budget_flops=grid[g], accuracy=acc[g], flops=fl[g],
                                 ci_low=lo[g], ci_high=hi[g]))
    rat = []
    for k, r in ratio.items():
        draws = np.array(rep_ratio[k], dtype=float)
        reached = np.isfinite(draws)
        ci = ((float(np.quantile(draws[reached], a)), float(np.quantile(draws[reached], 1 - a)))
              if reached.sum() >= max(1, n_boot // 2) else (np.nan, np.nan))
        gains = np.array(rep_gain[k], dtype=float)
        gains = gains[np.isfinite(gains)]
        g_ci = (float(np.quantile(gains, a)), float(np.quantile(gains, 1 - a))) if gains.size else (np.nan, np.nan)
        rat.append(dict(policy=k, **r, ratio_low=ci[0], ratio_high=ci[1],
                        reached_share=float(reached.mean()) if n_boot else np.nan,
                        gain_low=g_ci[0], gain_high=g_ci[1]))
    return PolicyResult(pd.DataFrame(rows), pd.DataFrame(rat), _choice_table(cfg, scores, n_bins, grid),
                        n, n_bins, size_notes(n, n_bins))


def _choice_table(cfg: Configs, scores: dict, n_bins: int, grid) -> pd.DataFrame:
    """What each policy picks when fitted on all problems, at every grid budget and bin."""
    rows = []
    cols = np.arange(cfg.values.shape[1])
    t = cfg.table
    for name, s in [("no bins", None), *((f"{k} bins", v) for k, v in scores.items())]:
        nb = n_bins if s is not None else 1
        bins = quantile_bins(s, s, nb) if s is not None else np.zeros(len(cfg.values), int)
        choice = _fit_policy(cfg.values, cfg.flops, bins, nb, grid, cols)
        for g, B in enumerate(grid):
            for b in range(nb):
                c = choice[g, b]
                if c < 0:
                    continue
                rows.append(dict(policy=name, budget_flops=B, bin=b + 1, n_problems=int((bins == b).sum()),
                                 sampler=t["sampler"].iloc[c], metric=t["metric"].iloc[c],
                                 budget=int(t["budget"].iloc[c])))
    return pd.DataFrame(rows)


def _first_run(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    first = df.groupby(key)["_run"].transform("min")
    return df[df["_run"] == first].drop(columns="_run")


def policy_from_runs(run_dirs, n_bins: int = 5, n_boot: int = 200, seed: int = 0, first: int = 4,
                     model: str | None = None, task: str | None = None,
                     samplers: tuple[str, ...] | None = None) -> tuple[PolicyResult, Configs, pd.DataFrame]:
    """Read one or more runs of one task and model, and compute the policy (see ``compute_optimal_policy``)
    over the strategies of ``samplers`` (default: all). Returns the result, the configurations and the
    per-problem difficulty table."""
    from ttc.analysis.runs import run_per_problem
    from ttc.store.runstore import load_run

    pps, recs = [], []
    for i, r in enumerate(run_dirs):
        pp, _ = run_per_problem(r)
        pps.append(pp.assign(_run=i))
        recs.append(load_run(r, columns=["task", "model", "sampler", "problem_id", "sample_index", "correct",
                                         "extra", "decode_flops", "prefill_flops"]).assign(_run=i))
    # a problem that several runs hold (of one sampler) is read from the first of them only
    key = ["task", "model", "sampler", "problem_id"]
    pp, records = (_first_run(pd.concat(x, ignore_index=True), key) for x in (pps, recs))
    for col, want in (("task", task), ("model", model)):
        have = sorted(pp[col].unique())
        if want is None and len(have) > 1:
            raise TTCError(f"the runs hold {len(have)} {col}s ({', '.join(have)}); choose one with --{col}")
        want = want or have[0]
        if want not in have:
            raise TTCError(f"no {col} {want!r} in the runs; have {', '.join(have)}")
        pp, records = pp[pp[col] == want], records[records[col] == want]
    if samplers:
        unknown = set(samplers) - set(pp["sampler"])
        if unknown:
            raise TTCError(f"no records of sampler(s) {', '.join(sorted(unknown))} in the runs")
        pp = pp[pp["sampler"].isin(samplers)]
    cfg = config_matrix(pp)
    diff = difficulty_scores(records, cfg.problems, first=first)
    scores = {"oracle": diff["oracle"].to_numpy(float)}
    if diff["predicted"].notna().all():
        scores["predicted"] = diff["predicted"].to_numpy(float)
    return compute_optimal_policy(cfg, scores, n_bins=n_bins, n_boot=n_boot, seed=seed), cfg, diff


__all__ = ["Configs", "PolicyResult", "config_matrix", "difficulty_scores", "quantile_bins", "cross_fit",
           "compute_optimal_policy", "policy_from_runs", "reach_flops", "min_problems", "DEPLOYABLE", "MIN_PER_BIN"]

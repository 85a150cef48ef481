"""From run directories to tables: summaries, per-problem values, fitted curves, exchange rates.

Everything here reads what a run stored (``summary.csv``, the records, ``header.json``); nothing
generates. The notebook and ``ttc fit`` / ``ttc plot`` call these.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ttc.analysis.bootstrap import fit_with_ci, problem_matrix, reliability
from ttc.analysis.chinchilla import BESIROGLU_2024
from ttc.analysis.exchange import anchored_compute, anchored_params, breakeven_ratio, flops_matched_table
from ttc.analysis.fits import FitError, FitResult
from ttc.analysis.forms import sigmoid
from ttc.analysis.reference import FamilyCurve, family_curve, load_reference, pretraining_flops
from ttc.errors import TTCError
from ttc.metrics.summary import PER_PROBLEM, load_metric_records, per_problem
from ttc.store.runstore import detach_header, read_header

CURVE_KEYS = ["task", "model", "sampler", "metric"]

# Which fits apply to which metric, and on which x: (form, x, fit kwargs).
FIT_PLAN = {
    "pass@k": [("sigmoid", "flops", {}), ("power_law", "flops", {}), ("coverage_brown", "budget", {}),
               ("neglog_pass", "budget", {})],
    "maj@k": [("sigmoid", "flops", {}), ("power_law", "flops", {})],
}


def overall(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the whole task: those with ``level == "all"`` when the table has a ``level`` column."""
    return df[df["level"].astype(str) == "all"] if "level" in df.columns else df


def load_summary(run_dir) -> pd.DataFrame:
    """A run's ``summary.csv`` (every level), with ``run`` (the directory name) added."""
    path = Path(run_dir) / "summary.csv"
    if not path.exists():
        raise TTCError(f"{run_dir} has no summary.csv; finish or resume the run first")
    s = pd.read_csv(path)
    s.insert(0, "run", Path(run_dir).name)
    return s


def run_budgets(df: pd.DataFrame) -> tuple[int, ...]:
    return tuple(int(b) for b in df.attrs["header"]["config"]["sweep"]["budgets"])


def run_per_problem(run_dir) -> tuple[pd.DataFrame, dict]:
    """Per-problem values of every curve of a run (``ttc.metrics.summary.per_problem``), and the run header."""
    stored = Path(run_dir) / PER_PROBLEM
    if stored.exists():  # written with summary.csv from the same records (ttc summary redoes both)
        pp = pd.read_parquet(stored)
        if len(pp):
            return pp, read_header(Path(run_dir))
    from samplers import SAMPLERS  # the strategies evaluate their own records

    df = load_metric_records(run_dir, SAMPLERS)
    if df.empty:
        raise TTCError(f"{run_dir} holds no complete problems")
    budgets = run_budgets(df)
    header = detach_header(df)
    pp = per_problem(df, budgets, SAMPLERS, seed=int(header.get("seed", 0)))
    if "level" in pp.columns:
        pp = overall(pp) if (pp["level"].astype(str) == "all").any() else pp
    return pp, header


def fit_run_curves(pp: pd.DataFrame, n_boot: int = 200, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """Fit every applicable form to every curve of a run's per-problem values.

    Returns ``{(task, model, sampler, metric, form): FitResult}`` and a parameter table; a fit the data
    cannot support appears in the table with its reason in ``error`` instead of numbers, and a parameter
    whose CI cannot be relied on carries ``flag`` (``ttc.analysis.bootstrap.reliability``)."""
    fits: dict = {}
    rows = []
    for key, g in pp.groupby(CURVE_KEYS, sort=True):
        for form, x, kw in FIT_PLAN.get(key[3], []):
            ident = dict(zip(CURVE_KEYS, key), form=form, x=x)
            try:
                _, values, xs = problem_matrix(g, x)
                r = fit_with_ci(values, xs, form, n_boot=n_boot, seed=seed, **kw)
            except FitError as e:
                rows.append(dict(ident, param=None, error=str(e)))
                continue
            fits[(*key, form)] = r
            for pr in r.to_rows():
                flag = "" if pr["fixed"] else reliability(pr["ci_low"], pr["ci_high"], r.n_boot, r.n_boot_failed)
                rows.append(dict(ident, **pr, n_boot=r.n_boot, n_boot_failed=r.n_boot_failed, flag=flag, error=""))
    return fits, pd.DataFrame(rows)


def model_identity(header: dict, model: str) -> dict:
    """Name, actual parameter count and (if the reference table knows the model) pretraining tokens."""
    info = header.get("models", {}).get(model, {})
    spec = info.get("spec", {})
    original = (info.get("identity") or {}).get("original") or model
    name = str(original).rstrip("/").split("/")[-1]
    ref = load_reference()
    match = ref[ref["model"].str.lower() == name.lower()]
    return dict(name=name, n_params=spec.get("n_params_total") or spec.get("n_params_nonembed"),
                family=match["family"].iloc[0] if len(match) else None,
                setting=match["setting"].iloc[0] if len(match) else None,
                tokens=float(match["tokens"].iloc[0]) if len(match) else None,
                reference_params=float(match["params"].iloc[0]) if len(match) else None)


def default_curve(identity: dict, benchmark: str = "gsm8k") -> FamilyCurve:
    """The family curve of the model's own family and setting (instruct models against instruct scores)."""
    if identity["family"] is None:
        raise TTCError(f"model {identity['name']} is not in the reference table; pass a family and its "
                       f"pretraining tokens explicitly")
    return family_curve(identity["family"], benchmark, identity["setting"])


def _joint_density_ci(pp: pd.DataFrame, key: tuple, metric: str, curve: FamilyCurve, c0: float,
                      n_boot: int, seed: int, level: float = 0.95) -> dict[int, tuple[float, float]]:
    """Percentile CI of the anchored density at each budget, resampling problems jointly for the anchor
    (budget 1) and the budget itself: they share problems, so their errors are correlated."""
    g = pp[(pp["task"] == key[0]) & (pp["model"] == key[1]) & (pp["sampler"] == key[2]) & (pp["metric"] == metric)]
    budgets, values, _ = problem_matrix(g, "budget")
    if 1 not in budgets:
        return {}
    i1 = int(np.flatnonzero(budgets == 1)[0])
    rng = np.random.default_rng(seed)
    n = values.shape[0]
    dens = np.full((n_boot, budgets.size), np.nan)
    for b in range(n_boot):
        acc = values[rng.integers(0, n, size=n)].mean(axis=0)
        try:
            anc = anchored_compute(acc, acc[i1], c0, curve)
        except ValueError:  # the anchor fell on the floor or ceiling in this draw
            continue
        dens[b] = (anc / c0) ** (1.0 / (1.0 + curve.tokens_slope))
    a = (1 - level) / 2
    out = {}
    for j, k in enumerate(budgets):
        col = dens[:, j][np.isfinite(dens[:, j])]
        if col.size >= n_boot / 2:
            out[int(k)] = (float(np.quantile(col, a)), float(np.quantile(col, 1 - a)))
    return out


def exchange_table(summary: pd.DataFrame, curve: FamilyCurve, n_params: float, tokens: float,
                   metric: str = "maj@k", pp: pd.DataFrame | None = None, n_boot: int = 1000,
                   seed: int = 0) -> pd.DataFrame:
    """Effective pretraining compute, effective params and density at each budget of each curve of
    ``summary`` (one run's overall rows) for ``metric``; raw and anchored (see ``ttc.analysis.exchange``).

    ``C_eff_low``/``C_eff_high`` map the accuracy CI through the (monotone) curve. With the per-problem
    values ``pp``, ``density_low``/``density_high`` resample problems jointly for the anchor and the
    budget (``ci`` = "joint"); without them they come from the accuracy CI alone (``ci`` = "marginal").
    ``extrapolated`` marks C_eff outside the family's measured compute range."""
    s = overall(summary)
    s = s[s["metric"] == metric].sort_values("budget")
    if s.empty:
        raise TTCError(f"no {metric} rows in the summary")
    c0 = float(pretraining_flops(n_params, tokens))
    cmin, cmax = curve.rows["compute"].min(), curve.rows["compute"].max()
    out = []
    for key, g in s.groupby(["task", "model", "sampler"], sort=True):
        g = g.sort_values("budget")
        acc1 = float(g["value"].iloc[0]) if int(g["budget"].iloc[0]) == 1 else np.nan
        joint = _joint_density_ci(pp, key, metric, curve, c0, n_boot, seed) if pp is not None else {}
        for _, r in g.iterrows():
            row = dict(zip(["task", "model", "sampler"], key), metric=metric, budget=int(r["budget"]),
                       accuracy=r["value"], ci_low=r["ci_low"], ci_high=r["ci_high"],
                       inference_flops=r["flops_per_problem"], pretrain_flops=c0)
            raw = curve.compute_for(np.array([r["value"], r["ci_low"], r["ci_high"]]))
            row["C_eff_raw"] = raw[0]
            row["density_raw"] = curve.params_for_compute(raw[0]) / n_params
            try:
                anc = anchored_compute(np.array([r["value"], r["ci_low"], r["ci_high"]]), acc1, c0, curve)
            except ValueError:
                anc = np.full(3, np.nan)
            # along the family's tokens-per-parameter trend D ~ N^s, from the model itself: C ~ N^(1+s)
            n_eff = n_params * (anc / c0) ** (1.0 / (1.0 + curve.tokens_slope))
            row.update(C_eff=anc[0], C_eff_low=anc[1], C_eff_high=anc[2], multiplier=anc[0] / c0,
                       N_eff=n_eff[0], density=n_eff[0] / n_params, density_low=n_eff[1] / n_params,
                       density_high=n_eff[2] / n_params,
                       N_opt_chinchilla=BESIROGLU_2024.optimal(anc[0])[0] if np.isfinite(anc[0]) else np.nan,
                       extrapolated=bool(not (cmin / 1.05 <= anc[0] <= cmax * 1.05))
                       if np.isfinite(anc[0]) else True, ci="marginal")
            if int(r["budget"]) in joint:
                row.update(density_low=joint[int(r["budget"])][0], density_high=joint[int(r["budget"])][1],
                           ci="joint")
            out.append(row)
    return pd.DataFrame(out)


def k_from_fit(fit: FitResult, target: float, budgets, flops) -> float:
    """The k at which a sigmoid fit of accuracy against FLOPs per problem reaches ``target``, converting
    FLOPs to k with the run's own linear cost ``flops = f0 + f1 k``; inf if the fit's ceiling is lower.
    This extrapolates beyond the measured budgets."""
    from ttc.analysis.forms import sigmoid_inverse

    f1, f0 = np.polyfit(np.asarray(budgets, dtype=float), np.asarray(flops, dtype=float), 1)
    c = float(sigmoid_inverse(target, **fit.params))
    if not np.isfinite(c):
        return float("inf")
    return float(max((c - f0) / f1, 1.0))


def matched_table(summary: pd.DataFrame, curve: FamilyCurve, n_params: float, tokens: float,
                  metric: str = "maj@k", ratios=(0.01, 0.1, 1.0, 10.0), fits: dict | None = None) -> pd.DataFrame:
    """Snell et al.'s FLOPs-matched comparison of the run's model against the larger members of its
    family. The larger models' accuracy *on the run's task* is predicted by the anchored family curve at
    their pretraining compute (the same assumption as the anchored exchange rate). ``k_needed`` uses
    the measured budgets only; with ``fits`` (from ``fit_run_curves``), ``k_needed_fit`` and
    ``breakeven_R_fit`` extrapolate the run's sigmoid fit."""
    s = overall(summary)
    s = s[s["metric"] == metric].sort_values("budget")
    if s.empty or int(s["budget"].iloc[0]) != 1:
        raise TTCError(f"need {metric} at budget 1 to anchor the family curve")
    out = []
    c0 = float(pretraining_flops(n_params, tokens))
    for key, g in s.groupby(["task", "model", "sampler"], sort=True):
        g = g.sort_values("budget")
        acc1 = float(g["value"].iloc[0])
        bigger = curve.rows[curve.rows["params"] > n_params * 1.05].copy()
        if bigger.empty:
            continue
        try:
            p = anchored_params(curve, acc1, c0)
        except ValueError:
            continue
        bigger["accuracy"] = sigmoid(bigger["compute"].to_numpy(float), **p)
        t = flops_matched_table(g["budget"], g["value"], n_params, bigger, ratios)
        fit = (fits or {}).get((*key, metric, "sigmoid"))
        if fit is not None:
            t["k_needed_fit"] = [k_from_fit(fit, a, g["budget"], g["flops_per_problem"]) for a in t["target_accuracy"]]
            t["breakeven_R_fit"] = [breakeven_ratio(k, M) for k, M in zip(t["k_needed_fit"], t["M"])]
        for i, (k, v) in enumerate(zip(["task", "model", "sampler"], key)):
            t.insert(i, k, v)
        out.append(t)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


__all__ = ["load_summary", "run_per_problem", "fit_run_curves", "model_identity", "default_curve",
           "exchange_table", "matched_table", "overall", "FitResult"]


@dataclass
class RunAnalysis:
    run_dir: Path
    summary: pd.DataFrame
    fits: dict
    fit_table: pd.DataFrame
    exchange: pd.DataFrame
    matched: pd.DataFrame
    models: dict  # model -> {"curve": FamilyCurve, "n_params": float, "tokens": float, "identity": dict}
    notes: list[str]


def analyze_run(run_dir, metric: str = "maj@k", n_boot: int = 200, seed: int = 0, family: str | None = None,
                benchmark: str = "gsm8k", setting: str | None = None, tokens: float | None = None) -> RunAnalysis:
    """Fits, exchange rate and FLOPs-matched comparison of every model of one run."""
    run_dir = Path(run_dir)
    summary = load_summary(run_dir)
    pp, header = run_per_problem(run_dir)
    fits, fit_table = fit_run_curves(pp, n_boot=n_boot, seed=seed)
    notes, ex_parts, m_parts, models = [], [], [], {}
    for model in sorted(overall(summary)["model"].unique()):
        ident = model_identity(header, model)
        fam = family or ident["family"]
        st = setting or ident["setting"]
        d = tokens or ident["tokens"]
        if fam is None or st is None or d is None or ident["n_params"] is None:
            notes.append(f"{model}: not in the reference table and no --family/--setting/--tokens given; "
                         f"no exchange rate")
            continue
        try:
            curve = family_curve(fam, benchmark, st) if (family or setting) else default_curve(ident, benchmark)
        except TTCError as e:
            notes.append(f"{model}: {e}")
            continue
        models[model] = dict(curve=curve, n_params=float(ident["n_params"]), tokens=float(d), identity=ident)
        s = summary[summary["model"] == model]
        try:
            ex_parts.append(exchange_table(s, curve, ident["n_params"], d, metric, pp=pp, seed=seed))
            m_parts.append(matched_table(s, curve, ident["n_params"], d, metric, fits=fits))
        except TTCError as e:
            notes.append(f"{model}: {e}")
    cat = lambda parts: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()  # noqa: E731
    return RunAnalysis(run_dir, summary, fits, fit_table, cat(ex_parts), cat(m_parts), models, notes)

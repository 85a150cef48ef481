"""What test-time compute is worth in pretraining compute: exchange rate, FLOPs-matched comparison, frontier.

**Effective pretraining compute** of a run at budget k: the pretraining FLOPs ``C_eff`` at which a family
curve (accuracy against ``6 N D``, ``ttc.analysis.reference``) reaches the run's accuracy at k. Two readings:

* *raw*: invert the family curve as published. It mixes benchmarks and settings whenever the run's task is
  not the family's benchmark (a chain_sum accuracy read off a GSM8K curve), so it is shown, not trusted.
* *anchored* (the default): shift the family curve along the compute axis so that it passes through the
  run's own single-sample accuracy at the model's actual pretraining compute ``C_0 = 6 N D``; then
  ``log10(C_eff / C_0) = (logit(u_k) - logit(u_1)) / slope`` with ``u = (acc - floor) / (ceiling - floor)``.
  Only the family's slope (accuracy gained per decade of pretraining) carries over between benchmarks;
  k = 1 has ``C_eff = C_0`` and density 1 by construction.

**Effective parameter count**: the N whose ``6 N D(N)`` equals ``C_eff`` along the family's own
tokens-per-parameter trend ``D ~ N**s`` (fitted across the family's sizes), started from the model itself:
``N_eff = N (C_eff / C_0)**(1 / (1 + s))`` (raw: ``FamilyCurve.params_for_compute``). For reference the
tables also give the Chinchilla compute-optimal ``N*(C_eff)`` (Besiroglu et al. 2024 constants), which
for heavily over-trained families such as SmolLM2 is far larger than the family's own sizes. **Capability density** = effective params / actual params (the Densing Law's
ratio, Xiao et al. 2024, applied to test-time compute instead of to a newer model).

**FLOPs-matched comparison** (Snell et al. 2024, sec. 7): total cost ``6 N D_pre + 2 N D_inf``; a model M
times larger costs the same as the small one using ``k = M + 3 (D_pre / D_inf)(M - 1)`` times the
inference tokens. With ``R = D_inf / D_pre``, test-time compute wins at R when the small model's accuracy
at that k reaches the large model's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ttc.analysis.forms import logit, sigmoid_inverse
from ttc.analysis.reference import FamilyCurve


def _u(acc, params):
    return (np.asarray(acc, dtype=float) - params["floor"]) / (params["ceiling"] - params["floor"])


def anchored_params(curve: FamilyCurve, acc_anchor: float, compute_anchor: float) -> dict:
    """The family curve's parameters with ``mid`` moved so that it passes through
    ``(compute_anchor, acc_anchor)``; floor, ceiling and slope unchanged."""
    p = curve.fit.params
    u0 = float(_u(acc_anchor, p))
    if not 0 < u0 < 1:
        raise ValueError(f"anchor accuracy {acc_anchor} is outside the family curve's range; cannot anchor")
    return {**p, "mid": float(np.log10(compute_anchor) - logit(u0) / p["slope"])}


def anchored_compute(acc, acc_anchor: float, compute_anchor: float, curve: FamilyCurve):
    """Effective pretraining compute of accuracy ``acc`` on the family curve shifted to pass through
    ``(compute_anchor, acc_anchor)``. nan where an accuracy is outside the curve's (floor, ceiling)."""
    return sigmoid_inverse(acc, **anchored_params(curve, acc_anchor, compute_anchor))


def snell_multiplier(M, R):
    """Test-time multiplier k at which a model M times smaller matches a larger one's total FLOPs, for
    ``R = D_inference / D_pretrain`` (Snell et al. 2024): ``k = M + 3 (M - 1) / R``."""
    M, R = np.asarray(M, dtype=float), np.asarray(R, dtype=float)
    if np.any(M < 1) or np.any(R <= 0):
        raise ValueError("need M >= 1 and R > 0")
    return M + 3.0 * (M - 1.0) / R


def breakeven_ratio(k_needed: float, M: float) -> float:
    """The largest R at which test-time compute still wins, given the small model reaches the large
    model's accuracy at ``k_needed`` samples: inf if ``k_needed <= M`` (wins at every R), 0 if never."""
    if not np.isfinite(k_needed):
        return 0.0
    if k_needed <= M:
        return float("inf")
    return 3.0 * (M - 1.0) / (k_needed - M)


def k_to_reach(target: float, budgets, accuracy) -> float:
    """Smallest k (log-linear interpolation between measured budgets) at which ``accuracy`` reaches
    ``target``; inf when the measured curve never does (nothing is extrapolated here)."""
    k = np.asarray(budgets, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    order = np.argsort(k)
    k, a = k[order], a[order]
    if a[0] >= target:
        return float(k[0])
    for i in range(1, len(k)):
        if a[i] >= target:
            f = (target - a[i - 1]) / (a[i] - a[i - 1])
            return float(np.exp(np.log(k[i - 1]) + f * (np.log(k[i]) - np.log(k[i - 1]))))
    return float("inf")


def flops_matched_table(budgets, accuracy, n_small: float, larger: pd.DataFrame,
                        ratios=(0.01, 0.1, 1.0, 10.0)) -> pd.DataFrame:
    """For each larger model (rows with ``model``, ``params``, ``accuracy``: its predicted accuracy on the
    run's task), the ratio M, the k the small model needs to match it, the break-even R, and at each R of
    ``ratios`` the FLOPs-matched k and whether test-time compute wins (measured budgets only)."""
    rows = []
    for _, big in larger.iterrows():
        M = float(big["params"]) / n_small
        need = k_to_reach(float(big["accuracy"]), budgets, accuracy)
        row = dict(larger_model=big["model"], M=M, target_accuracy=float(big["accuracy"]), k_needed=need,
                   breakeven_R=breakeven_ratio(need, M))
        for R in ratios:
            k = float(snell_multiplier(M, R))
            row[f"k@R={R:g}"] = k
            row[f"wins@R={R:g}"] = bool(need <= k)
        rows.append(row)
    return pd.DataFrame(rows)


def frontier(points: pd.DataFrame, x: str = "flops_per_problem", y: str = "value",
             by: tuple[str, ...] = ()) -> pd.DataFrame:
    """The compute-optimal frontier: rows that reach a higher ``y`` than every cheaper row (within each
    group of ``by``, for example task and level). Returns those rows, cheapest first in each group."""
    parts = []
    groups = points.groupby(list(by), sort=True) if by else [((), points)]
    for _, g in groups:
        g = g.sort_values([x, y], ascending=[True, False])
        best = -np.inf
        keep = []
        for idx, v in zip(g.index, g[y]):
            if v > best:
                keep.append(idx)
                best = v
        parts.append(g.loc[keep])
    return pd.concat(parts) if parts else points.iloc[:0]


def best_at(front: pd.DataFrame, budget_flops: float, x: str = "flops_per_problem") -> pd.Series | None:
    """The frontier configuration with the highest accuracy affordable at ``budget_flops`` (None if none)."""
    ok = front[front[x] <= budget_flops]
    return None if ok.empty else ok.iloc[-1]


def run_frontier(summaries: list[pd.DataFrame], metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All configurations of ``metric`` across runs and their frontier (per task, and per level if any)."""
    pts = pd.concat(summaries, ignore_index=True)
    pts = pts[pts["metric"] == metric]
    by = ("task", "level") if "level" in pts.columns else ("task",)
    return pts, frontier(pts, by=by)

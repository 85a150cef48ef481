"""Curve fits with goodness of fit, that refuse degenerate data instead of returning garbage.

Every ``fit_*`` takes the x values (compute, or samples k) and the mean accuracy at each, and returns a
``FitResult``: point estimates, the number of points and degrees of freedom, R^2 on the scale the fit
minimises, and the RMSE of the predicted accuracy. Confidence intervals come from
``ttc.analysis.bootstrap`` (resampling problems) and are attached to the result there.

A fit raises ``FitError`` when it has fewer points than parameters plus one, when x or y does not vary,
when values fall outside the form's domain, or when the optimum runs to a bound (a step, a line with no
curvature to place a midpoint): those are the cases where a number would be meaningless.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import optimize

from ttc.analysis import forms
from ttc.errors import TTCError


class FitError(TTCError):
    """The data cannot support the requested fit."""


@dataclass(frozen=True)
class FitResult:
    form: str                      # "sigmoid", "power_law", "coverage_brown", "neglog_pass"
    params: dict[str, float]       # every parameter of the form, fixed ones included
    free: tuple[str, ...]          # the parameters that were fitted
    n: int                         # number of points
    r2: float                      # on the scale the fit minimises (see each fit_*)
    rmse: float                    # of the predicted y itself
    x_range: tuple[float, float]   # the data's x span: predictions outside it are extrapolations
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    n_boot: int = 0                # bootstrap replicates that produced a fit
    n_boot_failed: int = 0
    draws: np.ndarray | None = field(default=None, repr=False, compare=False)  # replicates x free params

    @property
    def dof(self) -> int:
        return self.n - len(self.free)

    def predict(self, x):
        return FORMS[self.form](x, **self.params)

    def with_ci(self, ci: dict[str, tuple[float, float]], n_boot: int, n_failed: int,
                draws: np.ndarray | None = None) -> "FitResult":
        return replace(self, ci=ci, n_boot=n_boot, n_boot_failed=n_failed, draws=draws)

    def predict_band(self, x, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise percentile band of the prediction over the bootstrap replicates."""
        if self.draws is None or len(self.draws) == 0:
            raise FitError("no bootstrap replicates stored; fit with n_boot > 0")
        preds = np.array([FORMS[self.form](x, **{**self.params, **dict(zip(self.free, d))})
                          for d in self.draws])
        a = (1 - level) / 2
        return np.quantile(preds, a, axis=0), np.quantile(preds, 1 - a, axis=0)

    def to_rows(self) -> list[dict]:
        """One row per parameter, with its CI (nan when no bootstrap ran)."""
        rows = []
        for name, value in self.params.items():
            lo, hi = self.ci.get(name, (np.nan, np.nan))
            rows.append(dict(form=self.form, param=name, value=value, ci_low=lo, ci_high=hi,
                             fixed=name not in self.free, n=self.n, dof=self.dof, r2=self.r2, rmse=self.rmse))
        return rows


FORMS = {"sigmoid": forms.sigmoid, "power_law": forms.power_law,
         "coverage_brown": forms.coverage_brown, "neglog_pass": forms.neglog_pass}


def _arrays(x, y, n_free: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise FitError(f"{what}: x and y have different lengths ({x.size} and {y.size})")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise FitError(f"{what}: non-finite values in the data")
    if x.size < n_free + 1:
        raise FitError(f"{what}: {x.size} points cannot support {n_free} free parameters "
                       f"(need at least {n_free + 1})")
    if np.unique(x).size < min(n_free, x.size):
        raise FitError(f"{what}: only {np.unique(x).size} distinct x values for {n_free} parameters")
    if np.ptp(y) == 0:
        raise FitError(f"{what}: y is constant ({y[0]:g}); there is no curve to fit")
    return x, y


def _r2(obs: np.ndarray, pred: np.ndarray) -> float:
    sst = float(np.sum((obs - obs.mean()) ** 2))
    return 1.0 - float(np.sum((obs - pred) ** 2)) / sst if sst > 0 else float("nan")


def _rmse(obs, pred) -> float:
    return float(np.sqrt(np.mean((np.asarray(obs) - np.asarray(pred)) ** 2)))


def _at_bound(p: dict, lo_mid: float, hi_mid: float, max_slope: float, tol: float = 1e-6) -> bool:
    return p["mid"] <= lo_mid + tol or p["mid"] >= hi_mid - tol or p["slope"] >= max_slope - tol


def fit_sigmoid(x, y, floor: float | None = None, ceiling: float | None = None,
                mid_margin: float = 6.0, max_slope: float = 50.0, start: dict | None = None) -> FitResult:
    """Sigmoid in log10 compute (``forms.sigmoid``), least squares on accuracy.

    ``floor`` / ``ceiling`` fix those parameters (for example 0 and 1 for a family curve with few points);
    left ``None`` they are fitted within [0, 1]. ``mid`` must land within ``mid_margin`` decades of the
    data and ``slope`` below ``max_slope`` per decade, else the data do not locate a sigmoid and this raises.
    ``start`` (parameter values, e.g. the point fit when refitting a bootstrap replicate) is tried first;
    the grid of starts is used when it is absent or fails.
    """
    names = [n for n, v in (("floor", floor), ("ceiling", ceiling)) if v is None] + ["mid", "slope"]
    x, y = _arrays(x, y, len(names), "sigmoid fit")
    if np.any(x <= 0):
        raise FitError("sigmoid fit: compute must be positive")
    if np.any((y < 0) | (y > 1)):
        raise FitError("sigmoid fit: accuracies must lie in [0, 1]")
    lx = np.log10(x)
    lo_mid, hi_mid = lx.min() - mid_margin, lx.max() + mid_margin
    fixed = {k: v for k, v in (("floor", floor), ("ceiling", ceiling)) if v is not None}
    if floor is not None and ceiling is not None and not floor < ceiling:
        raise FitError(f"sigmoid fit: floor {floor} must be below ceiling {ceiling}")

    def unpack(theta):
        p = dict(fixed)
        p.update(zip(names, theta))
        return p

    def resid(theta):
        return forms.sigmoid(x, **unpack(theta)) - y

    bounds_lo = {"floor": 0.0, "ceiling": 0.0, "mid": lo_mid, "slope": 1e-3}
    bounds_hi = {"floor": 1.0, "ceiling": 1.0, "mid": hi_mid, "slope": max_slope}
    span = max(np.ptp(lx), 1e-6)
    starts = []
    for mid0 in np.quantile(lx, [0.25, 0.5, 0.75]).tolist() + [lx.max() + 1.0]:
        for slope0 in (4.0 / span, 1.0, 0.3):
            starts.append({"floor": min(max(y.min() - 0.01, 0.0), 0.99),
                           "ceiling": max(min(y.max() + 0.01, 1.0), 0.01),
                           "mid": mid0, "slope": min(max(slope0, 2e-3), max_slope * 0.9)})
    lo = [bounds_lo[n] for n in names]
    hi = [bounds_hi[n] for n in names]

    def solve(candidates):
        best = None
        for st in candidates:
            theta0 = np.clip([st[n] for n in names], np.add(lo, 1e-9), np.subtract(hi, 1e-9))
            r = optimize.least_squares(resid, theta0, bounds=(lo, hi))
            p = unpack(r.x)
            if p.get("floor", 0) >= p.get("ceiling", 1):
                continue
            if best is None or r.cost < best.cost:
                best = r
        return best

    best = solve([start]) if start is not None else None
    if best is None or not best.success or _at_bound(unpack(best.x), lo_mid, hi_mid, max_slope):
        best = solve(starts)
    if best is None or not best.success:
        raise FitError("sigmoid fit: no rising sigmoid fits these data (does accuracy grow with compute?)")
    p = unpack(best.x)
    tol = 1e-6
    if p["mid"] <= lo_mid + tol or p["mid"] >= hi_mid - tol:
        raise FitError(f"sigmoid fit: the midpoint ran to its bound ({p['mid']:.2f}); the data do not "
                       f"locate a sigmoid (too flat or too few decades)")
    if p["slope"] >= max_slope - tol:
        raise FitError("sigmoid fit: the slope ran to its bound; the data look like a step")
    full = {k: float(p[k]) for k in ("floor", "ceiling", "mid", "slope")}
    pred = forms.sigmoid(x, **full)
    u = (pred - full["floor"]) / (full["ceiling"] - full["floor"])
    if not np.any((u > 0.05) & (u < 0.95)):
        raise FitError("sigmoid fit: no point lies on the rise (all within 5% of floor or ceiling); the "
                       "slope is not identified (a step, or data on a plateau)")
    return FitResult("sigmoid", full, tuple(names), x.size, _r2(y, pred), _rmse(y, pred), (x.min(), x.max()))


def fit_power_law(x, y) -> FitResult:
    """``y = a * x**b`` by least squares on ``log y = log a + b log x`` (R^2 on that scale)."""
    x, y = _arrays(x, y, 2, "power-law fit")
    if np.any(x <= 0) or np.any(y <= 0):
        raise FitError("power-law fit: x and y must be positive (log space)")
    lx, ly = np.log(x), np.log(y)
    b, loga = np.polyfit(lx, ly, 1)
    pred_log = loga + b * lx
    params = {"a": float(np.exp(loga)), "b": float(b)}
    return FitResult("power_law", params, ("a", "b"), x.size, _r2(ly, pred_log),
                     _rmse(y, np.exp(pred_log)), (x.min(), x.max()))


def fit_coverage_brown(k, c) -> FitResult:
    """Brown et al. 2024: ``log c(k) = a * k**b``, least squares on log c (R^2 on that scale).

    Needs coverage in (0, 1] and, to place a curve, at least two points below 1.
    """
    k, c = _arrays(k, c, 2, "coverage fit")
    if np.any(k <= 0) or np.any(c <= 0) or np.any(c > 1):
        raise FitError("coverage fit: need k > 0 and coverage in (0, 1] (log c is -inf at 0)")
    inner = c < 1
    if inner.sum() < 2:
        raise FitError("coverage fit: fewer than two points below coverage 1")
    lc = np.log(c)
    slope, icpt = np.polyfit(np.log(k[inner]), np.log(-lc[inner]), 1)
    theta0 = [-np.exp(icpt), min(slope, -1e-3)]

    def resid(theta):
        return theta[0] * k ** theta[1] - lc

    r = optimize.least_squares(resid, theta0, bounds=([-np.inf, -20.0], [0.0, 0.0]))
    a, b = map(float, r.x)
    if not r.success or a >= 0 or b >= -1e-9 or b <= -20 + 1e-6:
        raise FitError(f"coverage fit: no decreasing power law fits log coverage (a={a:.3g}, b={b:.3g})")
    pred = a * k ** b
    return FitResult("coverage_brown", {"a": a, "b": b}, ("a", "b"), k.size, _r2(lc, pred),
                     _rmse(c, np.exp(pred)), (k.min(), k.max()))


def fit_neglog_pass(k, p) -> FitResult:
    """Schaeffer et al. 2025: ``-log pass@k = a * k**(-b)``, a line in log-log space:
    ``log(-log pass@k) = log a - b log k`` (R^2 on that scale). Needs pass@k strictly inside (0, 1)."""
    k, p = _arrays(k, p, 2, "-log pass@k fit")
    if np.any(k <= 0) or np.any(p <= 0) or np.any(p >= 1):
        raise FitError("-log pass@k fit: need k > 0 and pass@k strictly between 0 and 1")
    lk, ly = np.log(k), np.log(-np.log(p))
    slope, loga = np.polyfit(lk, ly, 1)
    pred = loga + slope * lk
    params = {"a": float(np.exp(loga)), "b": float(-slope)}
    return FitResult("neglog_pass", params, ("a", "b"), k.size, _r2(ly, pred),
                     _rmse(p, np.exp(-np.exp(pred))), (k.min(), k.max()))


FITTERS = {"sigmoid": fit_sigmoid, "power_law": fit_power_law,
           "coverage_brown": fit_coverage_brown, "neglog_pass": fit_neglog_pass}

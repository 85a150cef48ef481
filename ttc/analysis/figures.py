"""Figures: a run's fitted curves, the exchange with pretraining, the compute-optimal frontier.

Each ``plot_*`` returns a matplotlib Figure (nothing is shown or saved); ``save_figure`` writes PNG and
PDF. Conventions: log x-axis; data as points with their 95% bootstrap CI; fits solid over the data's
range and dashed where they extrapolate; fit bands are pointwise 95% over the bootstrap replicates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ttc.analysis.exchange import anchored_params
from ttc.analysis.fits import FitResult
from ttc.analysis.forms import sigmoid, sigmoid_inverse
from ttc.analysis.reference import FamilyCurve, pretraining_flops
from ttc.analysis.runs import overall

METRIC_STYLE = {"maj@k": dict(color="C0", label="maj@k"), "pass@k": dict(color="C1", label="pass@k"),
                "mean@k": dict(color="C7", label="mean@k")}
FAMILY_COLORS = ["C2", "C4", "C5", "C6", "C8", "C9"]


def _plt():
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:  # a script: no display; a notebook keeps its backend
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _draw_fit(ax, fit: FitResult, color: str, x_lo: float, x_hi: float, label: str | None = None,
              band: bool = True) -> None:
    """Fit solid inside its data range, dashed outside, with its bootstrap band if it has one."""
    lo, hi = fit.x_range
    xs = np.logspace(np.log10(min(x_lo, lo)), np.log10(max(x_hi, hi)), 200)
    inside = (xs >= lo) & (xs <= hi)
    y = fit.predict(xs)
    ax.plot(xs[inside], y[inside], "-", color=color, lw=1.5, label=label)
    for part in (xs < lo, xs > hi):
        if part.any():
            ax.plot(xs[part], y[part], "--", color=color, lw=1.2)
    if band and fit.draws is not None and len(fit.draws):
        b_lo, b_hi = fit.predict_band(xs)
        ax.fill_between(xs, b_lo, b_hi, color=color, alpha=0.12, lw=0)


def _points(ax, g: pd.DataFrame, x: str, color: str, label: str | None, marker: str = "o") -> None:
    yerr = np.vstack([g["value"] - g["ci_low"], g["ci_high"] - g["value"]])
    ax.errorbar(g[x], g["value"], yerr=np.clip(yerr, 0, None), fmt=marker, color=color, ms=4,
                capsize=2, lw=1, label=label)


def plot_run_fits(summary: pd.DataFrame, fits: dict, metrics=("maj@k", "pass@k"), ax=None,
                  extend: float = 10.0):
    """Accuracy against inference FLOPs per problem, each curve's sigmoid fit (dashed beyond the data)."""
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    s = overall(summary)
    s = s[s["metric"].isin(metrics)]
    several = s[["task", "model", "sampler"]].drop_duplicates().shape[0] > 1
    for i, (key, g) in enumerate(s.groupby(["task", "model", "sampler", "metric"], sort=True)):
        g = g.sort_values("budget")
        style = METRIC_STYLE.get(key[3], dict(color=None, label=key[3]))
        if several:  # one color per curve, the full name in the legend
            style = dict(color=f"C{i % 10}", label=f"{key[1]}/{key[2]} {key[3]}")
        _points(ax, g, "flops_per_problem", style["color"], f"{key[0]} {style['label']}")
        fit = fits.get((*key, "sigmoid"))
        if fit is not None:
            lo, hi = fit.x_range
            _draw_fit(ax, fit, style["color"], lo, hi * extend)
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("inference FLOPs per problem")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return fig if fig is not None else ax.figure


def plot_exchange(summary: pd.DataFrame, fits: dict, curves: list[FamilyCurve], n_params: float,
                  tokens: float, anchor_curve: FamilyCurve | None = None, metric: str = "maj@k",
                  queries: float = 1e9, title: str = ""):
    """Two panels. Left: the run's accuracy against inference FLOPs per problem, with fits. Right, on one
    log axis of total FLOPs: the family curves (accuracy against 6ND, points as published), the run at
    ``6 N D + queries x FLOPs/problem`` for each budget (circles), and where the anchored family curve
    puts the same accuracies (crosses: the effective pretraining compute)."""
    plt = _plt()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.3), layout="constrained")
    plot_run_fits(summary, fits, ax=ax0)
    ax0.set_title("test-time compute (this run)", fontsize=9)

    c0 = float(pretraining_flops(n_params, tokens))
    all_c = [c0]
    for i, cur in enumerate(curves):
        color = FAMILY_COLORS[i % len(FAMILY_COLORS)]
        r = cur.rows
        ax1.plot(r["compute"], r["accuracy"], "s", color=color, ms=5, label=cur.label)
        for _, row in r.iterrows():
            ax1.annotate(row["model"].replace(cur.family + "-", ""), (row["compute"], row["accuracy"]),
                         textcoords="offset points", xytext=(4, -8), fontsize=6, color=color)
        _draw_fit(ax1, cur.fit, color, c0 / 10, r["compute"].max() * 10, band=False)
        all_c += r["compute"].tolist()

    s = overall(summary)
    s = s[s["metric"] == metric].sort_values("budget")
    if anchor_curve is not None and not s.empty and int(s["budget"].iloc[0]) == 1:
        for key, g in s.groupby(["task", "model", "sampler"], sort=True):
            acc1 = float(g["value"].iloc[0])
            try:
                p = anchored_params(anchor_curve, acc1, c0)
            except ValueError:
                continue
            xs = np.logspace(np.log10(c0) - 1, np.log10(c0) + 3, 200)
            ax1.plot(xs, sigmoid(xs, **p), ":", color="C0", lw=1.2,
                     label=f"{anchor_curve.family} {anchor_curve.setting} shape through k=1")
            total = c0 + queries * g["flops_per_problem"].to_numpy(float)
            c_eff = sigmoid_inverse(g["value"].to_numpy(float), **p)
            ax1.plot(total, g["value"], "o", color="C0", ms=4,
                     label=f"{key[0]} {metric} at 6ND + {queries:.0e} queries x FLOPs/problem")
            ax1.plot(c_eff, g["value"], "x", color="C3", ms=6, label="effective pretraining compute")
            for t, ce, v, k in zip(total, c_eff, g["value"], g["budget"]):
                if np.isfinite(ce):
                    ax1.plot([t, ce], [v, v], "-", color="C3", lw=0.6, alpha=0.6)
                    ax1.annotate(f"k={int(k)}", (ce, v), textcoords="offset points", xytext=(5, -3), fontsize=6)
            all_c += [x for x in c_eff if np.isfinite(x)]
    ax1.axvline(c0, color="0.6", lw=0.8, ls="-.")
    ax1.set_xscale("log")
    ax1.set_xlim(min(all_c) / 3, max(all_c) * 3)
    ax1.set_ylim(-0.02, 1.02)
    ax1.set_xlabel("total FLOPs (pretraining 6ND, plus inference where shown)")
    ax1.set_ylabel("accuracy")
    ax1.grid(True, which="major", alpha=0.3)
    ax1.legend(fontsize=6, loc="upper left")
    ax1.set_title("against pretraining compute (different benchmarks: see caveats)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_frontier(points: pd.DataFrame, front: pd.DataFrame, metric: str = "maj@k", by_level: bool = True):
    """Every configuration (model x sampler x budget) and the frontier of best accuracy per FLOPs budget;
    one panel per difficulty level when the summaries have levels."""
    plt = _plt()
    levels = ["all"]
    if by_level and "level" in points.columns:
        levels = ["all"] + sorted(x for x in points["level"].astype(str).unique() if x != "all")
    fig, axes = plt.subplots(1, len(levels), figsize=(5.5 * len(levels), 4), layout="constrained", squeeze=False)
    for ax, level in zip(axes[0], levels):
        pts = points if "level" not in points.columns else points[points["level"].astype(str) == level]
        fr = front if "level" not in front.columns else front[front["level"].astype(str) == level]
        for i, (key, g) in enumerate(pts.groupby(["task", "model", "sampler"], sort=True)):
            g = g.sort_values("flops_per_problem")
            ax.plot(g["flops_per_problem"], g["value"], "o-", ms=3, lw=0.8, alpha=0.7,
                    color=f"C{i % 10}", label="/".join(key))
        for task, f in fr.groupby("task", sort=True):
            f = f.sort_values("flops_per_problem")
            ax.step(f["flops_per_problem"], f["value"], where="post", color="k", lw=1.5,
                    label=f"frontier ({task})")
            several = f[["model", "sampler"]].drop_duplicates().shape[0] > 1
            for _, r in f.iterrows():
                name = f"{r['model']}/{r['sampler']} " if several else ""
                ax.annotate(f"{name}k={int(r['budget'])}", (r["flops_per_problem"], r["value"]),
                            textcoords="offset points", xytext=(0, 6), fontsize=6, ha="center")
        ax.margins(x=0.08)
        ax.set_xscale("log")
        from matplotlib.ticker import NullFormatter

        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("inference FLOPs per problem")
        ax.set_ylabel(metric)
        ax.set_title(f"compute-optimal frontier ({metric}, level {level})", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, loc="upper left")
    return fig


def save_figure(fig, stem) -> list[Path]:
    """Write ``<stem>.png`` (200 dpi) and ``<stem>.pdf``; return the paths."""
    plt = _plt()
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=200)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths


def plot_policy(result, title: str = ""):
    """Accuracy against mean inference FLOPs per problem: each single strategy (thin, grey shades), the
    cross-fitted policies (thick) with 95% bands over problem resamples, the best single strategy marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    c = result.curves
    best = result.ratios["best_single"].iloc[0] if len(result.ratios) else None
    for i, (name, g) in enumerate(c[c["kind"] == "strategy"].groupby("curve", sort=True)):
        g = g.drop_duplicates("flops")
        ax.plot(g["flops"], g["accuracy"], "-" if name == best else ":", color="k" if name == best else "0.6",
                lw=2 if name == best else 1, label=f"{name} (best single)" if name == best else name)
    for i, (name, g) in enumerate(c[c["kind"] == "policy"].groupby("curve", sort=True)):
        color = FAMILY_COLORS[i % len(FAMILY_COLORS)]
        ax.plot(g["flops"], g["accuracy"], "-", color=color, lw=2, label=f"policy, {name}")
        ax.fill_between(g["flops"], g["ci_low"], g["ci_high"], color=color, alpha=0.12, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("mean inference FLOPs per problem")
    ax.set_ylabel("accuracy (cross-fitted)")
    ax.set_title(title or f"compute-optimal policy, {result.n_problems} problems, {result.n_bins} bins")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig

"""The run's figure: accuracy metrics against inference FLOPs per problem, log x-axis."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

METRIC_LABELS = {"pass@k": "pass@k (coverage)", "maj@k": "maj@k (majority vote)", "mean@k": "mean accuracy"}
_MATHTEXT = re.compile(r"\$\\mathdefault\{(.*)\}\$")
_POWER = re.compile(r"\^\{(-?\d+)\}")
_SUPERSCRIPT = str.maketrans("0123456789-", "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u207b")


def plain_log_label(label: str) -> str:
    """A log-axis label of matplotlib's (``$\\mathdefault{2\\times10^{10}}$``) as plain text with Unicode
    superscripts (2\u00d710\u00b9\u2070), which matplotlib draws without parsing mathtext."""
    m = _MATHTEXT.fullmatch(label)
    if m is None:
        return label
    return _POWER.sub(lambda p: p.group(1).translate(_SUPERSCRIPT), m.group(1).replace(r"\times", "\u00d7"))


def plain_log_x(ax) -> None:
    """A log x-axis labelled as matplotlib labels it, in plain text: its mathtext labels are parsed anew in
    every figure (on 2 cores a process's first curve.png took 0.25 s with them, 0.17 s without)."""
    from matplotlib.ticker import LogFormatterSciNotation

    class Plain(LogFormatterSciNotation):
        def __call__(self, x, pos=None):
            return plain_log_label(super().__call__(x, pos))

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(Plain(10))
    ax.xaxis.set_minor_formatter(Plain(10, labelOnlyBase=False))


def accuracy_figure(figsize: tuple[float, float]):
    """A figure (off-screen) and its one axes, with fixed margins: no layout solver."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.12, top=0.92)
    return fig, ax


def finish_accuracy_axes(ax, xlabel: str, title: str, legend_size: float, title_size: float) -> None:
    """Accuracy (0 to 1) against a log x-axis labelled in plain text, a grid, the legend and the title."""
    plain_log_x(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=legend_size, loc="best")
    if title:
        ax.set_title(title, fontsize=title_size)


def plot_curve(summary: pd.DataFrame, title: str = ""):
    """Return a matplotlib Figure: one line per (task, model, sampler, metric), 95% CI bands."""
    if "level" in summary.columns:  # the curve is the overall one; per-level rows are for analysis
        summary = summary[summary["level"].astype(str) == "all"]
    fig, ax = accuracy_figure((7, 4.5))
    # FLOPs unknown (an imported log without token counts or model shape): accuracy against samples per problem
    x = "flops_per_problem" if (pd.to_numeric(summary["flops_per_problem"], errors="coerce") > 0).any() else "budget"
    for key, g in summary.groupby(["task", "model", "sampler", "metric"], sort=True):
        task, model, sampler, metric = key
        g = g.sort_values(x)
        label = METRIC_LABELS.get(metric, metric)
        if summary[["task", "model", "sampler"]].drop_duplicates().shape[0] > 1:
            label = f"{task}/{model}/{sampler}: {label}"
        line, = ax.plot(g[x], g["value"], marker="o", label=label)
        ax.fill_between(g[x], g["ci_low"], g["ci_high"], color=line.get_color(), alpha=0.15)
        if metric == "pass@k":
            for _, r in g.iterrows():
                ax.annotate(f"k={int(r['budget'])}", (r[x], r["value"]),
                            textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    finish_accuracy_axes(ax, "inference FLOPs per problem" if x == "flops_per_problem" else
                         "samples per problem k (FLOPs unknown: no token counts or model config)", title, 8, 10)
    return fig


def save_curve(summary: pd.DataFrame, path: Path, title: str = "") -> None:
    import matplotlib.pyplot as plt

    fig = plot_curve(summary, title)
    fig.savefig(path, dpi=150, format="png")
    plt.close(fig)

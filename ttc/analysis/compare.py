"""Comparing runs on the problems they share: curves on one figure, paired differences per budget, and the
problems whose verdict differs.

A *series* is one (run, model, sampler) of the runs compared, named after its run directory (with
``:model/sampler`` when the run holds several). Problems are matched on ``(task, problem_id)``: a run written by
ttc and one imported from another harness (``ttc import``) compare wherever they share task names and problem
ids. Everything is computed over the problems that *every* series has (``shared``), so the figure and the table
describe the same problems; the count is stated, and runs that share no problem are refused.

- ``curves``: per series, task, metric and budget, the mean over the shared problems of each problem's value
  (``ttc.metrics.summary.per_problem``, stored in ``per_problem.parquet``), the mean FLOPs per problem, and the
  95% percentile bootstrap over the shared problems.
- ``differences``: each series against the first (the baseline): the mean over the shared problems of
  ``value - baseline value``, with a *paired* 95% percentile bootstrap (both values of a drawn problem move
  together, so the interval is that of the difference, not of two independent means).
- ``differing``: the shared problems whose verdict differs between the baseline and a series, with both voted
  answers. The verdict of a problem is the report's vote: right when every most frequent answer over all its
  samples is correct (``ttc.report.browse.problem_stats``); for one sample, whether that sample is correct.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ttc.analysis.runs import overall, run_per_problem
from ttc.errors import TTCError
from ttc.metrics.estimators import bootstrap_ci_runs
from ttc.metrics.tables import sizes_of, sort_by, starts_of

PROBLEM = ["task", "problem_id"]  # how problems are matched across runs
CELL = ["task", "metric", "budget"]  # one row of the difference table, one point of a curve


@dataclass
class Compared:
    """The per-problem values of the compared series over their shared problems."""

    values: pd.DataFrame  # series, task, problem_id, budget, metric, value, flops (shared problems only)
    series: list[str]  # in the order given; the first is the baseline
    problems: dict[str, int]  # each series' own number of problems
    shared: int  # problems every series has


def series_names(run_dirs: list) -> list[str]:
    """Each run's directory name, with its parent's name where two runs share a name."""
    names = [Path(d).resolve().name for d in run_dirs]
    if len(set(map(str, (Path(d).resolve() for d in run_dirs)))) != len(run_dirs):
        raise TTCError("a run is given twice; compare different runs")
    return [f"{Path(d).resolve().parent.name}/{n}" if names.count(n) > 1 else n for d, n in zip(run_dirs, names)]


def load_series(run_dirs: list) -> tuple[pd.DataFrame, list[str]]:
    """Per-problem values of every (run, model, sampler), with a ``series`` column, and the series in order."""
    if len(run_dirs) < 2:
        raise TTCError("compare needs at least two runs")
    parts, order = [], []
    for name, run_dir in zip(series_names(run_dirs), run_dirs):
        pp, _ = run_per_problem(run_dir)
        pp = overall(pp)[["task", "model", "sampler", "problem_id", "budget", "metric", "value", "flops"]]
        combos = pp[["model", "sampler"]].drop_duplicates().sort_values(["model", "sampler"])
        for model, sampler in combos.itertuples(index=False):
            label = name if len(combos) == 1 else f"{name}:{model}/{sampler}"
            part = pp[(pp["model"] == model) & (pp["sampler"] == sampler)]
            parts.append(part.drop(columns=["model", "sampler"]).assign(series=label))
            order.append(label)
    values = pd.concat(parts, ignore_index=True)
    values["problem_id"] = values["problem_id"].astype(str)
    values["budget"] = values["budget"].astype(int)
    return values, order


def compare_runs(run_dirs: list) -> Compared:
    """The runs' series over the problems they all share; ``TTCError`` when they share none."""
    values, order = load_series(run_dirs)
    keys = {s: set(map(tuple, g[PROBLEM].drop_duplicates().to_numpy().tolist()))
            for s, g in values.groupby("series", sort=False)}
    common = set.intersection(*(keys[s] for s in order))
    counts = {s: len(keys[s]) for s in order}
    if not common:
        def sample(s):
            return ", ".join(f"{t}:{p}" for t, p in sorted(keys[s])[:3])

        raise TTCError("the runs share no problem (problems are matched on (task, problem_id)): "
                       + "; ".join(f"{s} has {counts[s]}, e.g. {sample(s)}" for s in order))
    index = pd.MultiIndex.from_frame(values[PROBLEM])
    mask = index.isin(pd.MultiIndex.from_tuples(sorted(common), names=PROBLEM))
    return Compared(values[mask].reset_index(drop=True), order, counts, len(common))


def _means(df: pd.DataFrame, keys: list[str], columns: dict[str, str], n_boot: int, seed: int,
           ci_of: str) -> pd.DataFrame:
    """One row per group of ``keys`` (sorted): the mean of each ``columns`` source as its name, ``problems``,
    and the 95% bootstrap interval over problems of ``ci_of``'s mean."""
    df = sort_by(df, keys + ["problem_id"])
    starts = starts_of(df, keys)
    n = sizes_of(starts, len(df))
    out = pd.DataFrame({k: df[k].to_numpy()[starts] for k in keys})
    out["problems"] = n
    for name, source in columns.items():
        out[name] = np.add.reduceat(df[source].to_numpy(dtype=float), starts) / n
    out["ci_low"], out["ci_high"] = bootstrap_ci_runs(df[ci_of].to_numpy(dtype=float), starts, n_boot=n_boot,
                                                      seed=seed)
    return out


def curves(c: Compared, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per series, task, metric and budget: ``value`` (mean over the shared problems), ``flops_per_problem``,
    ``ci_low``/``ci_high`` (95% bootstrap over them) and ``problems``."""
    out = _means(c.values, ["series", *CELL], {"value": "value", "flops_per_problem": "flops"}, n_boot, seed,
                 "value")
    rank = {s: i for i, s in enumerate(c.series)}
    return out.sort_values(["series", *CELL], key=lambda col: col.map(rank) if col.name == "series" else col,
                           kind="stable").reset_index(drop=True)


def differences(c: Compared, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Each series against the baseline (the first), per task, metric and budget both have on the shared
    problems: their means, ``difference`` (series minus baseline) and its paired 95% bootstrap interval."""
    base_name = c.series[0]
    base = c.values[c.values["series"] == base_name]
    parts = []
    for name in c.series[1:]:
        other = c.values[c.values["series"] == name]
        paired = base.merge(other, on=[*PROBLEM, "metric", "budget"], suffixes=("_a", "_b"))
        if paired.empty:
            continue
        paired["difference"] = paired["value_b"] - paired["value_a"]
        t = _means(paired, CELL, {"baseline_value": "value_a", "value": "value_b", "difference": "difference"},
                   n_boot, seed, "difference")
        t.insert(0, "series", name)
        t.insert(0, "baseline", base_name)
        parts.append(t)
    columns = ["baseline", "series", *CELL, "problems", "baseline_value", "value", "difference", "ci_low", "ci_high"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def verdicts(run_dir) -> pd.DataFrame:
    """Per (task, model, sampler, problem) of a run: the vote's ``winner`` (a most frequent answer, marked when
    several tie), ``correct`` of ``n`` samples, the ``gold`` answer and the ``verdict`` (the vote is right)."""
    from ttc.report import browse

    light = browse.load_columns(run_dir, browse.LIGHT_COLUMNS)
    stats = browse.problem_stats(light)
    stats["problem_id"] = stats["problem_id"].astype(str)
    stats["verdict"] = stats["vote"] >= 1.0
    stats["winner"] = [("(none)" if w is None else str(w)) + (f" (tie of {t})" if t > 1 else "")
                       for w, t in zip(stats["winner"], stats["tied"])]
    return stats[["task", "model", "sampler", "problem_id", "gold", "n", "correct", "winner", "verdict"]]


def differing(run_dirs: list, c: Compared) -> pd.DataFrame:
    """The shared problems whose verdict differs between the baseline and each other series, with both answers
    (the voted ones) and their counts of correct samples."""
    names = series_names(run_dirs)
    per_series = {}
    for name, run_dir in zip(names, run_dirs):
        v = verdicts(run_dir)
        combos = v[["model", "sampler"]].drop_duplicates()
        for model, sampler in combos.itertuples(index=False):
            label = name if len(combos) == 1 else f"{name}:{model}/{sampler}"
            if label in c.series:
                per_series[label] = v[(v["model"] == model) & (v["sampler"] == sampler)].drop(
                    columns=["model", "sampler"])
    shared = c.values[PROBLEM].drop_duplicates()
    base_name = c.series[0]
    base = per_series[base_name].merge(shared, on=PROBLEM)
    columns = ["baseline", "series", "task", "problem_id", "gold", "baseline_answer", "baseline_correct",
               "answer", "correct", "baseline_verdict", "verdict"]
    parts = []
    for name in c.series[1:]:
        m = base.merge(per_series[name].merge(shared, on=PROBLEM), on=PROBLEM, suffixes=("_a", "_b"))
        m = m[m["verdict_a"] != m["verdict_b"]]
        parts.append(pd.DataFrame({
            "baseline": base_name, "series": name, "task": m["task"], "problem_id": m["problem_id"],
            "gold": m["gold_a"], "baseline_answer": m["winner_a"],
            "baseline_correct": [f"{c_}/{n}" for c_, n in zip(m["correct_a"], m["n_a"])],
            "answer": m["winner_b"], "correct": [f"{c_}/{n}" for c_, n in zip(m["correct_b"], m["n_b"])],
            "baseline_verdict": np.where(m["verdict_a"], "right", "wrong"),
            "verdict": np.where(m["verdict_b"], "right", "wrong")}))
    out = pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    from ttc.store.records import natural_key

    order = sorted(range(len(out)), key=lambda i: (c.series.index(out["series"].iat[i]), out["task"].iat[i],
                                                   natural_key(out["problem_id"].iat[i])))
    return out.iloc[order].reset_index(drop=True)


def plot_compare(table: pd.DataFrame, x: str = "flops", title: str = ""):
    """One figure of every series' curves (``curves``): accuracy against inference FLOPs per problem (log x,
    labelled as ``curve.png`` labels it) or against the budget k; one colour per series, one line style per
    metric, 95% bootstrap bands."""
    from ttc.report.curve import METRIC_LABELS, accuracy_figure, finish_accuracy_axes

    column = "flops_per_problem" if x == "flops" else "budget"
    styles, markers = ["-", "--", ":", "-."], ["o", "s", "^", "D"]
    metrics = list(dict.fromkeys(table["metric"]))
    series = list(dict.fromkeys(table["series"]))
    tasks = table["task"].unique()
    fig, ax = accuracy_figure((7.5, 4.8))
    for (s, task, metric), g in table.groupby(["series", "task", "metric"], sort=False):
        g = g.sort_values(column)
        label = f"{s}: {METRIC_LABELS.get(metric, metric)}" + (f" ({task})" if len(tasks) > 1 else "")
        color = f"C{series.index(s) % 10}"
        m = metrics.index(metric)
        ax.plot(g[column], g["value"], styles[m % len(styles)], marker=markers[m % len(markers)], ms=3.5,
                color=color, label=label)
        ax.fill_between(g[column], g["ci_low"], g["ci_high"], color=color, alpha=0.12, lw=0)
    finish_accuracy_axes(ax, "inference FLOPs per problem" if x == "flops" else "samples per problem (k)", title,
                         7.5, 9)
    return fig


def check_flops(table: pd.DataFrame) -> None:
    """``TTCError`` naming the series whose FLOPs are not positive (a run imported without a model config):
    such a curve has no place on a log FLOPs axis."""
    bad = sorted(set(table.loc[~(table["flops_per_problem"] > 0), "series"]))
    if bad:
        raise TTCError(f"{', '.join(bad)}: no FLOPs recorded (an import without --model-config?); draw against "
                       f"the budget with --x budget, or re-import with --model-config")

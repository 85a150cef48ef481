"""Accuracy of test-time strategies at equal inference FLOPs, from stored runs.

    python benchmarks/compare_strategies.py RUN_DIR [RUN_DIR ...] [--levels 1e9,2e9,4e9] [--common]

Reads each run's records (complete problems only), keeps with ``--common`` the problems that every run
finished (so all strategies are scored on the same items), summarizes them with each sampler's own
``evaluate``, and prints one row per (sampler, metric) curve: its measured points, then its accuracy at
each FLOPs level by linear interpolation in log-FLOPs between the two nearest measured budgets (blank
outside the measured range: no extrapolation).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from samplers import SAMPLERS
from ttc.metrics.summary import summarize
from ttc.store.runstore import load_run

CURVES = {  # the metric that is the strategy's answer (what a user of the strategy would get)
    "sample": "maj@k",
    "best_of_n": "best@k",
    "budget_forcing": "acc",
    "beam": "best@k",
    "dvts": "best@k",
}


def interpolate(flops: np.ndarray, acc: np.ndarray, level: float) -> float:
    """Accuracy at ``level`` FLOPs, linear in log-FLOPs between measured points; NaN outside them."""
    order = np.argsort(flops)
    x, y = np.log(flops[order]), acc[order]
    if not x[0] <= np.log(level) <= x[-1]:
        return float("nan")
    return float(np.interp(np.log(level), x, y))


def label(sampler: str, config: dict) -> str:
    """The strategy as a reader needs it named: the sampler plus the settings that change it."""
    st = config.get("strategy") or {}
    if sampler in ("best_of_n", "beam", "dvts"):
        sampler += f" ({st.get('verifier', 'self-logprob')})"
    if sampler == "budget_forcing" and st.get("num_wait"):
        sampler += f" (num_wait={st['num_wait']})"
    return sampler


def load(runs: list[str], common: bool):
    frames = [load_run(r) for r in runs]
    configs = [df.attrs["header"]["config"] for df in frames]
    if common:
        ids = set.intersection(*(set(df["problem_id"]) for df in frames))
        frames = [df[df["problem_id"].isin(ids)] for df in frames]
    return frames, configs


def table(runs: list[str], levels: list[float], common: bool = True) -> pd.DataFrame:
    frames, configs = load(runs, common)
    rows = []
    for df, cfg in zip(frames, configs):
        for sampler, g in df.groupby("sampler"):
            s = summarize(g, tuple(cfg["sweep"]["budgets"]), SAMPLERS)
            if "level" in s:
                s = s[s["level"].astype(str) == "all"]
            metric = CURVES.get(sampler)
            curve = s[s["metric"] == metric].sort_values("flops_per_problem")
            if curve.empty:
                continue
            f, a = curve["flops_per_problem"].to_numpy(), curve["value"].to_numpy()
            row = {"strategy": label(sampler, cfg), "metric": metric, "problems": int(curve["n_problems"].iloc[0]),
                   "points (budget: GFLOPs -> acc)": "; ".join(
                       f"{int(b)}: {x / 1e9:.2f} -> {y:.3f}" for b, x, y in zip(curve["budget"], f, a))}
            for level in levels:
                row[f"acc @ {level / 1e9:g} GFLOPs"] = interpolate(f, a, level)
            rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--levels", default="1e9,2e9,4e9,8e9", help="comma-separated FLOPs per problem")
    p.add_argument("--all-problems", action="store_true", help="do not restrict to the problems every run finished")
    args = p.parse_args(argv)
    t = table(args.runs, [float(x) for x in args.levels.split(",")], common=not args.all_problems)
    with pd.option_context("display.width", 250, "display.max_colwidth", 200):
        print(t.to_markdown(index=False, floatfmt=".3f") if _has_tabulate() else t.to_string(index=False))
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    sys.exit(main())

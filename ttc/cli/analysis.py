"""``ttc fit RUN_DIR...`` and ``ttc plot RUN_DIR...``: the analysis of stored runs (``ttc.analysis``).

``ttc fit`` prints, for each run, the fitted curve parameters with bootstrap CIs, the family curve it is
compared with, the exchange-rate table (effective pretraining compute, effective params, density), the
FLOPs-matched comparison, and the compute-optimal frontier across all runs. ``ttc plot`` draws the
exchange figure per run and the frontier figure, as PNG and PDF. Both read what the runs stored.
Exit codes: 0 done, 2 an error (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ttc.analysis.exchange import run_frontier
from ttc.analysis.reference import family_curves
from ttc.analysis.runs import RunAnalysis, analyze_run, run_per_problem
from ttc.errors import HelpFormatter, OneLineParser, TTCError


def _fmt(df: pd.DataFrame, cols: list[str]) -> str:
    cols = [c for c in cols if c in df.columns]
    return df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")


def _curve_columns(table: pd.DataFrame, cols: list[str] = ()) -> list[str]:
    """``cols`` after the columns that tell a run's curves apart (task, model, sampler where the table holds
    several of them), so that no two rows of a printed table look alike."""
    who = [c for c in ("task", "model", "sampler") if c in table.columns and table[c].nunique() > 1]
    return [c for c in who if c not in cols] + list(cols)


def _print_fit_table(table: pd.DataFrame) -> None:
    """The fitted parameters of a run, one row per parameter, unreliable CIs flagged and explained."""
    from ttc.analysis.bootstrap import RELIABILITY_NOTE

    ok = table[table["error"] == ""] if "error" in table.columns else table
    who = _curve_columns(table)
    print("fitted parameters (95% CI from resampling problems):")
    print(_fmt(ok, who + ["metric", "form", "x", "param", "value", "ci_low", "ci_high", "fixed", "n", "dof", "r2",
                          "rmse", "n_boot_failed", "flag"]))
    if "flag" in ok.columns and (ok["flag"].fillna("") != "").any():
        print(RELIABILITY_NOTE)
    for _, e in table[table["error"] != ""].iterrows():
        print(f"  not fitted: {' '.join(str(e[c]) for c in who + ['metric', 'form'])}: {e['error']}")


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description=description,
                                formatter_class=HelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories (each with header.json, records/, summary.csv)")
    p.add_argument("--metric", default="maj@k", help="metric for the exchange rate and the frontier")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap replicates (problems resampled)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
    p.add_argument("--family", default=None, help="reference family (default: the model's own)")
    p.add_argument("--benchmark", default="gsm8k", help="reference benchmark")
    p.add_argument("--setting", default=None, help="reference setting, e.g. instruct_5shot, base_5shot")
    p.add_argument("--tokens", type=float, default=None,
                   help="the model's pretraining tokens, if the reference table does not know it")
    p.add_argument("--reading", choices=("auto", "measured", "published"), default="auto",
                   help="pretraining curve: measured (the runs' own family members on the run's task), "
                        "published (reference scores of another benchmark), auto (measured when the runs "
                        "hold at least 3 models of one task)")
    p.add_argument("--pretrain-tokens", action="append", default=[], metavar="MODEL=D",
                   help="pretraining tokens of a model the family table does not know (repeatable)")
    p.add_argument("--family-table", default=None, help="a family table CSV instead of ttc/data/families.csv")
    return p


def _analyze_all(args) -> list[RunAnalysis]:
    if args.tokens is not None and not (np.isfinite(args.tokens) and args.tokens > 0):
        raise TTCError(f"--tokens must be a positive number of pretraining tokens (e.g. 2e12), got {args.tokens:g}")
    return [analyze_run(r, args.metric, args.n_boot, args.seed, args.family, args.benchmark, args.setting,
                        args.tokens) for r in args.runs]


def _policy_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("compute-optimal policy (Snell et al. 2024; see ttc.analysis.policy)")
    g.add_argument("--policy", action="store_true",
                   help="choose the best strategy per FLOPs budget and difficulty bin, cross-fitted over two "
                        "halves of the problems, against the best single strategy (all runs: one task, one model)")
    g.add_argument("--bins", type=int, default=5, help="quantile bins of difficulty")
    g.add_argument("--first", type=int, default=4,
                   help="samples whose mean self log-probability predicts a problem's difficulty")
    g.add_argument("--samplers", default=None,
                   help="comma-separated samplers whose strategies the policy may choose (default: all; the "
                        "policy uses the problems every chosen strategy scored)")
    g.add_argument("--task", default=None, help="the task, when the runs hold several")
    g.add_argument("--model", default=None, help="the model, when the runs hold several")
    g.add_argument("--out", default=None, help="where policy.png/.pdf go (default: <first run's parent>/analysis)")


def policy_main(args) -> int:
    from ttc.analysis.figures import plot_policy, save_figure
    from ttc.analysis.policy import policy_from_runs

    if args.bins < 1:
        raise TTCError(f"--bins must be a positive integer, got {args.bins}")
    r, cfg, diff = policy_from_runs(args.runs, n_bins=args.bins, n_boot=args.n_boot, seed=args.seed,
                                    first=args.first, model=args.model, task=args.task,
                                    samplers=tuple(args.samplers.split(",")) if args.samplers else None)
    pd.set_option("display.width", 200)
    print(f"compute-optimal policy: {r.n_problems} problems, {len(cfg.table)} configurations of "
          f"{len(cfg.strategies)} strategies, {r.n_bins} quantile bins, two-fold cross-fitting, "
          f"{args.n_boot} bootstrap replicates (problems resampled)")
    for note in r.notes:
        print(f"warning: {note}")
    if "predicted" in diff:
        rho = diff[["oracle", "predicted"]].corr(method="spearman").iloc[0, 1]
        print(f"predicted difficulty: mean self log-prob of the first {args.first} samples; Spearman with "
              f"oracle pass@1 {rho:.3f}; it costs {diff['predictor_flops'].mean():.4g} FLOPs per problem "
              f"(not charged to the policy)")
    print("\nFLOPs ratio (best single strategy's FLOPs / policy's FLOPs at the best single strategy's top "
          "accuracy; nan = the policy never reaches it):")
    print(_fmt(r.ratios, ["policy", "best_single", "target_accuracy", "flops_best_single", "flops_policy",
                          "flops_ratio", "ratio_low", "ratio_high", "reached_share", "gain_at_max", "gain_low",
                          "gain_high"]))
    print("\ncurves (accuracy at a FLOPs budget, cross-fitted; 95% CI):")
    c = r.curves
    grid = np.sort(c["budget_flops"].unique())
    show = grid[np.unique(np.linspace(0, len(grid) - 1, min(8, len(grid))).round().astype(int))]
    t = c[c["budget_flops"].isin(show)].pivot_table(index="budget_flops", columns="curve", values="accuracy")
    print(t.to_string(float_format=lambda v: f"{v:.3f}"))
    top = r.choices[r.choices["budget_flops"] == r.choices["budget_flops"].max()]
    print("\nchoices at the largest budget, fitted on all problems (bin 1 = hardest):")
    print(_fmt(top, ["policy", "bin", "n_problems", "sampler", "metric", "budget"]))
    out = Path(args.out) if args.out else Path(args.runs[0]).resolve().parent / "analysis"
    for w in save_figure(plot_policy(r), out / "policy"):
        print(w)
    return 0


def measured_main(args) -> bool:
    """Print the measured family reading if the runs make a family (see ``--reading``); True if printed."""
    from ttc.analysis.bootstrap import RELIABILITY_NOTE, reliability
    from ttc.analysis.family import family_members, load_families, measured_family, parse_pretrain_tokens

    pps, headers = [], {}
    for r in args.runs:
        pp, header = run_per_problem(r)
        pps.append(pp)
        for m, info in header.get("models", {}).items():
            headers.setdefault(m, info)
    pp = pd.concat(pps, ignore_index=True).drop_duplicates(["task", "model", "sampler", "problem_id", "budget",
                                                             "metric"])
    printed = False
    for task, g in pp.groupby("task", sort=True):
        models = sorted(g["model"].unique())
        if args.reading == "auto" and len(models) < 3:
            continue
        fam = load_families(args.family_table)
        members = family_members(headers, models, fam, parse_pretrain_tokens(args.pretrain_tokens))
        curve, ex, matched = measured_family(g, members, task, args.metric, n_boot=args.n_boot, seed=args.seed)
        f = curve.fit
        print(f"== measured family curve on {task} ({curve.setting}; like with like: the runs' own task, "
              f"prompt and grader)")
        flags = {k: reliability(*f.ci.get(k, (np.nan, np.nan)), f.n_boot, f.n_boot_failed) for k in f.free}
        print("accuracy = sigmoid(log10 6ND), floor 0 and ceiling 1 fixed: "
              + ", ".join(f"{k}={f.params[k]:.4g} [{f.ci.get(k, (np.nan,))[0]:.4g}, "
                          f"{f.ci.get(k, (np.nan, np.nan))[1]:.4g}]" + (f" ({flags[k]})" if flags[k] else "")
                          for k in f.free)
              + f"; {f.n} members, R^2={f.r2:.3f}; tokens ~ N^{curve.tokens_slope:.3f}; CIs resample problems "
                f"jointly across members ({f.n_boot} replicates, {f.n_boot_failed} failed)")
        if any(flags.values()):
            print(RELIABILITY_NOTE)
        print(_fmt(curve.rows, ["model", "params", "tokens", "compute", "accuracy", "source"]))
        print(f"\nexchange rate ({args.metric}) on the measured curve (C_eff anchored at each member's own k=1; "
              f"C_eff_raw read off the curve as fitted):")
        print(_fmt(ex, ["model", "budget", "accuracy", "C_eff", "C_eff_low", "C_eff_high", "multiplier", "N_eff",
                        "density", "density_low", "density_high", "C_eff_raw", "density_raw", "extrapolated"]))
        if not matched.empty:
            print("\nFLOPs-matched comparison (Snell et al. 2024) against the larger members' measured k=1 "
                  "accuracy, measured budgets only:")
            print(matched.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print()
        printed = True
    if args.reading == "measured" and not printed:
        raise TTCError("--reading measured needs runs holding at least 3 models of one task")
    return printed


def fit_main(argv: list[str] | None = None, prog: str = "ttc fit") -> int:
    p = _parser(prog, "Fit test-time compute curves and price them in pretraining compute.")
    _policy_args(p)
    args = p.parse_args(argv)
    try:
        if args.policy:
            return policy_main(args)
        pd.set_option("display.width", 200)
        measured = measured_main(args) if args.reading != "published" else False
        analyses = _analyze_all(args)
        for a in analyses:
            print(f"== {a.run_dir.name}")
            _print_fit_table(a.fit_table)
            if measured:  # the published reading is the fallback; the measured one is printed above
                print()
                continue
            for model, m in a.models.items():
                c = m["curve"]
                print(f"\n[{model}: N = {m['n_params']:.4g} parameters, D = {m['tokens']:.4g} pretraining tokens]")
                print(f"\npublished-score reading (another benchmark than the run's task; see docs/analysis.md): "
                      f"family curve {c.label}: accuracy = sigmoid(log10 6ND), "
                      + ", ".join(f"{k}={v:.4g}" for k, v in c.fit.params.items())
                      + f"; {c.fit.n} models, R^2={c.fit.r2:.3f}; tokens ~ N^{c.tokens_slope:.3f}")
                print(_fmt(c.rows, ["model", "params", "tokens", "compute", "score", "source"]))
            if not a.exchange.empty:
                print(f"\nexchange rate ({args.metric}; anchored at k=1, see docs/analysis.md):")
                print(_fmt(a.exchange, _curve_columns(a.exchange, ["model", "budget", "accuracy", "inference_flops", "C_eff", "multiplier",
                                        "N_eff", "density", "density_low", "density_high", "C_eff_raw",
                                        "density_raw", "extrapolated"])))
            if not a.matched.empty:
                print("\nFLOPs-matched comparison (Snell et al. 2024), measured budgets only:")
                print(a.matched.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
            for n in a.notes:
                print(f"note: {n}")
            print()
        pts, front = run_frontier([a.summary for a in analyses], args.metric)
        print(f"compute-optimal frontier ({args.metric}):")
        print(_fmt(front, ["task", "level", "model", "sampler", "budget", "flops_per_problem", "value"]))
    except TTCError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def plot_main(argv: list[str] | None = None, prog: str = "ttc plot") -> int:
    p = _parser(prog, "Draw the exchange figure of each run and the frontier figure "
                "(PNG and PDF).")
    p.add_argument("--out", default=None, help="output directory (default: <first run's parent>/analysis)")
    p.add_argument("--queries", type=float, default=1e9,
                   help="queries served, to place inference on the total-FLOPs axis")
    args = p.parse_args(argv)
    try:
        from ttc.analysis.figures import plot_exchange, plot_frontier, save_figure

        out = Path(args.out) if args.out else Path(args.runs[0]).resolve().parent / "analysis"
        analyses = _analyze_all(args)
        written = []
        for a in analyses:
            if not a.models:
                raise TTCError(f"{a.run_dir.name}: no family curve to compare with; pass --family, "
                               f"--setting and --tokens")
            for model, m in a.models.items():
                c = m["curve"]
                fam = [f for f in family_curves() if f.family == c.family and f.benchmark == c.benchmark]
                fig = plot_exchange(a.summary[a.summary["model"] == model], a.fits, fam, m["n_params"],
                                    m["tokens"], anchor_curve=c, metric=args.metric, queries=args.queries,
                                    title=f"{a.run_dir.name}: {model}")
                suffix = "" if len(a.models) == 1 else f"_{model}"
                written += save_figure(fig, out / f"exchange_{a.run_dir.name}{suffix}")
        pts, front = run_frontier([a.summary for a in analyses], args.metric)
        written += save_figure(plot_frontier(pts, front, args.metric), out / "frontier")
    except TTCError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for w in written:
        print(w)
    return 0

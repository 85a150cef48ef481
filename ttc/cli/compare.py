"""``ttc compare RUN_A RUN_B ...``: several runs on the problems they share (``ttc.analysis.compare``).

Draws every run's curves on one figure (accuracy against inference FLOPs per problem, log x), prints and writes
the table of each run's difference to RUN_A per task, metric and budget with a paired 95% bootstrap interval over
the shared problems, and with ``--samples`` the shared problems whose verdict (the majority vote is right) differs,
with both answers. Problems are matched on (task, problem_id), so runs imported from other harnesses compare with
ttc's own where they share task names and problem ids. Exit codes: 0 done, 2 an error (one line on stderr).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ttc.errors import HelpFormatter, OneLineParser, TTCError, cli_guard, debug_requested


def build_parser(prog: str = "ttc compare") -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description=__doc__.split("\n\n")[1].replace("\n", " "),
                                formatter_class=HelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="two or more run directories; the first is the baseline the others are compared with")
    p.add_argument("--metric", default=None,
                   help="comma-separated metrics to compare (pass@k, maj@k, mean@k, ...; default: every metric "
                        "the runs share)")
    p.add_argument("--x", choices=("flops", "budget"), default="flops",
                   help="x axis of the figure: inference FLOPs per problem, or the budget k")
    p.add_argument("--samples", action="store_true",
                   help="also list the shared problems whose verdict (the majority vote is right) differs, with "
                        "both runs' voted answers")
    p.add_argument("--rows", type=int, default=20, help="--samples: problems printed (all are in the CSV)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates of each interval")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--out", default=None, help="output directory (default: <first run's parent>/analysis)")
    p.add_argument("--name", default=None,
                   help="file name stem of the outputs (default: compare_<RUN_A>_vs_<RUN_B>[_and_N_more])")
    return p


def default_name(series: list[str]) -> str:
    stem = f"compare_{series[0]}_vs_{series[1]}" + (f"_and_{len(series) - 2}_more" if len(series) > 2 else "")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)[:160]


def _signed(v: float) -> str:
    return f"{v:+.3f}"


def format_differences(table) -> str:
    t = table.assign(difference=[f"{_signed(d)} [{_signed(lo)}, {_signed(hi)}]"
                                 for d, lo, hi in zip(table["difference"], table["ci_low"], table["ci_high"])])
    t = t.rename(columns={"baseline_value": "baseline", "baseline": "_b"}).drop(columns=["_b", "ci_low", "ci_high"])
    return t.to_string(index=False, float_format=lambda v: f"{v:.3f}")


def compare(args: argparse.Namespace) -> int:
    from ttc.analysis import compare as cmp
    from ttc.store.runstore import write_atomic

    if args.n_boot < 1 or args.rows < 0:
        raise TTCError("--n-boot must be >= 1 and --rows >= 0")
    c = cmp.compare_runs(args.runs)
    if args.metric:
        wanted = [m.strip() for m in args.metric.split(",") if m.strip()]
        unknown = [m for m in wanted if m not in set(c.values["metric"])]
        if unknown:
            raise TTCError(f"--metric {','.join(unknown)}: not in the runs; they hold "
                           f"{', '.join(sorted(set(c.values['metric'])))}")
        c.values = c.values[c.values["metric"].isin(wanted)].reset_index(drop=True)
    curves = cmp.curves(c, n_boot=args.n_boot, seed=args.seed)
    if args.x == "flops":
        cmp.check_flops(curves)
    table = cmp.differences(c, n_boot=args.n_boot, seed=args.seed)

    out = Path(args.out) if args.out else Path(args.runs[0]).resolve().parent / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or default_name(c.series)
    counts = ", ".join(f"{s} has {n}" for s, n in c.problems.items())
    print(f"{c.shared} problems shared by every run, matched on (task, problem_id) ({counts}); every number below "
          f"is over them")
    print(f"difference to {c.series[0]} (the run's mean minus the baseline's; paired 95% bootstrap interval over "
          f"the shared problems, {args.n_boot} replicates):")
    print(format_differences(table) if len(table) else "(no task, metric and budget in common)")

    import matplotlib.pyplot as plt

    fig = cmp.plot_compare(curves, args.x, title=f"{len(c.series)} runs on the {c.shared} problems they share")
    png = out / f"{name}.png"
    write_atomic(png, lambda tmp: fig.savefig(tmp, dpi=150, format="png"))
    plt.close(fig)
    csv = out / f"{name}.csv"
    write_atomic(csv, lambda tmp: table.to_csv(tmp, index=False))
    written = [png, csv]
    if args.samples:
        diff = cmp.differing(args.runs, c)
        path = out / f"{name}_differing.csv"
        write_atomic(path, lambda tmp: diff.to_csv(tmp, index=False))
        written.append(path)
        print(f"\nproblems whose verdict differs (the majority vote is right or not): {len(diff)} of {c.shared}"
              + (f"; the first {args.rows}" if len(diff) > args.rows else ""))
        if len(diff):
            print(diff.drop(columns=["baseline"]).head(args.rows).to_string(index=False))
    for path in written:
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None, prog: str = "ttc compare") -> int:
    args = build_parser(prog).parse_args(argv)
    return cli_guard(lambda: compare(args), debug=debug_requested(), sweep=False)


if __name__ == "__main__":
    sys.exit(main())

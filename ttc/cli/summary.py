"""``ttc summary RUN_DIR``: recompute a run's ``summary.csv``, ``problems.csv`` and ``curve.png``
from its stored records (after an upgrade of ttc, or with ``--budget`` to add budgets up to the samples
each problem has) and print the table. Exit codes: 0 done, 2 an error (one line on stderr)."""

from __future__ import annotations

import sys

from ttc.errors import OneLineParser, cli_guard, debug_requested


def main(argv: list[str] | None = None, prog: str = "ttc summary") -> int:
    p = OneLineParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", help="a run directory (runs/<run_id>)")
    p.add_argument("--budget", default=None,
                   help="comma-separated budgets k (default: the run's own); a budget above a problem's "
                        "sample count is left out for that problem")
    p.add_argument("--seed", type=int, default=None, help="bootstrap seed (default: the run's seed)")
    p.add_argument("--no-plot", action="store_true", help="leave curve.png as it is")
    args = p.parse_args(argv)

    def body() -> int:
        from samplers import SAMPLERS
        from ttc.cli.run import print_summary
        from ttc.metrics.summary import write_summary
        from ttc.sweep.config import parse_budgets

        budgets = parse_budgets(args.budget) if args.budget else None
        write_summary(args.run_dir, SAMPLERS, budgets=budgets, seed=args.seed, plot=not args.no_plot)
        print_summary(f"{args.run_dir}/summary.csv")
        return 0

    return cli_guard(body, debug=debug_requested(), sweep=False)


if __name__ == "__main__":
    sys.exit(main())

"""``ttc report RUN_DIR``: write ``RUN_DIR/report.html``, one self-contained page about a run.

The page (``ttc.report.html``) opens from disk with no server and no network: the run's config and provenance,
the summary table, the answers by extraction route, the curves, fits when the run directory holds them, and a
problem browser with search, sortable columns and a link to each problem (``report.html#problem=ID``).
Exit codes: 0 written, 2 an error (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys

from ttc.errors import HelpFormatter, OneLineParser, TTCError, cli_guard, debug_requested


def build_parser(prog: str = "ttc report") -> argparse.ArgumentParser:
    from ttc.report.html import MAX_TEXT_CHARS, MAX_TEXT_PROBLEMS, SAMPLES_PER_PROBLEM

    p = OneLineParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("run_dir", help="a run directory (header.json and records)")
    p.add_argument("--samples", type=int, default=SAMPLES_PER_PROBLEM, help="texts shown per problem")
    p.add_argument("--max-chars", type=int, default=MAX_TEXT_CHARS, help="each shown text is cut at this length")
    p.add_argument("--max-problems", type=int, default=MAX_TEXT_PROBLEMS,
                   help="problems per task/model/sampler whose texts are in the page")
    return p


def main(argv: list[str] | None = None, prog: str = "ttc report") -> int:
    args = build_parser(prog).parse_args(argv)

    def body() -> int:
        if args.samples < 0 or args.max_chars < 1 or args.max_problems < 0:
            raise TTCError("--samples and --max-problems must be >= 0, --max-chars >= 1")
        from ttc.report.html import write_report

        print(write_report(args.run_dir, args.samples, args.max_chars, args.max_problems))
        return 0

    return cli_guard(body, debug=debug_requested(), sweep=False)


if __name__ == "__main__":
    sys.exit(main())

"""``ttc show RUN_DIR [--problem ID] [--wrong]``: a run's problems in the terminal.

Without ``--problem``: one line per problem, in natural order of the problem ids (``p2`` before ``p10``), with
its correct samples, the vote's winner and whether it is right, and the counts a reader checks first (see
``--help``). With ``--problem``: that problem's gold answer, question, vote, and the first ``--samples``
samples with their extracted answers (flexible and strict), finish reasons, token counts and FLOPs. The same
view as the report page's browser (``ttc.report.show`` formats it). Exit codes: 0 done, 2 an error (one line on
stderr).
"""

from __future__ import annotations

import argparse
import sys

from ttc.errors import OneLineParser, TTCError, cli_guard, debug_requested

COLUMNS_HELP = """columns of the problem list:
  level       difficulty level of the problem, 1 (pass@1 >= 0.8) to 5 (pass@1 < 0.2)
  correct     correct samples / samples
  winner      the most frequent extracted answer (the vote's winner)
  vote        right, wrong, or tie (a tie among the most frequent answers, some of them right)
  unparsed    samples from which no answer could be extracted
  flex_only   samples graded correct only through the flexible extraction (the strict pattern found no
              answer or another one): a sign that the model ignores the answer format
  length      samples that stopped at the token limit (--max-tokens) instead of ending on their own
  gen_tokens  mean generated tokens per sample
  GFLOPs      the problem's inference FLOPs (prefill, every decode and verifier pass), in 1e9"""

def main(argv: list[str] | None = None, prog: str = "ttc show") -> int:
    p = OneLineParser(prog=prog, description=__doc__.split("\n\n")[0], epilog=COLUMNS_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a run directory (header.json and records)")
    p.add_argument("--problem", default=None, help="show this problem id (in every task/model/sampler that has it)")
    p.add_argument("--wrong", action="store_true", help="only problems whose vote is not right")
    p.add_argument("--samples", type=int, default=8, help="samples shown with --problem")
    p.add_argument("--max-chars", type=int, default=4000, help="each shown text is cut at this length")
    args = p.parse_args(argv)
    return cli_guard(lambda: _show(args), debug=debug_requested(), sweep=False)


def _show(args) -> int:
    import pandas as pd

    from ttc.report import browse
    from ttc.report.show import problem_list, problem_view
    from ttc.store.runstore import detach_header

    try:
        light = browse.load_columns(args.run_dir, browse.LIGHT_COLUMNS)
        header = detach_header(light)
        if light.empty:
            raise TTCError(f"{args.run_dir} holds no complete problems")
        light["problem_id"] = light["problem_id"].astype(str)
        stats = browse.problem_stats(light, browse.read_levels(args.run_dir, light))
        if args.wrong:
            stats = stats[stats["vote"] < 1]
        if args.problem is None:
            print(problem_list(stats) if len(stats) else "no problem matches")
            return 0
        sel = stats[stats["problem_id"] == args.problem]
        if sel.empty:
            raise TTCError(f"no problem {args.problem!r} in {args.run_dir}"
                           + (" whose vote is wrong" if args.wrong else ""))
        votes = browse.vote_counts(light[light["problem_id"] == args.problem])
        texts = browse.sample_texts(args.run_dir, args.samples, sel)
        out = []
        for _, row in sel.iterrows():
            key = tuple(row[k] for k in browse.KEYS)
            is_key = lambda d: (d[browse.KEYS] == pd.Series(key, index=browse.KEYS)).all(axis=1)  # noqa: E731
            out.append(problem_view(args.run_dir, row, votes[is_key(votes)], texts[is_key(texts)],
                                    light[is_key(light)], header, args.max_chars))
        print("\n\n".join(out))
    except BrokenPipeError:  # the reader (head, less) left
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

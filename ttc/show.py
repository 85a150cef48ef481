"""``python -m ttc.show RUN_DIR [--problem ID] [--wrong]``: a run's problems in the terminal.

Without ``--problem``: one line per problem (correct samples, the vote's winner and whether it is right,
unparsed and flexible-only counts, length stops, mean generated tokens, FLOPs, level). With ``--problem``:
that problem's gold answer, question, vote, and the first ``--samples`` samples with their extracted answers
(flexible and strict), finish reasons, token counts and FLOPs. The same view as the report page's browser.
Exit codes: 0 done, 2 an error (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from ttc import browse
from ttc.errors import TTCError, cli_guard, debug_requested
from ttc.store import detach_header


def problem_list(stats: pd.DataFrame) -> str:
    t = stats.assign(correct=[f"{c}/{n}" for c, n in zip(stats["correct"], stats["n"])],
                     vote=["right" if v == 1 else ("tie" if v > 0 else "wrong") for v in stats["vote"]],
                     GFLOPs=stats["flops"] / 1e9, gen_tokens=stats["generated_tokens"].round(1))
    cols = ["task", "model", "sampler", "problem_id", "level", "correct", "winner", "vote", "unparsed",
            "flex_only", "length", "gen_tokens", "GFLOPs"]
    return t[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")


def problem_view(run_dir, stats_row: pd.Series, votes: pd.DataFrame, texts: pd.DataFrame, light: pd.DataFrame,
                 header: dict, max_chars: int) -> str:
    r = stats_row
    lines = [f"== {r['problem_id']} ({r['task']} / {r['model']} / {r['sampler']})",
             f"gold: {r['gold']}",
             f"samples: {r['n']} ({r['correct']} correct, {r['unparsed']} unparsed, {r['flex_only']} right by the "
             f"flexible extraction only, {r['length']} stopped at the token limit); level {r['level']}",
             f"FLOPs of the problem: {r['flops'] / 1e9:.4g} GFLOPs; mean tokens: prompt {r['prompt_tokens']:.1f}, "
             f"generated {r['generated_tokens']:.1f}"]
    question = next((x["question"] for x in texts["extra"] if "question" in x), None)
    if question is None:
        rebuilt, note = browse.question_texts(header, [r["task"]])
        question = rebuilt.get((r["task"], str(r["problem_id"])))
        if question is None:
            lines.append(f"question: not available ({note})")
    if question is not None:
        lines += ["question:", _indent(question)]
    lines.append(f"vote over all {r['n']} samples:")
    for a, c, ok in zip(votes["answer"], votes["count"], votes["correct"]):
        won = "  <- winner" if c == votes["count"].max() else ""
        lines.append(f"  {c:6d}  {'right' if ok else 'wrong'}  {a[:200]}{won}")
    if r["unparsed"]:
        lines.append(f"  {r['unparsed']:6d}  (no answer: does not vote)")
    meta = light.set_index("sample_index")
    lines.append(f"samples shown: {len(texts)} of {r['n']}")
    for t in texts.itertuples(index=False):
        m = meta.loc[t.sample_index]
        flops = float(m["decode_flops"]) + float(m.get("verifier_flops", 0) or 0)
        if not bool(m["prefill_shared"]):
            flops += float(m["prefill_flops"])
        only = " [right by flexible only]" if bool(m["correct"]) and (
            m["answer_strict"] is None or pd.isna(m["answer_strict"]) or m["answer_strict"] != m["answer"]) else ""
        lines.append(f"--- #{t.sample_index} {'correct' if m['correct'] else 'wrong'}{only} | answer: {_ans(m['answer'])} | "
                     f"strict: {_ans(m['answer_strict'])} | finish: {m['finish_reason']} | tokens: {m['prompt_tokens']} "
                     f"prompt, {m['generated_tokens']} generated | {flops / 1e9:.4g} GFLOPs")
        text = t.text if isinstance(t.text, str) else ""
        if len(text) > max_chars:
            text = text[:max_chars] + f"\n[... cut at {max_chars} of {len(text)} characters]"
        lines.append(_indent(text))
    return "\n".join(lines)


def _ans(x) -> str:
    return "(none)" if x is None or (isinstance(x, float) and pd.isna(x)) else str(x)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in str(text).splitlines() or [""])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ttc.show", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--problem", default=None, help="show this problem id (in every task/model/sampler that has it)")
    p.add_argument("--wrong", action="store_true", help="only problems whose vote is not right")
    p.add_argument("--samples", type=int, default=8, help="samples shown with --problem")
    p.add_argument("--max-chars", type=int, default=4000, help="each shown text is cut at this length")
    args = p.parse_args(argv)
    return cli_guard(lambda: _show(args), debug=debug_requested(), sweep=False)


def _show(args) -> int:
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

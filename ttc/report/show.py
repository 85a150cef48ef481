"""A run's problems as terminal text (``ttc show``): a list with one line per problem, and one problem whole."""

from __future__ import annotations

import pandas as pd

from ttc.report import browse
from ttc.store.records import natural_key


def problem_list(stats: pd.DataFrame) -> str:
    """One line per problem, in the order of task, model, sampler and then the problem ids' natural order."""
    ids = stats["problem_id"].map(natural_key)
    stats = stats.assign(_id=ids).sort_values(["task", "model", "sampler", "_id"], kind="stable")
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

"""Which extraction route produced each graded answer: the strict pattern, the flexible fallback, or none.

A task's ``extract`` returns two answers per completion: ``answer_strict`` (the format the prompt asks for,
e.g. ``\\boxed{}`` or ``#### N``) and ``answer`` (what is graded: the strict answer when there is one, else a
fallback such as the last number). A model that never writes the asked-for format scores only through the
fallback; this table shows how much of a run's accuracy rests on it.

Routes of one record, from its ``answer`` and ``answer_strict`` columns:

* ``strict``: the graded answer is the strict one (both present and equal);
* ``flexible``: an answer was graded but the strict route found none (or found another);
* ``none``: no answer was extracted (the record votes for nothing and is graded wrong).
"""

from __future__ import annotations

import pandas as pd

ROUTES = ("strict", "flexible", "none")
KEYS = ["task", "model", "sampler"]
ROUTE_COLUMNS = KEYS + ["records", *ROUTES, "correct_strict", "correct_flexible"]


def record_routes(df: pd.DataFrame) -> pd.Series:
    """The route of each record: ``"strict"``, ``"flexible"`` or ``"none"``."""
    answer = df["answer"]
    strict = df["answer_strict"] if "answer_strict" in df.columns else pd.Series(None, index=df.index)
    has = answer.notna()
    same = has & strict.notna() & (answer.astype(str) == strict.astype(str))
    route = pd.Series("flexible", index=df.index, dtype=object)
    route[same] = "strict"
    route[~has] = "none"
    return route


def extraction_routes(df: pd.DataFrame) -> pd.DataFrame:
    """Per (task, model, sampler): number of records, the share of each route (``strict``, ``flexible``,
    ``none``; they add up to 1), and the share of records graded correct through each answering route
    (``correct_strict``, ``correct_flexible``; their sum is the mean accuracy of a single sample)."""
    if df.empty:
        return pd.DataFrame(columns=ROUTE_COLUMNS)
    route = record_routes(df)
    correct = df["correct"].astype(bool)
    t = pd.DataFrame({k: df[k].to_numpy() for k in KEYS})
    for r in ROUTES:
        t[r] = (route == r).to_numpy(dtype=float)
    t["correct_strict"] = ((route == "strict") & correct).to_numpy(dtype=float)
    t["correct_flexible"] = ((route == "flexible") & correct).to_numpy(dtype=float)
    g = t.groupby(KEYS, sort=True)
    out = g.mean()
    out.insert(0, "records", g.size())
    return out.reset_index()[ROUTE_COLUMNS]


def format_routes(table: pd.DataFrame) -> str:
    """The table as printed after the summary: shares as percentages."""
    if table.empty:
        return ""
    t = table.set_index(KEYS)
    shares = t.drop(columns="records").mul(100).round(1)
    shares.columns = [f"{c} %" for c in shares.columns]
    shares.insert(0, "records", t["records"])
    return "answers by extraction route (strict: the asked-for format; flexible: the fallback only)\n" + \
        shares.to_string()

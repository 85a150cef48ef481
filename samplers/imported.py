"""Records another harness generated (``ttc import``): evaluated, never generated.

An imported run keeps each of the harness's answer columns as its own sampler label ``imported:<name>`` (an
lm-eval filter, an inspect scorer), all evaluated by this strategy. Besides repeated sampling's estimators
(``pass@k``, ``maj@k``, ``mean@k``, see ``samplers.sample``) it reports the number a harness computes from the
samples in the order it logged them:

* ``vote@k``: a majority vote over the first k samples (sample indices 0..k-1) in log order, a tie going to the
  answer seen first, and a sample without an answer voting as one more answer (never correct). This is
  lm-eval's ``take_first`` filter at k=1, ``majority_vote`` (+ ``take_first``) at k=n, and ``take_first_k``
  + ``majority_vote`` at k; Python's ``Counter.most_common`` breaks the ties the same way. It is one draw,
  not an expectation: ``maj@k`` is the exact mean of that vote over every k-subset.

Cost of budget k is repeated sampling's (``ttc.metrics.tables.sampling_cost``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from samplers.sample import RepeatedSampling
from ttc.errors import TTCError
from ttc.metrics.tables import Problems, concat, sampling_cost, table


def ordered_votes(p: Problems, k: int) -> np.ndarray:
    """Per problem, 1.0 when the vote of its first k samples (ties to the answer seen first; no answer is an
    answer of its own) is correct, else 0.0; NaN where a problem has fewer than k samples."""
    df = p.df
    out = np.full(len(p.ids), np.nan)
    if not len(df):
        return out
    problem = np.repeat(np.arange(len(p.ids)), p.n)
    index = df["sample_index"].to_numpy()
    keep = (index < k) & (p.n[problem] >= k)
    if not keep.any():
        return out
    answers = df["answer"].to_numpy(dtype=object)[keep]
    code = pd.factorize(pd.Series([a if isinstance(a, str) else "\0no answer" for a in answers]))[0]
    classes = pd.DataFrame({"problem": problem[keep], "code": code, "index": index[keep],
                            "correct": df["correct"].astype(bool).to_numpy()[keep]})
    g = classes.groupby(["problem", "code"], sort=False).agg(count=("index", "size"), first=("index", "min"),
                                                            correct=("correct", "max")).reset_index()
    g = g.sort_values(["problem", "count", "first"], ascending=[True, False, True], kind="stable")
    winners = g.drop_duplicates("problem", keep="first")
    out[winners["problem"].to_numpy()] = winners["correct"].to_numpy(dtype=float)
    return out


class ImportedRecords:
    name = "imported"
    metrics = ("pass@k", "maj@k", "mean@k", "vote@k")
    columns = RepeatedSampling.columns
    configurable = False
    grades_while_generating = False
    generates = False  # its records come from `ttc import`; `ttc run` refuses it (samplers.get_sampler)

    def n_generations(self, budgets: tuple[int, ...]) -> int:
        return max(budgets)

    def run(self, ctx, task, problem, seed: int):
        raise TTCError("the 'imported' strategy evaluates records that `ttc import` brought in; it cannot generate")

    def evaluate(self, df: pd.DataFrame, budgets: tuple[int, ...], seed: int = 0) -> pd.DataFrame:
        base = RepeatedSampling(budgets).evaluate(df, budgets, seed=seed)
        p = Problems.of(df)
        out = []
        for k in budgets:
            flops, tokens = sampling_cost(p, k)
            out.append(table(p, k, "vote@k", ordered_votes(p, k), flops, tokens))
        return pd.concat([base, concat(out)], ignore_index=True)

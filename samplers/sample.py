"""Repeated sampling: n_max = max(budget) completions per problem, generated once.

Every smaller budget k is derived from the stored samples with exact estimators (``ttc.metrics.estimators``):

* ``pass@k``: some sample of k is correct (Chen et al. 2021 estimator); the coverage of Brown et al. 2024.
* ``maj@k``: a majority vote over k samples is correct (self-consistency; ties split, see ``ttc.metrics.estimators``).
* ``mean@k``: mean accuracy of single samples (the same at every k; the pass@1 baseline).

Cost of budget k for one problem: one shared prefill plus k times the mean decode cost of its samples.
"""

from __future__ import annotations

import pandas as pd

from samplers.base import ModelContext, Output
from ttc.metrics.tables import Problems, concat, pass_values, sampling_cost, table, vote_values


class RepeatedSampling:
    name = "sample"
    metrics = ("pass@k", "maj@k", "mean@k")
    columns = ("problem_id", "sample_index", "answer", "correct", "generated_tokens", "prefill_flops",
               "decode_flops", "prefill_shared")
    configurable = True
    grades_while_generating = False

    def __init__(self, budgets: tuple[int, ...] = (1, 2, 4, 8, 16)):
        self.budgets = tuple(budgets)

    def configure(self, config) -> "RepeatedSampling":
        return RepeatedSampling(config.sweep.budgets)

    def n_generations(self, budgets: tuple[int, ...]) -> int:
        return max(budgets)

    def run(self, ctx: ModelContext, task, problem, seed: int) -> list[Output]:
        """``max(budgets)`` samples of the prompt in one request: one shared prefill."""
        request = ctx.request(task.prompt(problem), n=self.n_generations(self.budgets), seed=seed)
        return [Output(c, ctx.cost(c)) for c in ctx.generate([request])[0]]

    def evaluate(self, df: pd.DataFrame, budgets: tuple[int, ...], seed: int = 0) -> pd.DataFrame:
        p = Problems.of(df)
        mean = p.n_correct() / p.n
        maj = vote_values(p, budgets)
        out = []
        for k in budgets:
            flops, tokens = sampling_cost(p, k)
            out += [table(p, k, "pass@k", pass_values(p, k), flops, tokens),
                    table(p, k, "maj@k", maj[k], flops, tokens),
                    table(p, k, "mean@k", mean, flops, tokens)]
        return concat(out)

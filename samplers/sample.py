"""Repeated sampling: n_max = max(budget) completions per problem, generated once.

Every smaller budget k is derived from the stored samples with unbiased estimators (``ttc.metrics``):

* ``pass@k``: some sample of k is correct (Chen et al. 2021 estimator); the coverage of Brown et al. 2024.
* ``maj@k``: a majority vote over k samples is correct (self-consistency; ties split, see ``ttc.metrics``).
* ``mean@k``: mean accuracy of single samples (the same at every k; the pass@1 baseline).

Cost of budget k for one problem: one shared prefill plus k times the mean decode cost of its samples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from samplers.base import ModelContext, Output
from ttc.metrics import majority_at_k, pass_at_k


def budget_cost(group: pd.DataFrame, k: int) -> tuple[float, float]:
    """(FLOPs, generated tokens) of spending budget k on the problem whose records are ``group``."""
    prefills = 1 if bool(group["prefill_shared"].iloc[0]) else k
    flops = prefills * float(group["prefill_flops"].iloc[0]) + k * float(group["decode_flops"].mean())
    return flops, k * float(group["generated_tokens"].mean())


class RepeatedSampling:
    name = "sample"
    metrics = ("pass@k", "maj@k", "mean@k")
    columns = ("problem_id", "correct", "answer", "prefill_flops", "prefill_shared", "decode_flops",
               "generated_tokens")
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

    def evaluate(self, group: pd.DataFrame, budgets: tuple[int, ...], seed: int = 0) -> list[dict]:
        n = len(group)
        correct = group["correct"].astype(bool).tolist()
        answers = [a if isinstance(a, str) else None for a in group["answer"]]
        c = int(np.sum(correct))
        rows = []
        for k in budgets:
            if k > n:
                continue
            flops, tokens = budget_cost(group, k)
            for metric, value in (("pass", pass_at_k(n, c, k)),
                                  ("maj", majority_at_k(answers, correct, k, seed=seed)),
                                  ("mean", c / n)):
                rows.append(dict(budget=k, metric=f"{metric}@k", value=value, flops=flops, tokens=tokens))
        return rows

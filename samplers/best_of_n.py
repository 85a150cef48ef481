"""Best-of-n with a verifier: n = max(budget) completions per problem, generated and scored once.

``budget`` is the number of samples k, as for ``sample``. Every k <= n is derived from the stored,
scored samples (``samplers.selection``):

* ``best@k``: the top-scored answer of a random k-subset is correct (expected over all k-subsets).
* ``wmaj@k``: weighted majority, each distinct answer collecting the sum of its samples' scores.
* ``maj@k`` and ``pass@k``: the plain vote and the coverage of the same samples, for reference.

The verifier is ``--verifier`` (``ttc.verifiers``); each record stores its score (``extra["score"]``,
step scores in ``extra["step_scores"]``) and what scoring it cost (``verifier_flops``). Cost of budget k:
one shared prefill plus k times the mean decode and the mean verifier cost of the problem's samples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from samplers.base import ModelContext, Output
from samplers.common import grade_text, record_answers
from samplers.sample import budget_cost
from samplers.selection import best_of_k, weighted_majority_at_k
from ttc.metrics import majority_at_k, pass_at_k
from ttc.verifiers import Candidate, make_verifier


def verifier_cost(group: pd.DataFrame) -> float:
    """Mean verifier FLOPs per sample of a problem (0 for records written before verifiers existed)."""
    if "verifier_flops" not in group:
        return 0.0
    return float(group["verifier_flops"].fillna(0.0).mean())


class BestOfN:
    name = "best_of_n"
    metrics = ("best@k", "wmaj@k", "maj@k", "pass@k")
    columns = ("problem_id", "correct", "answer", "extra", "prefill_flops", "prefill_shared", "decode_flops",
               "verifier_flops", "generated_tokens")
    configurable = True
    grades_while_generating = True

    def __init__(self, verifier: str = "self-logprob", strategy=None, budgets: tuple[int, ...] = (1, 2, 4, 8, 16)):
        self.verifier_spec = verifier
        self.strategy = strategy
        self.budgets = tuple(budgets)
        self._verifier = None

    def configure(self, config) -> "BestOfN":
        configured = BestOfN(config.strategy.verifier, config.strategy, config.sweep.budgets)
        configured.verifier  # an unknown verifier name fails here, before anything is generated
        return configured

    @property
    def verifier(self):
        if self._verifier is None:
            from ttc.config import StrategyConfig

            self._verifier = make_verifier(self.verifier_spec, self.strategy or StrategyConfig())
        return self._verifier

    def n_generations(self, budgets: tuple[int, ...]) -> int:
        return max(budgets)

    def run(self, ctx: ModelContext, task, problem, seed: int) -> list[Output]:
        """``max(budgets)`` samples in one request, each graded and scored by the verifier."""
        verifier = self.verifier
        prompt = task.prompt(problem)
        extra = {"logprobs": True} if verifier.wants_logprobs else {}
        comps = ctx.generate([ctx.request(prompt, n=self.n_generations(self.budgets), seed=seed, **extra)])[0]
        cands = [Candidate(c.text, c.logprobs, correct=grade_text(task, problem, c.text)) for c in comps]
        scores = ctx.verify(verifier, problem.question, prompt, cands)
        return [Output(c, ctx.cost(c, verifier=s.flops),
                       {"score": s.value, "step_scores": list(s.steps), "verifier": verifier.name,
                        "verifier_tokens": s.tokens})
                for c, s in zip(comps, scores)]

    def evaluate(self, group: pd.DataFrame, budgets: tuple[int, ...], seed: int = 0) -> list[dict]:
        n = len(group)
        correct = group["correct"].astype(bool).tolist()
        answers = record_answers(group)
        scores = [float(e["score"]) for e in group["extra"]]
        c = int(np.sum(correct))
        per_sample_verifier = verifier_cost(group)
        rows = []
        for k in budgets:
            if k > n:
                continue
            flops, tokens = budget_cost(group, k)
            flops += k * per_sample_verifier
            for metric, value in (("best", best_of_k(scores, correct, k)),
                                  ("wmaj", weighted_majority_at_k(answers, scores, correct, k, seed=seed)),
                                  ("maj", majority_at_k(answers, correct, k, seed=seed)),
                                  ("pass", pass_at_k(n, c, k))):
                rows.append(dict(budget=k, metric=f"{metric}@k", value=value, flops=flops, tokens=tokens))
        return rows

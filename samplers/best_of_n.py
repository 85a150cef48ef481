"""Best-of-n with a verifier: n = max(budget) completions per problem, generated and scored once.

``budget`` is the number of samples k, as for ``sample``. Every k <= n is derived from the stored,
scored samples (``ttc.metrics.estimators``, through ``ttc.metrics.tables``):

* ``best@k``: the top-scored answer of a random k-subset is correct (expected over all k-subsets).
* ``wmaj@k``: weighted majority, each distinct answer collecting the sum of its samples' scores.
* ``maj@k`` and ``pass@k``: the plain vote and the coverage of the same samples, for reference.

The verifier is ``--verifier`` (``samplers.verifiers``); each record stores its score (``extra["score"]``,
step scores in ``extra["step_scores"]``) and what scoring it cost (``verifier_flops``). Cost of budget k:
one shared prefill plus k times the mean decode and the mean verifier cost of the problem's samples.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from samplers.base import ModelContext, Output
from samplers.common import grade_text, record_answers
from samplers.verifiers import Candidate, make_verifier
from ttc.metrics.estimators import weighted_majority_with_se
from ttc.metrics.tables import Problems, best_values, concat, pass_values, sampling_cost, table, vote_values


def extra_field(df: pd.DataFrame, key: str) -> np.ndarray:
    """One field of the records' ``extra`` (stored as a dict or as its JSON text) as a float array."""
    return np.array([float((json.loads(e) if isinstance(e, str) else e)[key]) for e in df["extra"]])


class BestOfN:
    name = "best_of_n"
    metrics = ("best@k", "wmaj@k", "maj@k", "pass@k")
    columns = ("problem_id", "sample_index", "answer", "correct", "generated_tokens", "prefill_flops",
               "decode_flops", "prefill_shared", "verifier_flops", "extra")
    configurable = True
    grades_while_generating = True
    # the run settings (StrategyConfig fields) it reads: the verifier and, for a PRM, how it splits and aggregates
    strategy_fields = ("verifier", "prm_agg", "step_delimiter")

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
            from ttc.sweep.config import StrategyConfig

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

    def evaluate(self, df: pd.DataFrame, budgets: tuple[int, ...], seed: int = 0) -> pd.DataFrame:
        p = Problems.of(df)
        scores = extra_field(p.df, "score")
        verifier = p.means("verifier_flops") if "verifier_flops" in p.df else np.zeros(len(p.ids))
        maj = vote_values(p, budgets)
        wmaj = vote_values(p, budgets, weights=scores)
        answers, correct = record_answers(p.df), p.correct()
        out = []
        for k in budgets:
            flops, tokens = sampling_cost(p, k, np.nan_to_num(verifier))
            wse = np.zeros(len(p.ids))
            for i in np.flatnonzero(np.isnan(wmaj[k]) & (p.n >= k)):  # answers whose samples differ in score
                a, b = p.start[i], p.start[i] + p.n[i]
                wmaj[k][i], wse[i] = weighted_majority_with_se(answers[a:b], scores[a:b], correct[a:b], k,
                                                               seed=seed)
            out += [table(p, k, "best@k", best_values(p, scores, k), flops, tokens),
                    table(p, k, "wmaj@k", wmaj[k], flops, tokens, se=wse),
                    table(p, k, "maj@k", maj[k], flops, tokens),
                    table(p, k, "pass@k", pass_values(p, k), flops, tokens)]
        return concat(out)

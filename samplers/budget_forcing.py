"""Longer chains of thought under a token budget: s1's budget forcing (Muennighoff et al. 2025).

``budget`` is a cap on tokens of thought (``--think-budget``, not ``--budget``). Each of ``--chains``
chains per problem thinks until it ends its thinking on its own or reaches the cap; at the cap the
end-of-thinking delimiter (``--think-end``, e.g. ``</think>``; any number of tokens) and an answer prefix
(``--answer-prefix``) are appended and the answer is decoded greedily (``--answer-tokens``). With
``--num-wait k`` the end of thinking is suppressed up to k times by appending "Wait" instead. For a model
without thinking tags (empty ``--think-end``) the thinking is the chain of thought and its end is the end
of sequence: a chain that ends within the cap has answered; one that reaches it gets the answer prefix.

Generated once at the largest cap: a run capped at B is identical to the longest run up to its B-th
token of thought, so the chains grow cap by cap (each segment continues the assistant turn after the
text so far, a request ``prefix``, on any backend that continues a turn and honours multi-token stop
strings), and only the forced answers are decoded per cap. One record per chain and cap. Every round
of thinking decodes all unfinished chains in one batch, and so does every cap's answers.

Where the backend caps thinking natively (vLLM with ``thinking_token_budget`` and an engine
``reasoning_config``), a run with ``--think-end`` and no ``--num-wait`` hands each cap to the engine instead
(``run_native``; records carry ``extra["native_budget"]``); elsewhere the mechanism above is used.

Cost of a record at cap B is that of a stand-alone run capped at B with prefix caching: the prompt's
prefill (shared by the chains), the trunk over the thought tokens, the inserted tokens (delimiter, answer
prefix, "Wait"s) and the answer tokens, and the output head over the generated ones (thought + answer).

Metrics per cap B: ``acc`` (mean accuracy of single chains), ``control`` (share of runs whose thought
stayed within B; s1's control), ``natural`` (share that ended thinking on their own, not forced), and
at the largest cap ``scaling`` (s1's scaling: the mean slope of accuracy over all pairs of caps, per
1000 tokens of thought).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd

from samplers.base import ModelContext, Output
from samplers.common import ANSWER_SALT, sub_seed
from ttc.records import Completion
from ttc.tables import table_from_problems

WAIT = " Wait"


@dataclasses.dataclass
class Chain:
    text: str = ""
    think_tokens: int = 0
    inserted: int = 0  # tokens appended by the strategy inside the thinking ("Wait")
    waits: int = 0
    ended: bool = False  # ended its thinking on its own
    answer: tuple | None = None  # (answer text, answer tokens, inserted tokens) once ended


class BudgetForcing:
    name = "budget_forcing"
    metrics = ("acc", "control", "natural", "scaling")
    columns = ("problem_id", "sample_index", "correct", "generated_tokens", "prefill_flops", "decode_flops",
               "extra")
    configurable = True
    grades_while_generating = False

    def __init__(self, think_budgets=(32, 64, 128), think_end: str = "", answer_prefix: str = "\n\nFinal answer: ",
                 answer_tokens: int = 16, num_wait: int = 0, chains: int = 4):
        self.think_budgets = tuple(think_budgets)
        self.think_end, self.answer_prefix = think_end, answer_prefix
        self.answer_tokens, self.num_wait, self.chains = answer_tokens, num_wait, chains

    def configure(self, config) -> "BudgetForcing":
        s = config.strategy
        return BudgetForcing(s.think_budgets, s.think_end, s.answer_prefix, s.answer_tokens, s.num_wait, s.chains)

    def n_generations(self, budgets: tuple[int, ...]) -> int:
        """One record per chain and thought cap (``--think-budget``; the sweep's budgets are not read)."""
        return self.chains * len(self.think_budgets)

    def _think(self, ctx: ModelContext, prompt, seed: int, chains: list[Chain], cap: int, first: bool):
        """Grow every chain that is still thinking up to ``cap`` tokens of thought, all chains in one
        batch per round; return the prompt's token count when this call generated from the bare prompt."""
        stop = (self.think_end,) if self.think_end else ()
        rounds, prompt_tokens = 0, None
        while True:
            todo = [i for i, ch in enumerate(chains) if not ch.ended and ch.think_tokens < cap]
            if not todo:
                return prompt_tokens
            if first and rounds == 0:  # all chains start from the prompt: one shared prefill
                outs = ctx.generate([ctx.request(prompt, n=len(chains), seed=seed, max_tokens=cap, stop=stop)])[0]
                prompt_tokens = outs[0].prompt_tokens
            else:
                requests = [ctx.request(prompt, chains[i].text, seed=sub_seed(seed, i, cap, rounds),
                                        max_tokens=cap - chains[i].think_tokens, stop=stop) for i in todo]
                outs = [comps[0] for comps in ctx.generate(requests)]
            for i, c in zip(todo, outs):
                ch = chains[i]
                ch.text += c.text
                ch.think_tokens += c.generated_tokens
                if c.generated_tokens == 0:  # nothing more to say: never loop on an empty continuation
                    ch.ended = True
                elif c.finish_reason == "stop" and ch.think_tokens <= cap:
                    if ch.waits < self.num_wait and ch.think_tokens < cap:
                        ch.text += WAIT
                        ch.inserted += ctx.count_tokens(WAIT)
                        ch.waits += 1
                    else:
                        ch.ended = True
            rounds += 1

    def _answers(self, ctx: ModelContext, prompt, seed: int, todo: list[tuple[int, Chain, bool]], cap: int
                 ) -> list[tuple]:
        """For each (chain index, chain, forced): (appended text, answer tokens, inserted tokens) of the
        answer after its thinking, the greedy answers of all chains decoded in one batch."""
        out: list[tuple | None] = [None] * len(todo)
        requests, where, glues = [], [], []
        for k, (i, ch, forced) in enumerate(todo):
            if not forced and not self.think_end:  # no thinking tags: a chain that ended has answered
                out[k] = ("", 0, 0)
                continue
            glue = self.think_end + (self.answer_prefix if forced else "")
            requests.append(ctx.request(prompt, ch.text + glue, temperature=0.0, max_tokens=self.answer_tokens,
                                        stop=(), seed=sub_seed(seed, i, cap, ANSWER_SALT)))
            where.append(k)
            glues.append(glue)
        for k, glue, comps in zip(where, glues, ctx.generate(requests)):
            c = comps[0]
            out[k] = (glue + c.text, c.generated_tokens, ctx.count_tokens(glue))
        return out

    def run_native(self, ctx: ModelContext, prompt) -> list[Output]:
        """Each cap as its own generation with the engine's thinking budget (vLLM's ``thinking_token_budget``):
        the engine ends the thought at the cap by emitting the end-of-thinking delimiter itself and the model
        goes on to answer (sampled, with no answer prefix). Chains do not grow across caps here; every cap's
        chains are one request, all caps one batch."""
        end = ctx.count_tokens(self.think_end)
        requests = [ctx.request(prompt, n=self.chains, thinking_budget=cap,
                                max_tokens=cap + self.answer_tokens + end) for cap in self.think_budgets]
        out = []
        for cap, comps in zip(self.think_budgets, ctx.generate(requests)):
            for i, c in enumerate(comps):
                head, sep, _ = c.text.partition(self.think_end)
                think = ctx.count_tokens(head) if sep else c.generated_tokens
                out.append(Output(c, ctx.cost(c), {
                    "think_budget": cap, "chain": i, "think_tokens": think, "forced": (not sep) or think >= cap,
                    "waits": 0, "inserted_tokens": 0, "answer_tokens": c.generated_tokens - think,
                    "native_budget": True}))
        return out

    def run(self, ctx: ModelContext, task, problem, seed: int) -> list[Output]:
        """The chains grown cap by cap; at each cap every chain's record is what a run capped there gives,
        costed as that stand-alone run (``Cost.attribution == "counterfactual"``). Where the engine caps
        thinking natively, the caps go to it instead (``run_native``)."""
        prompt = task.prompt(problem)
        if ctx.native_thinking_budget and self.think_end and not self.num_wait:
            return self.run_native(ctx, prompt)
        chains = [Chain() for _ in range(self.chains)]
        prompt_tokens = None
        out = []
        for b, cap in enumerate(self.think_budgets):
            first = self._think(ctx, prompt, seed, chains, cap, first=(b == 0))
            prompt_tokens = first if prompt_tokens is None else prompt_tokens
            todo = [(i, ch, not ch.ended) for i, ch in enumerate(chains) if not ch.ended or ch.answer is None]
            answers = dict(zip([i for i, _, _ in todo], self._answers(ctx, prompt, seed, todo, cap)))
            for i, ch in enumerate(chains):
                forced = not ch.ended
                if ch.ended and ch.answer is None:
                    ch.answer = answers[i]
                tail, ans_tokens, ins = ch.answer if ch.ended else answers[i]
                generated = ch.think_tokens + ans_tokens
                inserted = ch.inserted + ins
                comp = Completion(ch.text + tail, prompt_tokens, generated, "stop")
                cost = ctx.cost(comp, decode=ctx.decode_flops(prompt_tokens, generated, inserted),
                                attribution="counterfactual")
                out.append(Output(comp, cost, {"think_budget": cap, "chain": i, "think_tokens": ch.think_tokens,
                                               "forced": forced, "waits": ch.waits, "inserted_tokens": inserted,
                                               "answer_tokens": ans_tokens}))
        return out

    def evaluate(self, df: pd.DataFrame, budgets: tuple[int, ...], seed: int = 0) -> pd.DataFrame:
        return table_from_problems(df, self.evaluate_problem, budgets, seed)

    def evaluate_problem(self, group: pd.DataFrame, budgets: tuple[int, ...], seed: int = 0) -> list[dict]:
        extra = list(group["extra"])
        caps = sorted({int(e["think_budget"]) for e in extra})
        prefill = float(group["prefill_flops"].iloc[0])
        rows, acc = [], {}
        for cap in caps:
            idx = [j for j, e in enumerate(extra) if int(e["think_budget"]) == cap]
            g = group.iloc[idx]
            think = np.array([extra[j]["think_tokens"] for j in idx], dtype=float)
            # one chain capped at B, run on its own: the prompt's prefill plus the chain's decode
            flops = prefill + float(g["decode_flops"].mean())
            tokens = float(g["generated_tokens"].mean())
            acc[cap] = float(g["correct"].astype(bool).mean())
            for metric, value in (("acc", acc[cap]), ("control", float(np.mean(think <= cap))),
                                  ("natural", float(np.mean([not extra[j]["forced"] for j in idx])))):
                rows.append(dict(budget=cap, metric=metric, value=value, flops=flops, tokens=tokens))
        if len(caps) > 1:
            top = [r for r in rows if r["budget"] == caps[-1]][0]
            rows.append(dict(budget=caps[-1], metric="scaling", value=scaling(caps, [acc[c] for c in caps]),
                             flops=top["flops"], tokens=top["tokens"]))
        return rows


def scaling(budgets, accuracies) -> float:
    """s1's scaling: mean over budget pairs a < b of (acc(b) - acc(a)) / (b - a), per 1000 tokens."""
    pairs = list(itertools.combinations(range(len(budgets)), 2))
    return float(np.mean([(accuracies[j] - accuracies[i]) / (budgets[j] - budgets[i]) * 1000 for i, j in pairs]))

"""Longer chains of thought under a token budget: s1's budget forcing (Muennighoff et al. 2025).

``budget`` is a cap on tokens of thought (``--think-budget``, not ``--budget``). Each of ``--chains``
chains per problem thinks until it ends its thinking on its own or reaches the cap; at the cap the
end-of-thinking delimiter (``--think-end``, e.g. ``</think>``; any number of tokens) and an answer prefix
(``--answer-prefix``) are appended and the answer is decoded greedily (``--answer-tokens``). With
``--num-wait k`` the end of thinking is suppressed up to k times by appending "Wait" instead. For a model
without thinking tags (empty ``--think-end``) the thinking is the chain of thought and its end is the end
of sequence: a chain that ends within the cap has answered; one that reaches it gets the answer prefix.

Generated once at the largest cap: a run capped at B is identical to the longest run up to its B-th
token of thought, so the chains grow cap by cap (each segment continues the rendered prompt plus the
text so far, so this works through any backend that continues a string prompt and honours multi-token
stop strings), and only the forced answers are decoded per cap. One record per chain and cap.

Where the backend caps thinking natively (vLLM with ``thinking_token_budget`` and an engine
``reasoning_config``), a run with ``--think-end`` and no ``--num-wait`` hands each cap to the engine instead
(``generate_native``; records carry ``extra["native_budget"]``); elsewhere the mechanism above is used.

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

from ttc.flops import lm_head_flops, trunk_flops
from ttc.records import Completion
from ttc.tables import per_problem

WAIT = " Wait"


def forced_decode_flops(spec, prompt_tokens: int, generated: int, inserted: int) -> float:
    """Decode cost of a sequence of ``generated`` sampled and ``inserted`` appended tokens after a
    prompt: the trunk over all of them at their contexts, the output head over the sampled ones only."""
    return trunk_flops(spec, generated + inserted, prompt_tokens) + lm_head_flops(spec, generated)


@dataclasses.dataclass
class Chain:
    text: str = ""
    think_tokens: int = 0
    inserted: int = 0  # tokens appended by the strategy inside the thinking ("Wait")
    waits: int = 0
    ended: bool = False  # ended its thinking on its own
    answer: tuple | None = None  # (answer text, answer tokens, inserted tokens) once ended


def sub_seed(seed: int, *parts: int) -> int:
    h = seed
    for p in parts:
        h = (h * 1_000_003 + p + 1) & 0x7FFFFFFF
    return h


class BudgetForcing:
    name = "budget_forcing"
    metrics = ("acc", "control", "natural", "scaling")
    columns = ("problem_id", "sample_index", "correct", "generated_tokens", "prefill_flops", "decode_flops",
               "extra")

    def __init__(self, think_budgets=(32, 64, 128), think_end: str = "", answer_prefix: str = "\n\nFinal answer: ",
                 answer_tokens: int = 16, num_wait: int = 0, chains: int = 4):
        self.think_budgets = tuple(think_budgets)
        self.think_end, self.answer_prefix = think_end, answer_prefix
        self.answer_tokens, self.num_wait, self.chains = answer_tokens, num_wait, chains

    def configure(self, config) -> "BudgetForcing":
        s = config.strategy
        return BudgetForcing(s.think_budgets, s.think_end, s.answer_prefix, s.answer_tokens, s.num_wait, s.chains)

    def n_samples(self, budgets: tuple[int, ...]) -> int:
        return self.chains * len(self.think_budgets)

    def _think(self, backend, base: str, prompt, params, chains: list[Chain], cap: int, first: bool):
        """Grow every chain that is still thinking up to ``cap`` tokens of thought; return the prompt's
        token count when this call generated from the bare prompt, else None."""
        stop = (self.think_end,) if self.think_end else ()
        rounds, prompt_tokens = 0, None
        while True:
            todo = [i for i, ch in enumerate(chains) if not ch.ended and ch.think_tokens < cap]
            if not todo:
                return prompt_tokens
            if first and rounds == 0:  # all chains start from the prompt: one shared prefill
                p = dataclasses.replace(params, max_tokens=cap, stop=stop)
                outs = backend.generate([prompt], p, len(chains))[0]
                prompt_tokens = outs[0].prompt_tokens
            else:
                outs = []
                for i in todo:
                    ch = chains[i]
                    p = dataclasses.replace(params, max_tokens=cap - ch.think_tokens, stop=stop,
                                            seed=sub_seed(params.seed, i, cap, rounds))
                    outs.append(backend.generate([base + ch.text], p, 1)[0][0])
            for i, c in zip(todo, outs):
                ch = chains[i]
                ch.text += c.text
                ch.think_tokens += c.generated_tokens
                if c.generated_tokens == 0:  # nothing more to say: never loop on an empty continuation
                    ch.ended = True
                elif c.finish_reason == "stop" and ch.think_tokens <= cap:
                    if ch.waits < self.num_wait and ch.think_tokens < cap:
                        ch.text += WAIT
                        ch.inserted += backend.count_tokens(WAIT)
                        ch.waits += 1
                    else:
                        ch.ended = True
            rounds += 1

    def _answer(self, backend, base: str, params, ch: Chain, forced: bool, cap: int, i: int) -> tuple:
        """(appended text, answer tokens, inserted tokens) of the answer after the thinking."""
        if not forced and not self.think_end:  # no thinking tags: a chain that ended has answered
            return "", 0, 0
        glue = self.think_end + (self.answer_prefix if forced else "")
        p = dataclasses.replace(params, temperature=0.0, max_tokens=self.answer_tokens, stop=(),
                                seed=sub_seed(params.seed, i, cap, 999))
        c = backend.generate([base + ch.text + glue], p, 1)[0][0]
        return glue + c.text, c.generated_tokens, backend.count_tokens(glue)

    def generate_native(self, backend, prompt, params, n_chains: int) -> list[tuple[Completion, dict]]:
        """Each cap as its own generation with the engine's thinking budget (vLLM's ``thinking_token_budget``):
        the engine ends the thought at the cap by emitting the end-of-thinking delimiter itself and the model
        goes on to answer (sampled, with no answer prefix). Chains do not grow across caps here."""
        spec = backend.info.spec
        out = []
        for cap in self.think_budgets:
            p = dataclasses.replace(params, thinking_budget=cap, max_tokens=cap + self.answer_tokens
                                    + backend.count_tokens(self.think_end))
            for i, c in enumerate(backend.generate([prompt], p, n_chains)[0]):
                head, sep, _ = c.text.partition(self.think_end)
                think = backend.count_tokens(head) if sep else c.generated_tokens
                out.append((c, {"think_budget": cap, "chain": i, "think_tokens": think,
                                "forced": (not sep) or think >= cap, "waits": 0, "inserted_tokens": 0,
                                "answer_tokens": c.generated_tokens - think, "native_budget": True,
                                "decode_flops": forced_decode_flops(spec, c.prompt_tokens, c.generated_tokens, 0)}))
        return out

    def generate(self, backend, prompt, params, n) -> list[tuple[Completion, dict]]:
        n_chains = max(1, n // len(self.think_budgets))
        if getattr(backend, "native_thinking_budget", False) and self.think_end and not self.num_wait:
            return self.generate_native(backend, prompt, params, n_chains)
        base = backend.render(prompt)
        spec = backend.info.spec
        chains = [Chain() for _ in range(n_chains)]
        prompt_tokens = None
        out = []
        for b, cap in enumerate(self.think_budgets):
            first = self._think(backend, base, prompt, params, chains, cap, first=(b == 0))
            prompt_tokens = first if prompt_tokens is None else prompt_tokens
            for i, ch in enumerate(chains):
                forced = not ch.ended
                if ch.ended and ch.answer is None:
                    ch.answer = self._answer(backend, base, params, ch, False, cap, i)
                tail, ans_tokens, ins = ch.answer if ch.ended else self._answer(backend, base, params, ch, True,
                                                                                cap, i)
                generated = ch.think_tokens + ans_tokens
                inserted = ch.inserted + ins
                comp = Completion(ch.text + tail, prompt_tokens, generated, "stop")
                out.append((comp, {"think_budget": cap, "chain": i, "think_tokens": ch.think_tokens,
                                   "forced": forced, "waits": ch.waits, "inserted_tokens": inserted,
                                   "answer_tokens": ans_tokens,
                                   "decode_flops": forced_decode_flops(spec, prompt_tokens, generated, inserted)}))
        return out

    def evaluate(self, df: pd.DataFrame, budgets: tuple[int, ...], seed: int = 0) -> pd.DataFrame:
        return per_problem(df, self.evaluate_problem, budgets, seed)

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

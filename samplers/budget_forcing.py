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
of thinking decodes all unfinished chains in one batch, and a cap's answers share the batch of the next
cap's first round of thought.

Where the backend caps thinking natively (vLLM with ``thinking_token_budget`` and an engine
``reasoning_config``), a run with ``--think-end`` and no ``--num-wait`` hands each cap to the engine instead
(``run_native``; records carry ``extra["native_budget"]``); elsewhere the mechanism above is used.

``--max-tokens`` bounds every record, as for the other strategies: a record at cap B generates up to B tokens of
thought and ``--answer-tokens`` of answer, so a cap above ``--max-tokens`` less ``--answer-tokens`` is refused
before the run starts (the inserted delimiter, answer prefix and "Wait"s are not generated and not counted). A
native request is also given at most ``--max-tokens``.

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
from ttc.backends.base import Request
from ttc.errors import TTCError
from ttc.metrics.tables import table_from_problems
from ttc.store.records import Completion

WAIT = " Wait"


@dataclasses.dataclass
class Chain:
    text: str = ""
    think_tokens: int = 0
    inserted: int = 0  # tokens appended by the strategy inside the thinking ("Wait")
    waits: int = 0
    ended: bool = False  # ended its thinking on its own
    answer: tuple | None = None  # (answer text, answer tokens, inserted tokens) once ended
    answer_asked: bool = False  # that answer is requested (decoded with the next round)


@dataclasses.dataclass
class Held:
    """The chains as they stood at a cap, the answer requests that finish their records, and for each
    request (chain index, the text appended before the answer)."""

    cap: int
    chains: list[Chain]
    requests: list[Request] = dataclasses.field(default_factory=list)
    asked: list[tuple[int, str]] = dataclasses.field(default_factory=list)


class BudgetForcing:
    name = "budget_forcing"
    metrics = ("acc", "control", "natural", "scaling")
    columns = ("problem_id", "sample_index", "correct", "generated_tokens", "prefill_flops", "decode_flops",
               "extra")
    configurable = True
    grades_while_generating = False
    # the run settings (StrategyConfig fields) it reads: without budget forcing in a sweep they change nothing
    strategy_fields = ("think_budgets", "think_end", "answer_prefix", "answer_tokens", "num_wait", "chains")

    def __init__(self, think_budgets=(32, 64, 128), think_end: str = "", answer_prefix: str = "\n\nFinal answer: ",
                 answer_tokens: int = 16, num_wait: int = 0, chains: int = 4):
        self.think_budgets = tuple(think_budgets)
        self.think_end, self.answer_prefix = think_end, answer_prefix
        self.answer_tokens, self.num_wait, self.chains = answer_tokens, num_wait, chains

    def configure(self, config) -> "BudgetForcing":
        s = config.strategy
        check_max_tokens(s.think_budgets, s.answer_tokens, config.sampling.max_tokens)
        return BudgetForcing(s.think_budgets, s.think_end, s.answer_prefix, s.answer_tokens, s.num_wait, s.chains)

    def n_generations(self, budgets: tuple[int, ...]) -> int:
        """One record per chain and thought cap (``--think-budget``; the sweep's budgets are not read)."""
        return self.chains * len(self.think_budgets)

    def _think(self, ctx: ModelContext, prompt, seed: int, chains: list[Chain], cap: int, first: bool,
               ride: list[Request] = ()) -> tuple[int | None, list]:
        """Grow every chain that is still thinking up to ``cap`` tokens of thought, all chains in one
        batch per round, the ``ride`` requests (the previous cap's answers) decoded in the first round's
        batch. Returns the prompt's token count when this call generated from the bare prompt (else None),
        and the ``ride`` requests' completions."""
        stop = (self.think_end,) if self.think_end else ()
        rounds, prompt_tokens, ridden = 0, None, []
        while True:
            todo = [i for i, ch in enumerate(chains) if not ch.ended and ch.think_tokens < cap]
            if not todo and (rounds or not ride):
                return prompt_tokens, ridden
            if first and rounds == 0:  # all chains start from the prompt: one shared prefill
                requests = [ctx.request(prompt, n=len(chains), seed=seed, max_tokens=cap, stop=stop)]
            else:
                requests = [ctx.request(prompt, chains[i].text, seed=sub_seed(seed, i, cap, rounds),
                                        max_tokens=cap - chains[i].think_tokens, stop=stop) for i in todo]
            extra = list(ride) if rounds == 0 else []
            results = ctx.generate(requests + extra)
            results, ridden = results[:len(requests)], ridden + results[len(requests):]
            if first and rounds == 0:
                outs = results[0]
                prompt_tokens = outs[0].prompt_tokens
            else:
                outs = [comps[0] for comps in results]
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

    def _hold(self, ctx: ModelContext, prompt, seed: int, chains: list[Chain], cap: int) -> "Held":
        """Every chain as it stands at ``cap``, and the answer requests that finish its records: a greedy
        answer after each forced chain (the end-of-thinking delimiter and the answer prefix appended), and
        after each chain that ended on its own and has no answer yet (the delimiter only; a model without
        thinking tags has already answered). The answers are decoded with the next cap's first round."""
        held = Held(cap, [dataclasses.replace(ch) for ch in chains])
        for i, ch in enumerate(chains):
            if ch.ended and (ch.answer is not None or ch.answer_asked):
                continue
            forced = not ch.ended
            if not forced and not self.think_end:  # no thinking tags: a chain that ended has answered
                ch.answer = ("", 0, 0)
                continue
            glue = self.think_end + (self.answer_prefix if forced else "")
            held.requests.append(ctx.request(prompt, ch.text + glue, temperature=0.0,
                                             max_tokens=self.answer_tokens, stop=(),
                                             seed=sub_seed(seed, i, cap, ANSWER_SALT)))
            held.asked.append((i, glue))
            ch.answer_asked = not forced
        return held

    def _records(self, ctx: ModelContext, held: "Held", answers: list, chains: list[Chain], prompt_tokens: int
                 ) -> list[Output]:
        """The records of every chain at ``held.cap``, once its answer requests have been decoded: each costed
        as a stand-alone run capped there (``Cost.attribution == "counterfactual"``)."""
        forced_answers = {}
        for (i, glue), comps in zip(held.asked, answers):
            c = comps[0]
            answer = (glue + c.text, c.generated_tokens, ctx.count_tokens(glue))
            if held.chains[i].ended:  # its thinking is over: the same answer at every larger cap
                chains[i].answer = answer
            else:
                forced_answers[i] = answer
        out = []
        for i, ch in enumerate(held.chains):
            tail, ans_tokens, ins = chains[i].answer if ch.ended else forced_answers[i]
            generated = ch.think_tokens + ans_tokens
            inserted = ch.inserted + ins
            comp = Completion(ch.text + tail, prompt_tokens, generated, "stop")
            cost = ctx.cost(comp, decode=ctx.decode_flops(prompt_tokens, generated, inserted),
                            attribution="counterfactual")
            out.append(Output(comp, cost, {"think_budget": held.cap, "chain": i, "think_tokens": ch.think_tokens,
                                           "forced": not ch.ended, "waits": ch.waits, "inserted_tokens": inserted,
                                           "answer_tokens": ans_tokens}))
        return out

    def run_native(self, ctx: ModelContext, prompt) -> list[Output]:
        """Each cap as its own generation with the engine's thinking budget (vLLM's ``thinking_token_budget``):
        the engine ends the thought at the cap by emitting the end-of-thinking delimiter itself and the model
        goes on to answer (sampled, with no answer prefix). Chains do not grow across caps here; every cap's
        chains are one request, all caps one batch."""
        end = ctx.count_tokens(self.think_end)
        limit = ctx.params.max_tokens  # the engine's delimiter is generated: it comes out of the answer's share
        requests = [ctx.request(prompt, n=self.chains, thinking_budget=cap,
                                max_tokens=min(cap + self.answer_tokens + end, limit)) for cap in self.think_budgets]
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
        costed as that stand-alone run (``Cost.attribution == "counterfactual"``). A cap's answers are
        decoded in one batch with the next cap's first round of thought. Where the engine caps thinking
        natively, the caps go to it instead (``run_native``)."""
        prompt = task.prompt(problem)
        if ctx.native_thinking_budget and self.think_end and not self.num_wait:
            return self.run_native(ctx, prompt)
        chains = [Chain() for _ in range(self.chains)]
        prompt_tokens, held, out = None, None, []
        for b, cap in enumerate(self.think_budgets):
            first, answers = self._think(ctx, prompt, seed, chains, cap, first=(b == 0),
                                         ride=held.requests if held else ())
            prompt_tokens = first if prompt_tokens is None else prompt_tokens
            if held is not None:
                out += self._records(ctx, held, answers, chains, prompt_tokens)
            held = self._hold(ctx, prompt, seed, chains, cap)
        out += self._records(ctx, held, ctx.generate(held.requests), chains, prompt_tokens)
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


def check_max_tokens(think_budgets, answer_tokens: int, max_tokens: int) -> None:
    """A record generates up to its cap of thought plus ``answer_tokens``: every cap must leave room for the
    answer within ``max_tokens``, which bounds every record; else a ``TTCError`` that says what fits."""
    over = [b for b in think_budgets if b + answer_tokens > max_tokens]
    if not over:
        return
    room = max_tokens - answer_tokens
    fix = f"give --think-budget values up to {room} or " if room >= 1 else ""
    raise TTCError(f"--think-budget {','.join(map(str, over))} with --answer-tokens {answer_tokens} exceeds "
                   f"--max-tokens {max_tokens}: a budget_forcing record generates up to its think budget plus "
                   f"its answer, and --max-tokens bounds every record; {fix}raise --max-tokens to "
                   f"{max(over) + answer_tokens}")


def scaling(budgets, accuracies) -> float:
    """s1's scaling: mean over budget pairs a < b of (acc(b) - acc(a)) / (b - a), per 1000 tokens."""
    pairs = list(itertools.combinations(range(len(budgets)), 2))
    return float(np.mean([(accuracies[j] - accuracies[i]) / (budgets[j] - budgets[i]) * 1000 for i, j in pairs]))

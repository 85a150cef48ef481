"""Verifier-guided search over solution steps: beam search and diverse verifier tree search (DVTS), as in
search-and-learn (Beeching, Tunstall and Rush 2024; Snell et al. 2024).

``budget`` is N, the number of beams: the number of step generations per search iteration, as in
search-and-learn's ``n``. A search cannot be cut down after the fact, so each budget is searched on its
own (all of a problem's budgets are written together). A step ends at ``--step-delimiter`` (default a
blank line); a path ends at the end of sequence, at ``--max-tokens`` generated tokens, or after
``--max-steps`` steps. Candidates are scored by ``--verifier`` (``samplers.verifiers``): a process reward
model, or a self-score of the generating model.

* ``beam``: N paths each sample a first step; at every iteration the N // M best unfinished paths
  (``--beam-width`` M) are kept and each is expanded by M sampled steps. With ``--lookahead L`` a
  candidate step is scored after L more greedy steps, which are then discarded. Stops when N paths have
  finished; the finished paths (or, if none, the unfinished ones) are the final answers.
* ``dvts``: N // M independent subtrees; each expands its one current path by M sampled steps and keeps
  the best, until it finishes. The subtrees' paths are the final answers.

Metrics at budget N over the final paths: ``best@k`` (the top-scored path is correct; ties averaged),
``wmaj@k`` (weighted majority of their answers by score), ``pass@k`` (some final path is correct).

Cost of budget N: the prompt's prefill once, then every generated step (kept, pruned or lookahead) at
its context, assuming the prefix cache of an engine such as vLLM (a path's earlier tokens are not read
again), and every verifier call. The search's total is split evenly over its final records
(``decode_flops`` and ``verifier_flops``), so the sum over a budget's records is the search's cost;
``extra["search_tokens"]`` is the search's total generated tokens.

Each iteration expands all its paths in one batch of requests (one per path, ``n`` = its expansions, its
own seed), and so does each step of the lookahead.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from samplers.base import ModelContext, Output
from samplers.common import LOOKAHEAD_SALT, grade_text, record_answers, sub_seed
from samplers.verifiers import Candidate, make_verifier
from ttc.metrics.estimators import best_of_k, weighted_majority_at_k
from ttc.metrics.tables import table_from_problems
from ttc.store.records import Completion


@dataclasses.dataclass
class Path:
    text: str = ""
    tokens: int = 0
    steps: tuple = ()  # per-step log-probabilities (for self-scores)
    done: bool = False
    score: float = 0.0
    finish: str = "length"

    def extend(self, c: Completion, delimiter: str, max_tokens: int, max_steps: int) -> "Path":
        at_delim = c.stop_reason == delimiter
        steps = self.steps + (tuple(c.logprobs or ()),)
        done = (not at_delim) or self.tokens + c.generated_tokens >= max_tokens or len(steps) >= max_steps
        text = self.text + c.text + (delimiter if at_delim else "")
        finish = c.finish_reason if not at_delim else ("stop" if not done else "length")
        return Path(text, self.tokens + c.generated_tokens, steps, done, 0.0, finish)


@dataclasses.dataclass
class SearchState:
    """One search: what it reads, and the prompt's token count once a step from the bare prompt gave it."""

    ctx: ModelContext
    prompt: object
    task: object
    problem: object
    seed: int
    prompt_tokens: int | None = None


class _Search:
    metrics = ("best@k", "wmaj@k", "pass@k")
    columns = ("problem_id", "sample_index", "answer", "correct", "generated_tokens", "prefill_flops",
               "decode_flops", "verifier_flops", "extra")
    configurable = True
    grades_while_generating = True
    # the run settings (StrategyConfig fields) it reads (beam also reads --lookahead)
    strategy_fields = ("verifier", "prm_agg", "step_delimiter", "beam_width", "max_steps")

    def __init__(self, verifier: str = "self-logprob", strategy=None, budgets: tuple[int, ...] = (1, 2, 4)):
        from ttc.sweep.config import StrategyConfig

        self.strategy = strategy or StrategyConfig()
        self.verifier_spec = verifier
        self.budgets = tuple(budgets)
        self._verifier = None

    def configure(self, config):
        configured = type(self)(config.strategy.verifier, config.strategy, config.sweep.budgets)
        configured.verifier  # an unknown verifier name fails here, before anything is generated
        return configured

    @property
    def verifier(self):
        if self._verifier is None:
            self._verifier = make_verifier(self.verifier_spec, self.strategy)
        return self._verifier

    def n_generations(self, budgets: tuple[int, ...]) -> int:
        return sum(self.n_final(b) for b in budgets)

    # -- shared machinery -------------------------------------------------------------------------------
    def _expand(self, st: SearchState, paths: list[Path], per_path: int, seed_keys: list[tuple],
                greedy: bool = False) -> list[list[Path]]:
        """``per_path`` one-step continuations of each path, all paths in one batch; path j samples with
        ``sub_seed(seed, *seed_keys[j])``. Each step's decode is priced at its context after the prompt
        and the path (an engine's prefix cache holds the path's earlier tokens)."""
        s, ctx = self.strategy, st.ctx
        max_tokens = ctx.params.max_tokens
        requests, contexts = [], []
        for path, key in zip(paths, seed_keys):
            extra = {"temperature": 0.0} if greedy else {}
            requests.append(ctx.request(st.prompt, path.text, per_path, seed=sub_seed(st.seed, *key),
                                        max_tokens=max(max_tokens - path.tokens, 1), stop=(s.step_delimiter,),
                                        logprobs=self.verifier.wants_logprobs, **extra))
            bare = not path.text
            contexts.append(None if bare or st.prompt_tokens is None else st.prompt_tokens + path.tokens)
        outs = ctx.generate(requests, contexts)
        if st.prompt_tokens is None:
            st.prompt_tokens = next((comps[0].prompt_tokens for path, comps in zip(paths, outs)
                                     if not path.text and comps), None)
        return [[path.extend(comp, s.step_delimiter, max_tokens, s.max_steps) for comp in comps]
                for path, comps in zip(paths, outs)]

    def _score(self, st: SearchState, paths: list[Path], seed_key: tuple) -> None:
        """Set each path's score (after a greedy lookahead if configured); the verifier's cost is metered."""
        scored = list(paths)
        for step in range(self.lookahead):  # every path's lookahead advances one greedy step per batch
            live = [j for j, p in enumerate(scored) if not p.done]
            if not live:
                break
            nxt = self._expand(st, [scored[j] for j in live], 1,
                               [seed_key + (j, step, LOOKAHEAD_SALT, 0) for j in live], greedy=True)
            for j, group in zip(live, nxt):
                scored[j] = group[0]
        lp = self.verifier.wants_logprobs
        cands = [Candidate(p.text, tuple(x for st_ in p.steps for x in st_) if lp else None,
                           p.steps if lp else None, grade_text(st.task, st.problem, p.text)) for p in scored]
        scores = st.ctx.verify(self.verifier, st.problem.question, st.prompt, cands)
        for path, sc in zip(paths, scores):
            path.score = sc.value

    def run(self, ctx: ModelContext, task, problem, seed: int) -> list[Output]:
        """Every budget searched on its own; the search's decode and verifier FLOPs split evenly over its
        final paths."""
        prompt = task.prompt(problem)
        out = []
        for budget in self.budgets:
            before = dataclasses.replace(ctx.spent)
            st = SearchState(ctx, prompt, task, problem, seed)
            final = self.search(st, budget)
            k = len(final)
            gen = ctx.spent.decode_flops - before.decode_flops
            ver = ctx.spent.verifier_flops - before.verifier_flops
            tokens = ctx.spent.generated_tokens - before.generated_tokens
            calls = ctx.spent.verifier_calls - before.verifier_calls
            for p in final:
                comp = Completion(p.text, st.prompt_tokens, p.tokens, p.finish)
                cost = ctx.cost(comp, decode=gen / k, verifier=ver / k, attribution="share")
                out.append(Output(comp, cost, {"budget": budget, "score": p.score, "verifier": self.verifier.name,
                                               "search_tokens": tokens, "verifier_calls": calls,
                                               "beam_width": self.width(budget), "lookahead": self.lookahead}))
        return out

    @property
    def lookahead(self) -> int:
        return self.strategy.lookahead if self.name == "beam" else 0

    def width(self, budget: int) -> int:
        return min(self.strategy.beam_width, budget)

    def evaluate(self, df: pd.DataFrame, budgets: tuple[int, ...], seed: int = 0) -> pd.DataFrame:
        return table_from_problems(df, self.evaluate_problem, budgets, seed)

    def evaluate_problem(self, group: pd.DataFrame, budgets: tuple[int, ...], seed: int = 0) -> list[dict]:
        rows = []
        extra = list(group["extra"])
        prefill = float(group["prefill_flops"].iloc[0])
        for budget in sorted({int(e["budget"]) for e in extra}):
            idx = [j for j, e in enumerate(extra) if int(e["budget"]) == budget]
            g = group.iloc[idx]
            correct = g["correct"].astype(bool).tolist()
            scores = [float(extra[j]["score"]) for j in idx]
            answers = record_answers(g)
            vflops = g["verifier_flops"].fillna(0.0).sum() if "verifier_flops" in g else 0.0
            flops = prefill + float(g["decode_flops"].sum()) + float(vflops)
            tokens = float(extra[idx[0]]["search_tokens"])
            k = len(idx)
            for metric, value in (("best", best_of_k(scores, correct, k)),
                                  ("wmaj", weighted_majority_at_k(answers, [max(s, 0.0) for s in scores], correct, k,
                                                                  seed=seed)),
                                  ("pass", float(any(correct)))):
                rows.append(dict(budget=budget, metric=f"{metric}@k", value=value, flops=flops, tokens=tokens))
        return rows


class BeamSearch(_Search):
    name = "beam"
    strategy_fields = _Search.strategy_fields + ("lookahead",)

    def n_final(self, budget: int) -> int:
        return budget

    def search(self, st: SearchState, budget: int) -> list[Path]:
        keep = max(1, budget // self.width(budget))
        active = [Path()]
        per_path = budget  # the first iteration samples N first steps from the prompt
        finished: list[Path] = []
        live: list[Path] = []
        for it in range(self.strategy.max_steps):
            groups = self._expand(st, active, per_path, [(it, j) for j in range(len(active))])
            cands = [p for group in groups for p in group]
            self._score(st, cands, (it,))
            finished += [p for p in cands if p.done]
            live = sorted([p for p in cands if not p.done], key=lambda p: -p.score)
            if len(finished) >= budget or not live:
                break
            active = live[:keep]
            per_path = self.width(budget)
        final = sorted(finished, key=lambda p: -p.score)[:budget]
        return final or live[:budget]


class DVTS(_Search):
    name = "dvts"

    def n_final(self, budget: int) -> int:
        return max(1, budget // self.width(budget))

    def search(self, st: SearchState, budget: int) -> list[Path]:
        m = self.width(budget)
        trees = [Path() for _ in range(self.n_final(budget))]
        for it in range(self.strategy.max_steps):
            live = [i for i, t in enumerate(trees) if not t.done]
            if not live:
                break
            groups = self._expand(st, [trees[i] for i in live], m, [(it, j) for j in range(len(live))])
            self._score(st, [p for g in groups for p in g], (it,))
            for i, g in zip(live, groups):
                trees[i] = max(g, key=lambda p: p.score)  # first of equals: deterministic
        return trees

"""Verifier-guided search over solution steps: beam search and diverse verifier tree search (DVTS), as in
search-and-learn (Beeching, Tunstall and Rush 2024; Snell et al. 2024).

``budget`` is N, the number of beams: the number of step generations per search iteration, as in
search-and-learn's ``n``. A search cannot be cut down after the fact, so each budget is searched on its
own (all of a problem's budgets are written together). A step ends at ``--step-delimiter`` (default a
blank line); a path ends at the end of sequence, at ``--max-tokens`` generated tokens, or after
``--max-steps`` steps. Candidates are scored by ``--verifier`` (``ttc.verifiers``): a process reward
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
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from samplers.best_of_n import grade_text, record_answers
from samplers.budget_forcing import sub_seed
from ttc.flops import decode_flops
from ttc.metrics import best_of_k, weighted_majority_at_k
from ttc.records import Completion
from ttc.tables import per_problem
from ttc.verifiers import Candidate, make_verifier


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


class _Search:
    needs_problem = True
    metrics = ("best@k", "wmaj@k", "pass@k")
    columns = ("problem_id", "sample_index", "answer", "correct", "generated_tokens", "prefill_flops",
               "decode_flops", "verifier_flops", "extra")

    def __init__(self, verifier: str = "self-logprob", strategy=None, budgets: tuple[int, ...] = (1, 2, 4)):
        from ttc.config import StrategyConfig

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

    def n_samples(self, budgets: tuple[int, ...]) -> int:
        return sum(self.n_final(b) for b in budgets)

    # -- shared machinery -------------------------------------------------------------------------------
    def _setup(self, backend, prompt, params, task, problem) -> dict:
        """The state of one search: what it reads, and what it has cost so far."""
        return dict(backend=backend, prompt=prompt, base=backend.render(prompt), task=task, problem=problem,
                    params=params, spec=backend.info.spec, prompt_tokens=None,
                    logprobs=bool(getattr(self.verifier, "wants_logprobs", False)),
                    gen=0.0, verifier=0.0, tokens=0, calls=0)

    def _expand(self, c: dict, paths: list[Path], per_path: int, seed_key: tuple,
                greedy: bool = False) -> list[list[Path]]:
        """``per_path`` one-step continuations of each path, costed."""
        s = self.strategy
        out = []
        for j, path in enumerate(paths):
            remaining = c["params"].max_tokens - path.tokens
            p = dataclasses.replace(c["params"], max_tokens=max(remaining, 1), stop=(s.step_delimiter,),
                                    logprobs=c["logprobs"], seed=sub_seed(c["params"].seed, *seed_key, j),
                                    temperature=0.0 if greedy else c["params"].temperature)
            prompt = c["prompt"] if not path.text else c["base"] + path.text
            comps = c["backend"].generate([prompt], p, per_path)[0]
            if c["prompt_tokens"] is None and not path.text:
                c["prompt_tokens"] = comps[0].prompt_tokens
            p0 = c["prompt_tokens"] if c["prompt_tokens"] is not None else comps[0].prompt_tokens
            for comp in comps:  # each step decoded at its context after the prompt and the path
                c["gen"] += decode_flops(c["spec"], p0 + path.tokens, comp.generated_tokens)
                c["tokens"] += comp.generated_tokens
            out.append([path.extend(comp, s.step_delimiter, c["params"].max_tokens, s.max_steps) for comp in comps])
        return out

    def _score(self, c: dict, paths: list[Path], seed_key: tuple) -> None:
        """Set each path's score (after a greedy lookahead if configured), counting the verifier's cost."""
        scored = paths
        if self.lookahead:
            scored = []
            for j, path in enumerate(paths):
                ahead = path
                for step in range(self.lookahead):
                    if ahead.done:
                        break
                    ahead = self._expand(c, [ahead], 1, seed_key + (j, step, 7), greedy=True)[0][0]
                scored.append(ahead)
        lp = c["logprobs"]
        cands = [Candidate(p.text, tuple(x for st in p.steps for x in st) if lp else None, p.steps if lp else None,
                           grade_text(c["task"], c["problem"], p.text)) for p in scored]
        scores = self.verifier.score(c["backend"], c["problem"].question, c["prompt"], cands)
        c["calls"] += len(cands)
        for path, sc in zip(paths, scores):
            path.score = sc.value
            c["verifier"] += sc.flops

    def generate(self, backend, prompt, params, n, task=None, problem=None) -> list[tuple[Completion, dict]]:
        if task is None or problem is None:
            raise ValueError(f"{self.name} needs the task and problem to score its steps")
        if n != self.n_samples(self.budgets):
            raise ValueError(f"{self.name} was configured for budgets {self.budgets}, asked for {n} samples")
        out = []
        for budget in self.budgets:
            c = self._setup(backend, prompt, params, task, problem)
            final = self.search(c, budget)
            k = len(final)
            for p in final:
                comp = Completion(p.text, c["prompt_tokens"], p.tokens, p.finish)
                out.append((comp, {"budget": budget, "score": p.score, "verifier": self.verifier.name,
                                   "search_tokens": c["tokens"], "verifier_calls": c["calls"],
                                   "decode_flops": c["gen"] / k, "verifier_flops": c["verifier"] / k,
                                   "beam_width": self.width(budget), "lookahead": self.lookahead}))
        return out

    @property
    def lookahead(self) -> int:
        return self.strategy.lookahead if self.name == "beam" else 0

    def width(self, budget: int) -> int:
        return min(self.strategy.beam_width, budget)

    def evaluate(self, df: pd.DataFrame, budgets: tuple[int, ...], seed: int = 0) -> pd.DataFrame:
        return per_problem(df, self.evaluate_problem, budgets, seed)

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

    def n_final(self, budget: int) -> int:
        return budget

    def search(self, c: dict, budget: int) -> list[Path]:
        keep = max(1, budget // self.width(budget))
        active = [Path()]
        per_path = budget  # the first iteration samples N first steps from the prompt
        finished: list[Path] = []
        live: list[Path] = []
        for it in range(self.strategy.max_steps):
            cands = [p for group in self._expand(c, active, per_path, (it,)) for p in group]
            self._score(c, cands, (it,))
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

    def search(self, c: dict, budget: int) -> list[Path]:
        m = self.width(budget)
        trees = [Path() for _ in range(self.n_final(budget))]
        for it in range(self.strategy.max_steps):
            live = [i for i, t in enumerate(trees) if not t.done]
            if not live:
                break
            groups = self._expand(c, [trees[i] for i in live], m, (it,))
            self._score(c, [p for g in groups for p in g], (it,))
            for i, g in zip(live, groups):
                trees[i] = max(g, key=lambda p: p.score)  # first of equals: deterministic
        return trees

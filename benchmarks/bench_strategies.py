"""Wall time of the search and budget-forcing strategies on the transformers backend.

Runs ``ttc.sweep.problem.solve_problem`` (generate, grade and cost one problem, as a sweep does) for each
strategy on the same problems and prints one row per strategy: seconds, generated tokens, tokens/s, and
a digest of the records' texts and FLOPs (equal digests: the same records). ``cpu s`` is the process's
CPU time (all threads), less sensitive than wall time to other work on a shared machine.

    python benchmarks/bench_strategies.py [--problems 3] [--model smollm2-135m] [--max-tokens 128] [--concurrency 8]

The problems run as a sweep runs them: on the transformers backend in lock-step groups of ``--concurrency``
problems whose model calls of a round share one batch (``ttc.sweep.rounds``); ``--concurrency 1`` runs one
problem at a time. Records in bfloat16 depend on what shares a batch, so digests differ between
concurrencies (not between runs of one).

Strategies measured:
  sample          repeated sampling, 8 samples per problem (one request: the reference, unchanged)
  beam            beam search, 4 kept beams each expanded by 4 (beam width M = 4, N = 16 paths per step)
  budget_forcing  4 chains, thought caps 32, 64 and 128 tokens
  budget_forcing_wait
                  the same with s1's "Wait" (--num-wait 2): a chain that ends its thought is told to go on,
                  twice, so chains keep thinking up to the caps and every round continues several chains
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import tempfile
import time

from samplers import configure_sampler, get_sampler
from tasks import get_task, load_problems
from ttc.backends import make_backend
from ttc.sweep.config import RunConfig, SamplingConfig, StrategyConfig, SweepConfig
from ttc.sweep.problem import solve_problem
from ttc.sweep.runner import in_groups, item_key

CASES = {
    "sample": dict(budgets=(8,), strategy=dict()),
    "beam": dict(budgets=(16,), strategy=dict(beam_width=4, max_steps=6)),
    "budget_forcing": dict(budgets=(1,), strategy=dict(chains=4, think_budgets=(32, 64, 128))),
    "budget_forcing_wait": dict(sampler="budget_forcing", budgets=(1,),
                                strategy=dict(chains=4, think_budgets=(32, 64, 128), num_wait=2)),
}


def digest(records) -> str:
    h = hashlib.sha256()
    for r in records:
        h.update(f"{r.text}|{r.generated_tokens}|{r.decode_flops:.6g}|{r.verifier_flops:.6g}".encode())
    return h.hexdigest()[:10]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=3)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="chain_sum")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--concurrency", type=int, default=None,
                    help="problems whose rounds share one batch, as in a sweep (default: the backend's)")
    ap.add_argument("--strategies", default="beam,budget_forcing", help=f"comma-separated: {', '.join(CASES)}")
    args = ap.parse_args()

    base = RunConfig(sampling=SamplingConfig(max_tokens=args.max_tokens))
    base = dataclasses.replace(base, backend=dataclasses.replace(base.backend, dtype=args.dtype,
                                                                 concurrency=args.concurrency))
    backend = make_backend("hf", args.model, base)
    task = get_task(args.task)
    problems = load_problems(task, args.problems, 0)
    rows = []
    for name in args.strategies.split(","):
        case = CASES[name]
        real = case.get("sampler", name)
        strategy = StrategyConfig(**case["strategy"])
        # budget forcing's requests set their own limits (a cap of thought, then the answer's tokens): its
        # records are the same at any --max-tokens that holds them, which a run requires
        max_tokens = max(args.max_tokens, max(strategy.think_budgets) + strategy.answer_tokens) \
            if real == "budget_forcing" else args.max_tokens
        config = dataclasses.replace(base, sweep=SweepConfig(tasks=(args.task,), models=(args.model,),
                                                             samplers=(real,), budgets=case["budgets"]),
                                     sampling=dataclasses.replace(base.sampling, max_tokens=max_tokens),
                                     strategy=strategy)
        sampler = configure_sampler(get_sampler(real), config)
        records, start, cpu = [], time.perf_counter(), time.process_time()
        with tempfile.TemporaryDirectory() as tmp:
            items = [(args.model, args.task, real, p) for p in problems]

            def solve(item, submit=None):
                return solve_problem(backend, task, real, sampler, item[3], args.model, config, tmp, submit)

            # as a sweep runs them: lock-step groups of --concurrency (groups of one: one at a time)
            stream = in_groups(items, set(map(item_key, items)), solve, backend, backend.concurrency)
            done = {item_key(item): recs for item, recs in stream}
            for item in items:  # in problem order, whatever order they finished in
                records += done[item_key(item)]
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        tokens = sum(r.generated_tokens for r in records)
        rows.append((name, len(problems), len(records), seconds, cpu, tokens, digest(records)))
    load = os.getloadavg()
    print(f"model {args.model} (hf, dtype {backend.info.identity.get('dtype')}), task {args.task}, "
          f"max_tokens {args.max_tokens}, concurrency {backend.concurrency}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'strategy':<16}{'problems':>9}{'records':>9}{'wall s':>9}{'cpu s':>9}{'tokens':>8}  digest")
    for name, n, recs, s, cpu, tok, d in rows:
        print(f"{name:<16}{n:>9}{recs:>9}{s:>9.1f}{cpu:>9.1f}{tok:>8}  {d}")


if __name__ == "__main__":
    main()

"""Runs for the report tests: a small sweep through ttc.sweep.runner on the scripted backend, and a large
synthetic run written with the store API (problems x samples records with varied answers and routes)."""

from __future__ import annotations

import random

from conftest import scripted

from ttc.backends.fake import FakeBackend
from ttc.store.records import SCHEMA_VERSION, SampleRecord
from ttc.store.runstore import RunStore
from ttc.sweep.config import RunConfig, SweepConfig
from ttc.sweep.runner import finish, run_sweep

REPLIES = {"": ["the sum is 8", "so it is \\boxed{12}", "I cannot say <b>x</b></script><!--", "\\boxed{7} and 9",
                "4 - 1 = 3 so \\boxed{3}", "it is 3"]}


def small_run(out):
    cfg = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), budgets=(1, 2, 4, 8), limit=6), out=str(out))
    return run_sweep(cfg, backend_factory=lambda m, c: FakeBackend(scripted(REPLIES)), progress=False)


def synthetic_run(out, problems: int = 200, samples: int = 256, seed: int = 0):
    """``problems`` x ``samples`` records; problem p's gold is str(p % 7); answers vary per problem."""
    budgets = tuple(sorted({1, 4, 16, samples}))
    cfg = RunConfig(sweep=SweepConfig(tasks=("custom:number",), models=("synthetic",), budgets=budgets,
                                      limit=problems), out=str(out))
    header = {"schema_version": SCHEMA_VERSION, "run_id": "synthetic", "config_hash": "synthetic",
              "config": cfg.to_dict(), "seed": seed, "models": {}}
    store = RunStore.open(out, "synthetic", header)
    shard = store.shard("custom:number", "synthetic", "sample")
    rng = random.Random(seed)
    for p in range(problems):
        gold = str(p % 7)
        skill = rng.random()
        recs = []
        for i in range(samples):
            r = rng.random()
            if r < 0.05:
                ans, strict = None, None
            elif r < 0.05 + 0.9 * skill:
                ans = gold
                strict = gold if rng.random() < 0.5 else None
            else:
                ans = str(rng.randint(0, 9))
                strict = ans if rng.random() < 0.5 else None
            text = f"sample {i} of problem {p}: " + ("work " * rng.randint(1, 40)) + (ans or "no idea")
            recs.append(SampleRecord(
                task="custom:number", model="synthetic", sampler="sample", problem_id=f"p{p:04d}", sample_index=i,
                n_samples=samples, text=text, answer=ans, answer_strict=strict, gold=gold, correct=ans == gold,
                prompt_tokens=20, generated_tokens=len(text.split()), finish_reason="length" if r > 0.97 else "stop",
                prefill_flops=1e6, decode_flops=2e5 * len(text.split()), prefill_shared=True, seed=seed))
        shard.append_problem(recs)
    finish(store, cfg)
    return store

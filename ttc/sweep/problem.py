"""One problem, generated, graded and costed: the unit of work that every executor of a sweep runs (the
runner's threads and lock-step groups, a cluster's replicas), and what the driver records about the model that
solved it.

Each problem's sampling seed depends only on the run seed, the task, the sampler and the problem
(``problem_seed``), so a resumed or redistributed sweep gives every problem the seed it would have had.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from samplers.base import Output
from ttc.backends.base import GenParams
from ttc.errors import TTCError
from ttc.store.records import SampleRecord
from ttc.store.runstore import RunStore
from ttc.sweep.config import RunConfig
from ttc.sweep.context import ModelContext

THINK_END = "</think>"  # what tokens of thought are counted by when --think-end is not given


def problem_seed(seed: int, task: str, sampler: str, problem_id: str) -> int:
    digest = hashlib.sha256(f"{seed}|{task}|{sampler}|{problem_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def thinking_tokens(backend, text: str, think_end: str = THINK_END) -> int | None:
    """Tokens of thought in a completion: the text before the end-of-thinking delimiter, counted with the
    backend's tokenizer; None when the text has no delimiter or the backend cannot count tokens."""
    count = getattr(backend, "count_tokens", None)
    if count is None or not think_end or think_end not in text:
        return None
    return int(count(text[: text.index(think_end)]))


def make_records(task, problem, sampler_name, model_name, shares_prefill: bool, seed: int,
                 outputs: list[Output], backend=None, think_end: str = THINK_END) -> list[SampleRecord]:
    """The stored records of one problem's outputs: each graded, with its cost and the strategy's fields
    (and its tokens of thought, counted with ``backend``'s tokenizer, where it thought)."""
    records = []
    for i, out in enumerate(outputs):
        c, cost = out.completion, out.cost
        flexible, strict = task.extract(c.text)
        extra = dict(out.fields)
        if c.logprobs is not None:
            extra.setdefault("mean_logprob", sum(c.logprobs) / max(len(c.logprobs), 1))
        thought = thinking_tokens(backend, c.text, think_end)
        if thought is not None:
            extra.setdefault("thinking_tokens", thought)
        records.append(SampleRecord(
            task=task.name, model=model_name, sampler=sampler_name, problem_id=problem.id, sample_index=i,
            n_samples=len(outputs), text=c.text, answer=flexible, answer_strict=strict, gold=problem.gold,
            correct=task.grade(flexible, problem), prompt_tokens=c.prompt_tokens,
            generated_tokens=c.generated_tokens, finish_reason=c.finish_reason,
            prefill_flops=float(cost.prefill_flops), decode_flops=float(cost.decode_flops),
            prefill_shared=shares_prefill, seed=seed, extra=extra, verifier_flops=float(cost.verifier_flops)))
    return records


def solve_problem(backend, task, sampler_name: str, sampler, problem, model: str, config: RunConfig,
                  run_dir: Path, submit=None) -> list[SampleRecord]:
    """Generate, grade and cost one problem: the unit of work every executor (threads, a cluster) runs.
    Its sampling seed depends only on the run seed, the task, the sampler and the problem. ``submit``
    stands in for the backend's ``generate_requests`` (lock-step rounds, ``in_groups``)."""
    samp = config.sampling
    seed = problem_seed(samp.seed, task.name, sampler_name, problem.id)
    ctx = ModelContext(backend, GenParams(temperature=samp.temperature, top_p=samp.top_p,
                                          max_tokens=samp.max_tokens, seed=seed), submit=submit)
    try:
        outputs = sampler.run(ctx, task, problem, seed)
    except TTCError:
        raise
    except Exception as e:
        raise TTCError(f"backend failed on {task.name} problem {problem.id} ({type(e).__name__}: {e}); "
                       f"finished problems are saved in {run_dir}, re-run to resume") from e
    return make_records(task, problem, sampler_name, model, ctx.shares_prefill, seed, outputs, backend=backend,
                        think_end=config.strategy.think_end or THINK_END)


def close_backend(backend) -> None:
    """Release a backend's engine or server (vllm, openai --serve); None is no backend yet."""
    if backend is not None:
        backend.close()


# What fixes the numbers a model computes: its weights (file hash, checkpoint fingerprint, hub revision) and
# the dtype it runs in. A resumed run must match on every one of them that both sides record.
SAME_WEIGHTS_KEYS = ("gguf_sha256", "fingerprint_sha256", "revision", "backend", "dtype")


def check_same_weights(before: dict | None, now: dict, model: str) -> None:
    """``TTCError`` if a run's stored records of ``model`` came from other weights or another dtype."""
    was = (before or {}).get("identity") or {}
    for key in SAME_WEIGHTS_KEYS:
        if key in was and key in now and was[key] != now[key]:
            # --dtype is part of the run id: naming another one starts a new run, it cannot resume this one
            where = "on hardware where --dtype auto gives that" if key == "dtype" else "with those weights"
            raise TTCError(f"this run's records of {model} were generated with {key}={was[key]}, this machine "
                           f"gives {key}={now[key]}: resume it {where}, or give another --out to start a new run")


def register_model(store: RunStore, model: str, info, resuming: bool) -> None:
    """Record where ``model``'s records come from; refuse to resume records of other weights."""
    if resuming:  # some of this model's records are stored
        check_same_weights(store.header().get("models", {}).get(model), info.identity, model)
    store.update_header(models={model: {"source": info.source, "identity": info.identity,
                                        "spec": dataclasses.asdict(info.spec)}})

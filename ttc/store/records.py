"""The two record types that flow through ttc: what a backend returns, and what a run stores."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

SCHEMA_VERSION = 2  # 1: JSONL shards under samples/ (still read); 2: Parquet files under records/


@dataclass(frozen=True)
class Completion:
    """One sampled continuation, as a backend returns it.

    ``prompt_tokens`` is the length of the prompt this completion continued; ``generated_tokens`` counts
    the tokens the model produced (including a final end-of-sequence token, which it did compute).
    ``finish_reason`` is ``"stop"`` (end of sequence or a stop string) or ``"length"`` (hit max_tokens).
    ``stop_reason`` is the stop string that ended it (vLLM's field of that name), None otherwise; the text
    ends before the stop string, whose tokens are counted in ``generated_tokens``.
    """

    text: str
    prompt_tokens: int
    generated_tokens: int
    finish_reason: str
    logprobs: tuple[float, ...] | None = None
    stop_reason: str | None = None


@dataclass(frozen=True)
class SampleRecord:
    """One completion of one problem, graded and costed: a line of a run's JSONL shard.

    ``prefill_flops`` is the cost of reading the prompt. When ``prefill_shared`` is true the prompt was
    prefilled once for all ``n_samples`` completions of the problem, so the problem pays it once; every
    record of the problem carries the same value. ``decode_flops`` is this completion's own cost.
    ``extra`` holds sampler-specific fields (verifier scores, thinking budgets, ...).
    ``verifier_flops`` is what scoring this completion with a verifier cost (0 when none scored it).
    """

    task: str
    model: str
    sampler: str
    problem_id: str
    sample_index: int
    n_samples: int
    text: str
    answer: str | None
    answer_strict: str | None
    gold: str
    correct: bool
    prompt_tokens: int
    generated_tokens: int
    finish_reason: str
    prefill_flops: float
    decode_flops: float
    prefill_shared: bool
    seed: int
    extra: dict = field(default_factory=dict)
    verifier_flops: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_NUMBERS = re.compile(r"(\d+)")


def natural_key(problem_id) -> tuple:
    """Sort key of a problem id that orders the numbers in it by value: ``p2`` before ``p10``, ``0-2``
    before ``0-10`` (ids are stored as text, whose plain order puts ``10`` before ``2``)."""
    return tuple(int(part) if part.isdigit() else part for part in _NUMBERS.split(str(problem_id)))

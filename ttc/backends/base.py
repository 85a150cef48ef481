"""The backend contract: one method, ``generate``, plus what FLOPs accounting and the run header need."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Union

from ttc.flops import ModelSpec
from ttc.records import Completion

Message = dict  # {"role": ..., "content": ...}
Prompt = Union[str, list[Message]]  # a raw string, or chat messages rendered with the model's template


@dataclass(frozen=True)
class GenParams:
    """Sampling parameters, named as in vLLM's ``SamplingParams``."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int = 0
    stop: tuple[str, ...] = ()
    logprobs: bool = False


@dataclass
class ModelInfo:
    """Identity and shape of the loaded model, written to the run header."""

    name: str
    source: str
    spec: ModelSpec
    identity: dict = field(default_factory=dict)


class Backend(Protocol):
    info: ModelInfo
    shares_prefill: bool  # True if the n samples of one prompt are decoded from one prefill

    def generate(self, prompts: list[Prompt], params: GenParams, n: int) -> list[list[Completion]]:
        """Return, for each prompt, ``n`` completions sampled with ``params``."""
        ...

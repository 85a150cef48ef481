"""The model as a strategy sees it: a backend and its model's shape behind one metered interface.

A strategy (``samplers/``) never touches a backend or computes FLOPs itself. It asks a ``ModelContext``
for completions (``generate``, a list of ``Request``s that the backend batches together), for text and
token counts (``render``, ``count_tokens``), for log-probabilities (``continuation_logprobs``) and for
verifier scores (``verify``), and the context prices each call from the model's ``ModelSpec`` with
``ttc.metrics.flops``: ``spent`` holds the decode and verifier FLOPs of every call so far, and ``cost`` /
``decode_flops`` turn token counts into a record's ``Cost``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ttc.backends.base import GenParams, Prompt, Request, generate_each
from ttc.metrics.flops import ModelSpec, lm_head_flops, prefill_flops, trunk_flops
from ttc.store.records import Completion


@dataclass(frozen=True)
class Cost:
    """What one output cost, in FLOPs (``ttc.metrics.flops`` conventions).

    ``attribution`` says what ``decode_flops`` is: ``"own"`` the completion's own decode, ``"share"`` an
    even share of a search's total (the sum over the search's outputs is what it spent), or
    ``"counterfactual"`` what a stand-alone run that ends with this output would cost (budget forcing: a
    run capped at B, though the chain was grown once for every cap)."""

    prefill_flops: float
    decode_flops: float
    verifier_flops: float = 0.0
    attribution: str = "own"

    def __post_init__(self):
        if self.attribution not in ("own", "share", "counterfactual"):
            raise ValueError(f"unknown cost attribution {self.attribution!r}")


@dataclass
class Spent:
    """Running totals of a context: FLOPs and tokens of every generate and verifier call."""

    decode_flops: float = 0.0
    verifier_flops: float = 0.0
    generated_tokens: int = 0
    verifier_calls: int = 0


class ModelContext:
    """One model for one problem's strategy run. ``params`` are the run's sampling settings, the defaults
    of ``request``. ``submit`` replaces the backend's ``generate_requests`` (``ttc.sweep.rounds.Submit``: the
    runner's rounds, which merge several problems' calls; on an engine, ``continuation_logprobs`` too)."""

    def __init__(self, backend, params: GenParams, submit=None):
        self._backend = backend
        self._submit = submit
        self.params = params
        self.spec: ModelSpec = backend.info.spec
        self.shares_prefill: bool = bool(backend.shares_prefill)
        # vLLM with a reasoning_config caps tokens of thought itself (budget forcing hands it the caps)
        self.native_thinking_budget: bool = bool(getattr(backend, "native_thinking_budget", False))
        self.spent = Spent()

    # -- generation -------------------------------------------------------------------------------------
    def request(self, prompt: Prompt, prefix: str = "", n: int = 1, **overrides) -> Request:
        """A request with the run's sampling settings, any of them overridden (``seed``, ``max_tokens``,
        ``temperature``, ``top_p``, ``stop``, ``logprobs``)."""
        if "stop" in overrides:
            overrides["stop"] = tuple(overrides["stop"])
        return Request(prompt, prefix, n, dataclasses.replace(self.params, **overrides))

    def generate(self, requests: list[Request], context_tokens: list[int | None] | None = None
                 ) -> list[list[Completion]]:
        """Each request's ``n`` completions, in one batch where the backend batches. Every completion's
        decode is added to ``spent``, priced at ``context_tokens[i]`` earlier tokens for request i when
        given (a continuation whose prefix an engine's prefix cache holds: the strategy's own count of
        prompt plus written tokens), else at the completion's prompt tokens."""
        if not requests:
            return []
        gen = self._submit or getattr(self._backend, "generate_requests", None)
        out = gen(requests) if gen is not None else generate_each(self._backend, requests)
        contexts = context_tokens or [None] * len(requests)
        for comps, ctx in zip(out, contexts):
            for c in comps:
                self.spent.decode_flops += self.decode_flops(c.prompt_tokens if ctx is None else ctx,
                                                             c.generated_tokens)
                self.spent.generated_tokens += c.generated_tokens
        return out

    # -- text -------------------------------------------------------------------------------------------
    def render(self, prompt: Prompt) -> str:
        """The text the model reads for ``prompt`` (chat template and assistant generation prefix)."""
        return self._backend.render(prompt)

    def count_tokens(self, text: str) -> int:
        return self._backend.count_tokens(text)

    def continuation_logprobs(self, prefix: str, continuations: list[str]) -> tuple[int, list[list[float]]]:
        routed = getattr(self._submit, "logprobs", None)  # on an engine, through the runner's rounds
        return (routed or self._backend.continuation_logprobs)(prefix, continuations)

    @property
    def info(self):
        """The backend's ``ModelInfo`` (verifiers read the model's shape from it)."""
        return self._backend.info

    # -- verifiers --------------------------------------------------------------------------------------
    def verify(self, verifier, question: str, prompt: Prompt, candidates: list) -> list:
        """``verifier.score`` on this model (self-scores read it through this context, so that their calls are
        merged like ``generate``'s), its FLOPs added to ``spent``."""
        scores = verifier.score(self, question, prompt, candidates)
        self.spent.verifier_flops += sum(s.flops for s in scores)
        self.spent.verifier_calls += len(candidates)
        return scores

    # -- pricing ----------------------------------------------------------------------------------------
    def decode_flops(self, context: int, generated: int, inserted: int = 0) -> float:
        """``generated`` sampled and ``inserted`` appended tokens after ``context`` earlier ones: the trunk
        over all of them at their contexts, the output head over the sampled ones only."""
        return trunk_flops(self.spec, generated + inserted, context) + lm_head_flops(self.spec, generated)

    def prefill_flops(self, prompt_tokens: int) -> float:
        return prefill_flops(self.spec, prompt_tokens)

    def cost(self, c: Completion, decode: float | None = None, verifier: float = 0.0,
             attribution: str = "own") -> Cost:
        """A completion's cost: its prompt's prefill, ``decode`` (default: its own plain decode) and
        ``verifier`` FLOPs."""
        if decode is None:
            decode = self.decode_flops(c.prompt_tokens, c.generated_tokens)
        return Cost(self.prefill_flops(c.prompt_tokens), float(decode), float(verifier), attribution)

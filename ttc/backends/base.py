"""The backend contract: one method, ``generate``, plus what FLOPs accounting and the run header need."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, Union

from ttc.metrics.flops import ModelSpec
from ttc.store.records import Completion

Message = dict  # {"role": ..., "content": ...}
Prompt = Union[str, list[Message]]  # a raw string, or chat messages rendered with the model's template


def render_prompt(tokenizer, prompt: Prompt, template_kwargs: dict | None = None,
                  generation_prompt: bool = True) -> str:
    """The text a model reads: chat messages through the tokenizer's chat template, the assistant generation
    prefix included unless ``generation_prompt`` is false (a conversation that ends with the assistant's
    turn, as reward models read it), with ``template_kwargs`` (``--chat-template-kwargs``, e.g.
    ``enable_thinking``) passed to the template; without a template the messages are joined by blank lines."""
    if isinstance(prompt, str):
        return prompt
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(prompt, add_generation_prompt=generation_prompt, tokenize=False,
                                             **(template_kwargs or {}))
    return "\n\n".join(m["content"] for m in prompt)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (x86 AVX512-BF16 or AMX, Arm BF16), from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:  # not Linux: no way to tell, so the safe choice
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def encode_prompt(tokenizer, prompt: Prompt, template_kwargs: dict | None = None) -> list[int]:
    """Token ids of a prompt, the same on every backend that tokenizes locally. A text that already starts with
    BOS (a rendered Llama-3 template, say) keeps one BOS, not two."""
    if not isinstance(prompt, str) and tokenizer.chat_template:
        return list(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True,
                                                  return_dict=True, **(template_kwargs or {}))["input_ids"])
    ids = tokenizer(render_prompt(tokenizer, prompt, template_kwargs))["input_ids"]
    bos = tokenizer.bos_token_id
    if bos is not None and len(ids) > 1 and ids[0] == ids[1] == bos:
        ids = ids[1:]
    return ids


class LocalTokenizer:
    """``render``, ``encode`` and ``count_tokens`` of a backend that holds its model's tokenizer
    (``self.tokenizer``): the transformers and vLLM backends read the same prompt tokens."""

    tokenizer: object
    template_kwargs: dict = {}  # --chat-template-kwargs, passed to the chat template

    def render(self, prompt: Prompt) -> str:
        """The text the model reads: chat messages through the chat template, generation prefix included."""
        return render_prompt(self.tokenizer, prompt, self.template_kwargs)

    def encode(self, prompt: Prompt) -> list[int]:
        return encode_prompt(self.tokenizer, prompt, self.template_kwargs)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` on its own (no special tokens added)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass(frozen=True)
class GenParams:
    """Sampling parameters, named as in vLLM's ``SamplingParams``."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int = 0
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    thinking_budget: int | None = None  # vLLM's native cap on tokens of thought, where the backend has one


@dataclass(frozen=True)
class Request:
    """``n`` samples of one prompt with their own sampling parameters (seed, limits, stop strings), so
    requests that differ in any of them share one batch. ``prefix`` is text the assistant has already
    written: the model reads the rendered prompt (chat template and generation prefix) followed by it, and
    continues the assistant turn."""

    prompt: Prompt
    prefix: str = ""
    n: int = 1
    params: GenParams = GenParams()

    @classmethod
    def of(cls, prompt: Prompt, params: GenParams, n: int = 1, prefix: str = "") -> "Request":
        return cls(prompt, prefix, n, params)

    def text(self, render) -> Prompt:
        """What the model reads: the prompt itself, or ``render(prompt) + prefix`` for a continuation."""
        return self.prompt if not self.prefix else render(self.prompt) + self.prefix


def generate_each(backend, requests: list[Request]) -> list[list[Completion]]:
    """Requests one at a time through ``backend.generate(prompts, params, n)``: for backends that do not
    batch (the scripted test backends)."""
    render = getattr(backend, "render", None)
    return [backend.generate([r.text(render)], r.params, r.n)[0] for r in requests]


def greedy_repeats(temperature: float, n: int) -> int:
    """How many times each decoded sample is repeated: ``n`` at temperature 0, where the n samples are
    identical and one is decoded (vLLM refuses n > 1 without sampling), else 1."""
    return n if temperature == 0 and n > 0 else 1


@dataclass
class ModelInfo:
    """Identity and shape of the loaded model, written to the run header."""

    name: str
    source: str
    spec: ModelSpec
    identity: dict = field(default_factory=dict)


class Pending(Protocol):
    """A call handed to an ``Engine``: done once every request of it has finished."""

    def done(self) -> bool: ...

    def result(self):
        """What the call returns: for ``start``, each request's ``n`` completions; for ``start_logprobs``,
        ``continuation_logprobs``' pair (raises the engine's error where it failed)."""
        ...


class Engine(Protocol):
    """A continuous-batching engine that its caller steps: requests join the running batch at the next step."""

    def start(self, requests: list[Request]) -> Pending:
        """Queue the requests (together, in order) for the engine's next step; no decoding happens here."""
        ...

    def start_logprobs(self, prefix: str, continuations: list[str]) -> Pending:
        """Queue what ``continuation_logprobs(prefix, continuations)`` reads; its ``result()`` is that."""
        ...

    def drive(self, done: Callable[[], bool]) -> None:
        """Step the engine in this thread until ``done()``."""
        ...


class Backend(Protocol):
    info: ModelInfo
    shares_prefill: bool  # True if the n samples of one prompt are decoded from one prefill
    concurrency: int  # problems the runner keeps in flight at once (1: one at a time)
    # True: the backend decodes one batch at a time and the runner runs ``concurrency`` problems in lock-step
    # rounds whose calls it merges into one batch each (ttc.sweep.rounds); False: it takes concurrent calls itself
    lockstep: bool
    # None, or the engine of a backend that batches continuously and is stepped by its caller (vllm): the
    # runner merges up to ``concurrency`` problems' calls into its running batch (ttc.sweep.rounds)
    engine: "Engine | None"

    def close(self) -> None:
        """Release the engine or server the backend holds (a no-op where there is none)."""
        ...

    def generate_requests(self, requests: list[Request]) -> list[list[Completion]]:
        """For each request, its ``n`` completions; the requests are batched together where the engine can."""
        ...

    def generate(self, prompts: list[Prompt], params: GenParams, n: int) -> list[list[Completion]]:
        """Return, for each prompt, ``n`` completions sampled with ``params``."""
        ...


class ScoringBackend(Backend, Protocol):
    """What the strategies beyond repeated sampling need on top of ``generate`` (``samplers/``): continuing
    an assistant turn from text (budget forcing, search) and reading log-probabilities of given text
    (self-scoring verifiers)."""

    def render(self, prompt: Prompt) -> str:
        """The text the model reads for ``prompt``: chat messages rendered with the chat template and the
        assistant generation prefix; a string as is. ``render(p) + partial`` continues the assistant turn."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` on its own (no special tokens added)."""
        ...

    def continuation_logprobs(self, prefix: str, continuations: list[str]) -> tuple[int, list[list[float]]]:
        """``(prefix tokens, per-token log-probabilities of each continuation after the raw string
        prefix)``, from the raw (untempered) distribution."""
        ...

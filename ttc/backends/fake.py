"""A scripted backend for tests: replays completions chosen by a function of the prompt, no model."""

from __future__ import annotations

import random
from collections.abc import Callable

from ttc.backends.base import GenParams, ModelInfo, Prompt, Request, generate_each
from ttc.metrics.flops import ModelSpec
from ttc.store.records import Completion

FAKE_SPEC = ModelSpec(n_params_nonembed=1000, n_layer=2, d_model=8, d_attn=8, vocab_size=50,
                      n_params_total=1800)


def _prompt_text(prompt: Prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)


class FakeBackend:
    """``script(prompt_text, rng) -> str`` produces each completion; ``rng`` is seeded from the params'
    seed, the prompt and the sample index, so outputs are reproducible. Tokens are whitespace words."""

    shares_prefill = True
    concurrency = 1
    lockstep = False
    engine = None

    def __init__(self, script: Callable[[str, random.Random], str], name: str = "fake",
                 fail_after: int | None = None):
        self.script = script
        self.info = ModelInfo(name=name, source="fake", spec=FAKE_SPEC, identity={"backend": "fake"})
        self.calls = 0
        self.fail_after = fail_after

    def close(self) -> None:
        pass

    def generate_requests(self, requests: list[Request]) -> list[list[Completion]]:
        return generate_each(self, requests)

    def generate(self, prompts: list[Prompt], params: GenParams, n: int) -> list[list[Completion]]:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("fake backend crashed")
        self.calls += 1
        out = []
        for prompt in prompts:
            text = _prompt_text(prompt)
            comps = []
            for i in range(n):
                rng = random.Random(f"{params.seed}|{text}|{i}")
                reply = self.script(text, rng)
                words = reply.split()
                finish = "stop"
                if len(words) > params.max_tokens:
                    reply, finish = " ".join(words[: params.max_tokens]), "length"
                comps.append(Completion(reply, len(text.split()), min(len(words), params.max_tokens), finish))
            out.append(comps)
        return out

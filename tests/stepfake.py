"""A scripted backend for the strategies' tests: whitespace words are tokens, stop strings are honoured
(with ``stop_reason``), string prompts continue an assistant turn, and log-probabilities are scripted.

The rendered chat prompt is ``"user: <content> assistant:"``. A continuation is the rest of a scripted
full solution after the words already written (so sampling a continuation with another seed may take a
different branch), ``ANSWER_CUE`` is answered with ``answer``, and the judge question with Yes/No
log-probabilities from ``judge``. A completion that runs out of words ends with an end-of-sequence
token, counted as generated, as the transformers backend does.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from ttc.backends.base import ModelInfo, generate_each
from ttc.backends.fake import FAKE_SPEC
from ttc.store.records import Completion

ANSWER_CUE = "Final answer:"


class StepFake:
    shares_prefill = True

    def __init__(self, solution: Callable[[random.Random], list[str]], answer: str = "7",
                 logprob: Callable[[str], float] = lambda word: -0.5, judge=(-0.1, -2.3)):
        self.solution, self.answer, self.logprob, self.judge = solution, answer, logprob, judge
        self.info = ModelInfo(name="stepfake", source="fake", spec=FAKE_SPEC, identity={"backend": "fake"})
        self.calls: list[tuple[str, int]] = []  # (prompt text, n) of every request
        self.batches: list[int] = []  # requests per generate_requests call

    def render(self, prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        return "user: " + " ".join(m["content"] for m in prompt) + " assistant:"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate_requests(self, requests):
        self.batches.append(len(requests))
        return generate_each(self, requests)

    def generate(self, prompts, params, n):
        out = []
        for prompt in prompts:
            text = self.render(prompt)
            self.calls.append((text, n))
            written = text.split(" assistant:", 1)[1].split() if " assistant:" in text else []
            comps = []
            for i in range(n):
                rng = random.Random(f"{params.seed}|{text}|{i}")
                if text.rstrip().endswith(ANSWER_CUE):
                    words = [self.answer]
                else:
                    words = self.solution(rng)[len(written):]
                comps.append(self._cut(words, len(text.split()), params))
            out.append(comps)
        return out

    def _cut(self, words, prompt_tokens, params) -> Completion:
        kept = []
        for w in words:
            if len(kept) == params.max_tokens:
                return self._make(kept, prompt_tokens, len(kept), "length", None, params)
            hit = [s for s in params.stop if s.strip() == w]
            if hit:
                return self._make(kept, prompt_tokens, len(kept) + 1, "stop", hit[0], params)
            kept.append(w)
        if len(kept) == params.max_tokens:
            return self._make(kept, prompt_tokens, len(kept), "length", None, params)
        return self._make(kept, prompt_tokens, len(kept) + 1, "stop", None, params)  # + end of sequence

    def _make(self, kept, prompt_tokens, generated, finish, stop, params) -> Completion:
        lps = tuple(self.logprob(w) for w in kept) + (-0.1,) * (generated - len(kept))
        text = "".join(" " + w for w in kept)
        return Completion(text, prompt_tokens, generated, finish, lps if params.logprobs else None, stop)

    def continuation_logprobs(self, prefix: str, continuations: list[str]):
        table = {"Yes": [self.judge[0]], "No": [self.judge[1]]}
        return len(prefix.split()), [table.get(c, [self.logprob(w) for w in c.split()]) for c in continuations]

"""Verifiers: score candidate solutions so a strategy can choose among them, and count what scoring cost.

Every verifier maps candidates to ``Score(value, steps, flops, tokens)``: ``value`` in [0, 1], higher is
better (best-of-n picks the top one; weighted majority sums it per distinct answer), ``steps`` the
per-step scores where the verifier has them, ``flops`` and ``tokens`` what the verifier's forward passes
cost and read (``ttc.metrics.flops`` conventions, the verifier model's own ``ModelSpec``: the trunk over every
token read, an output head only at the positions whose output is read).

Registry (``VERIFIERS``; ``--verifier``):

* ``oracle``: the task's gold grader, 1 if correct else 0. Free; best-of-k with it equals pass@k, the
  upper bound of any verifier.
* ``self-logprob``: the geometric-mean token probability ``exp(mean log p)`` of the candidate under the
  generating model. Free when the sampler kept the generation's log-probabilities; otherwise one forward
  pass over prompt + candidate. Step scores are the same quantity per step when the sampler knows them.
* ``self-judge``: the generating model asked whether the answer is correct; the score is
  ``P(Yes) / (P(Yes) + P(No))`` at the first token of its reply (one forward pass over the judge prompt,
  one output-head row).
* ``orm:<path-or-id>``: an outcome reward model, any transformers sequence-classification checkpoint
  (``AutoModelForSequenceClassification``); the conversation is rendered with its chat template. One
  label: ``sigmoid(logit)``; several: the probability of the last label.
* ``prm:<path-or-id>``: a process reward model with a token-classification head and a step separator
  token, Qwen2.5-Math-PRM's convention: steps joined by ``<extra_0>`` (also after the last step), each
  step's score the probability of label 1 at its separator. Checkpoints that ship their own model class
  (``Qwen2ForProcessRewardModel``) load with ``trust_remote_code``.
* ``prm-lm:<path-or-id>``: a causal-LM process reward model with RLHFlow's convention (Llama3.1-8B-PRM):
  a conversation whose user turns are the steps (the question with the first) and whose assistant
  replies are ``+``; a step's score is ``P(+) / (P(+) + P(-))`` where the reply is predicted. One forward
  pass over the whole conversation, the LM head at the step positions only.

Process scores become one value by ``--prm-agg``: ``last`` (the final step, search-and-learn's default),
``min`` or ``prod``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Protocol

from ttc.errors import TTCError, first_line
from ttc.metrics.flops import ModelSpec, lm_head_flops, trunk_flops

QWEN_PRM_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
QWEN_PRM_SEP = "<extra_0>"
JUDGE_QUESTION = "Is this answer correct? Answer Yes or No."


@dataclass(frozen=True)
class Candidate:
    """A solution to score: the assistant's text (no prompt), and what the sampler knows about it."""

    text: str
    logprobs: tuple[float, ...] | None = None  # the generator's per-token log-probabilities
    step_logprobs: tuple[tuple[float, ...], ...] | None = None  # the same, split by step
    correct: bool | None = None  # the gold grade (only the oracle reads it)


@dataclass(frozen=True)
class Score:
    value: float
    steps: tuple[float, ...] = ()
    flops: float = 0.0
    tokens: int = 0  # tokens the verifier read


class Verifier(Protocol):
    name: str
    wants_logprobs: bool  # scores from the generation's log-probabilities: ask for them when sampling

    def score(self, backend, question: str, prompt, candidates: list[Candidate]) -> list[Score]:
        """One score per candidate. ``backend`` is the policy model as self-scores read it (``render``,
        ``continuation_logprobs``, ``info``): in a sweep the problem's ``ModelContext``, or a backend."""
        ...


def split_steps(text: str, delimiter: str = "\n\n") -> list[str]:
    """The non-empty steps of a solution, stripped."""
    return [s.strip() for s in text.split(delimiter) if s.strip()]


def aggregate(steps, how: str) -> float:
    """One score from step scores: ``last``, ``min`` or ``prod``; 0 when there are no steps."""
    steps = list(steps)
    if not steps:
        return 0.0
    if how == "last":
        return float(steps[-1])
    if how == "min":
        return float(min(steps))
    if how == "prod":
        return float(math.prod(steps))
    raise TTCError(f"unknown step aggregation {how!r}; known: last, min, prod")


def scoring_flops(spec: ModelSpec, prefix_tokens: int, continuation_lengths: list[int]) -> float:
    """Reading the log-probabilities of continuations after a shared prefix: the trunk over the prefix
    and the output head at its last position (which scores every continuation's first token), then for
    each continuation of length c > 1, the trunk and head over its first c - 1 tokens."""
    f = trunk_flops(spec, prefix_tokens, 0) + lm_head_flops(spec, 1)
    for c in continuation_lengths:
        if c > 1:
            f += trunk_flops(spec, c - 1, prefix_tokens) + lm_head_flops(spec, c - 1)
    return f


def classifier_flops(spec: ModelSpec, n_tokens: int, n_labels: int, head_positions: int) -> float:
    """A reward model's forward pass: the trunk over ``n_tokens`` and a ``d_model x n_labels`` head at
    ``head_positions`` positions."""
    return trunk_flops(spec, n_tokens, 0) + 2.0 * spec.d_model * n_labels * head_positions


def _geo_mean_prob(lps) -> float:
    lps = list(lps)
    return math.exp(sum(lps) / len(lps)) if lps else 0.0


class OracleVerifier:
    name = "oracle"
    wants_logprobs = False

    def score(self, backend, question, prompt, candidates):
        if any(c.correct is None for c in candidates):
            raise TTCError("the oracle verifier needs graded candidates")
        return [Score(1.0 if c.correct else 0.0) for c in candidates]


class SelfLogprobVerifier:
    name = "self-logprob"
    wants_logprobs = True

    def score(self, backend, question, prompt, candidates):
        out = []
        for c in candidates:
            steps = tuple(_geo_mean_prob(s) for s in c.step_logprobs) if c.step_logprobs else ()
            if c.logprobs is not None:
                out.append(Score(_geo_mean_prob(c.logprobs), steps))
                continue
            prefix = backend.render(prompt)
            n_prefix, (lps,) = backend.continuation_logprobs(prefix, [c.text])
            out.append(Score(_geo_mean_prob(lps), steps, scoring_flops(backend.info.spec, n_prefix, [len(lps)]),
                             n_prefix + len(lps)))
        return out


class SelfJudgeVerifier:
    name = "self-judge"
    wants_logprobs = False

    def judge_prompt(self, question: str, text: str) -> list[dict]:
        return [{"role": "user", "content": f"{question}\n\nProposed solution:\n{text}\n\n{JUDGE_QUESTION}"}]

    def score(self, backend, question, prompt, candidates):
        out = []
        for c in candidates:
            prefix = backend.render(self.judge_prompt(question, c.text))
            n_prefix, (yes, no) = backend.continuation_logprobs(prefix, ["Yes", "No"])
            # the first token of each reply, read from one output-head row
            p_yes, p_no = math.exp(yes[0]), math.exp(no[0])
            value = p_yes / (p_yes + p_no) if p_yes + p_no > 0 else 0.5
            out.append(Score(value, (), scoring_flops(backend.info.spec, n_prefix, [1, 1]), n_prefix))
        return out


class _HFRewardModel:
    """Lazily loaded transformers checkpoint (CPU or the first GPU), float32 on CPU."""

    auto_class = "AutoModelForSequenceClassification"
    wants_logprobs = False

    def __init__(self, path: str):
        self.path = path
        self.model = None
        self._loading = threading.Lock()  # problems score from several threads at once

    def load(self):
        with self._loading:
            if self.model is None:
                self._load()

    def _load(self):
        import torch
        import transformers

        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.path)
            model = self._load_model(transformers, dtype)
        except OSError as e:
            first = first_line(e)
            raise TTCError(f"cannot load verifier {self.path!r}: {first}") from None
        model.to(device).eval()
        self.device = device
        from ttc.backends.hf import spec_from_model

        self.spec = spec_from_model(model)
        self.model = model  # last: a loaded model is a ready one

    def _load_model(self, transformers, dtype):
        return getattr(transformers, self.auto_class).from_pretrained(self.path, dtype=dtype)

    def _chat(self, messages: list[dict]) -> str:
        from ttc.backends.base import render_prompt

        return render_prompt(self.tokenizer, messages, generation_prompt=False)

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=not self.tokenizer.chat_template)["input_ids"]


class OutcomeRewardVerifier(_HFRewardModel):
    def __init__(self, path: str):
        super().__init__(path)
        self.name = f"orm:{path}"

    def score(self, backend, question, prompt, candidates):
        import torch

        self.load()
        out = []
        for c in candidates:
            ids = self._ids(self._chat([{"role": "user", "content": question},
                                        {"role": "assistant", "content": c.text}]))
            with torch.inference_mode():
                logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0].float()
            value = float(torch.sigmoid(logits[0])) if logits.numel() == 1 else float(logits.softmax(-1)[-1])
            out.append(Score(value, (), classifier_flops(self.spec, len(ids), logits.numel(), 1), len(ids)))
        return out


class TokenPRMVerifier(_HFRewardModel):
    """Qwen2.5-Math-PRM convention: label-1 probability at each step separator."""

    auto_class = "AutoModelForTokenClassification"

    def __init__(self, path: str, agg: str = "last", delimiter: str = "\n\n", sep: str = QWEN_PRM_SEP):
        super().__init__(path)
        self.name, self.agg, self.delimiter, self.sep = f"prm:{path}", agg, delimiter, sep

    def _load_model(self, transformers, dtype):
        config = transformers.AutoConfig.from_pretrained(self.path, trust_remote_code=True)
        if any("ProcessRewardModel" in a for a in (getattr(config, "architectures", None) or [])):
            return transformers.AutoModel.from_pretrained(self.path, dtype=dtype, trust_remote_code=True)
        return transformers.AutoModelForTokenClassification.from_pretrained(self.path, dtype=dtype)

    def score(self, backend, question, prompt, candidates):
        import torch

        self.load()
        sep_id = self.tokenizer.convert_tokens_to_ids(self.sep)
        if sep_id is None or sep_id == self.tokenizer.unk_token_id:
            raise TTCError(f"verifier {self.path!r} has no step separator token {self.sep!r}")
        out = []
        for c in candidates:
            steps = split_steps(c.text, self.delimiter) or [""]
            text = self._chat([{"role": "system", "content": QWEN_PRM_SYSTEM},
                               {"role": "user", "content": question},
                               {"role": "assistant", "content": self.sep.join(steps) + self.sep}])
            ids = self._ids(text)
            with torch.inference_mode():
                res = self.model(input_ids=torch.tensor([ids], device=self.device))
            logits = (res.logits if hasattr(res, "logits") else res[0])[0].float()
            at = torch.tensor(ids, device=self.device) == sep_id
            probs = logits[at].softmax(-1)[:, 1].tolist()
            out.append(Score(aggregate(probs, self.agg), tuple(probs),
                             classifier_flops(self.spec, len(ids), logits.shape[-1], len(ids)), len(ids)))
        return out


class LMPRMVerifier(_HFRewardModel):
    """RLHFlow convention: steps as user turns, P(+) vs P(-) where the assistant's reply is predicted."""

    auto_class = "AutoModelForCausalLM"

    def __init__(self, path: str, agg: str = "last", delimiter: str = "\n\n", good: str = "+", bad: str = "-"):
        super().__init__(path)
        self.name, self.agg, self.delimiter, self.good, self.bad = f"prm-lm:{path}", agg, delimiter, good, bad

    def positions(self, question: str, steps: list[str]) -> tuple[list[int], list[int]]:
        """Token ids of the whole conversation and the positions whose next-token prediction is each
        step's verdict (the last token of the conversation up to that step's generation prompt)."""
        tok = self.tokenizer
        if not tok.chat_template:
            raise TTCError(f"verifier {self.path!r} has no chat template; prm-lm needs one")
        messages, cuts = [], []
        for i, step in enumerate(steps):
            messages.append({"role": "user", "content": f"{question} {step}" if i == 0 else step})
            head = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            cuts.append(len(tok(head, add_special_tokens=False)["input_ids"]) - 1)
            messages.append({"role": "assistant", "content": self.good})
        full = tok(tok.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"]
        return full, cuts

    def score(self, backend, question, prompt, candidates):
        import torch

        self.load()
        good, bad = (self.tokenizer(t, add_special_tokens=False)["input_ids"][0] for t in (self.good, self.bad))
        out = []
        for c in candidates:
            steps = split_steps(c.text, self.delimiter) or [""]
            ids, cuts = self.positions(question, steps)
            with torch.inference_mode():
                logits = self.model(input_ids=torch.tensor([ids], device=self.device),
                                    logits_to_keep=torch.tensor(cuts, device=self.device)).logits[0].float()
            pair = logits[:, [good, bad]].softmax(-1)[:, 0].tolist()
            flops = trunk_flops(self.spec, len(ids), 0) + lm_head_flops(self.spec, len(cuts))
            out.append(Score(aggregate(pair, self.agg), tuple(pair), flops, len(ids)))
        return out


VERIFIERS = {
    "oracle": lambda arg, strategy: OracleVerifier(),
    "self-logprob": lambda arg, strategy: SelfLogprobVerifier(),
    "self-judge": lambda arg, strategy: SelfJudgeVerifier(),
    "orm": lambda arg, strategy: OutcomeRewardVerifier(arg),
    "prm": lambda arg, strategy: TokenPRMVerifier(arg, strategy.prm_agg, strategy.step_delimiter),
    "prm-lm": lambda arg, strategy: LMPRMVerifier(arg, strategy.prm_agg, strategy.step_delimiter),
}


def make_verifier(spec: str, strategy) -> Verifier:
    """``oracle``, ``self-logprob``, ``self-judge``, ``orm:<path>``, ``prm:<path>``, ``prm-lm:<path>``."""
    kind, sep, arg = spec.partition(":")
    if kind not in VERIFIERS:
        raise TTCError(f"unknown verifier {spec!r}; known: {', '.join(sorted(VERIFIERS))} "
                       f"(orm, prm and prm-lm take :<path-or-hub-id>)")
    if kind in ("orm", "prm", "prm-lm") and not arg:
        raise TTCError(f"verifier {kind} needs a checkpoint: {kind}:<path-or-hub-id>")
    if kind not in ("orm", "prm", "prm-lm") and sep:
        raise TTCError(f"verifier {kind} takes no argument, got {spec!r}")
    return VERIFIERS[kind](arg, strategy)

"""Thinking models: chat-template options reach the template and the run id, thoughts are counted apart,
and budget forcing hands its caps to an engine that caps thinking natively."""

import pytest
from conftest import THINK_TEMPLATE, build_tiny_model

from samplers.base import Output
from samplers.budget_forcing import BudgetForcing
from ttc.backends.base import GenParams, ModelInfo
from ttc.backends.fake import FAKE_SPEC
from ttc.cli.run import parse_template_kwargs
from ttc.errors import TTCError
from ttc.store.records import Completion
from ttc.sweep.config import BackendConfig, RunConfig, SamplingConfig, SweepConfig
from ttc.sweep.context import ModelContext
from ttc.sweep.problem import make_records, thinking_tokens
from ttc.sweep.runner import run_sweep

MESSAGES = [{"role": "user", "content": "What is 3 + 4?"}]


@pytest.fixture(scope="module")
def think_model(tmp_path_factory):
    return str(build_tiny_model(tmp_path_factory.mktemp("think"), chat_template=THINK_TEMPLATE, think_tags=True))


def test_template_kwargs_reach_the_chat_template(think_model):
    from ttc.backends.hf import HFBackend

    plain = HFBackend(think_model, device="cpu")
    thinking = HFBackend(think_model, device="cpu", chat_template_kwargs={"enable_thinking": True})
    assert plain.render(MESSAGES).endswith("<think></think>")
    assert thinking.render(MESSAGES).endswith("<|assistant|><think>")
    # the tokenized prompt matches the rendered one, the thought tags are one token each
    assert thinking.encode(MESSAGES)[-1] == thinking.tokenizer.convert_tokens_to_ids("<think>")
    assert thinking.count_tokens("ab</think>7") == 4
    assert thinking_tokens(thinking, "ab c</think>7") == 4
    assert thinking_tokens(thinking, "no delimiter") is None


def test_template_kwargs_are_part_of_the_run_id_and_header(think_model, tmp_path):
    def cfg(kw):
        return RunConfig(sweep=SweepConfig(models=(think_model,), budgets=(1, 2), limit=2),
                         sampling=SamplingConfig(max_tokens=8),
                         backend=BackendConfig(chat_template_kwargs=kw), out=str(tmp_path))

    assert cfg({}).run_id != cfg({"enable_thinking": True}).run_id
    assert cfg({}).run_id == RunConfig(sweep=SweepConfig(models=(think_model,), budgets=(1, 2), limit=2),
                                       sampling=SamplingConfig(max_tokens=8), out=str(tmp_path)).run_id
    store = run_sweep(cfg({"enable_thinking": True}), progress=False)
    assert store.header()["config"]["backend"]["chat_template_kwargs"] == {"enable_thinking": True}


def test_parse_and_validate_template_kwargs():
    assert parse_template_kwargs('{"enable_thinking": true}') == {"enable_thinking": True}
    assert parse_template_kwargs(None) == {}
    for bad in ("[1]", "enable_thinking", "true"):
        with pytest.raises(TTCError, match="JSON object"):
            parse_template_kwargs(bad)
    with pytest.raises(TTCError, match="default-chat-template-kwargs"):
        BackendConfig(name="openai", base_url="http://127.0.0.1:8000/v1", chat_template_kwargs={"a": 1})


class MessagesTask:
    def prompt(self, problem):
        return MESSAGES


class WordBackend:
    """Whitespace words are tokens. With ``native_thinking_budget`` the engine ends a thought at
    ``params.thinking_budget`` words by emitting ``</think>`` itself, then answers."""

    shares_prefill = True

    def __init__(self, thought_words: int, native: bool):
        self.thought, self.native_thinking_budget = thought_words, native
        self.info = ModelInfo(name="words", source="fake", spec=FAKE_SPEC, identity={"backend": "fake"})
        self.seen = []

    def render(self, prompt):
        return prompt if isinstance(prompt, str) else "user: 3 + 4 assistant:"

    def count_tokens(self, text):
        return len(text.split())

    def generate(self, prompts, params, n):
        self.seen.append(params.thinking_budget)
        think = self.thought if params.thinking_budget is None else min(self.thought, params.thinking_budget)
        text = " ".join(["hmm"] * think) + " </think> The answer is \\boxed{7}"
        return [[Completion(text, 5, think + 6, "stop") for _ in range(n)] for _ in prompts]


def test_thinking_tokens_are_recorded(tmp_path):
    from tasks import get_task, load_problems

    task = get_task("chain_sum")
    problem = load_problems(task, 1, 0)[0]
    backend = WordBackend(thought_words=9, native=False)
    ctx = ModelContext(backend, GenParams())
    outs = [Output(c, ctx.cost(c), {}) for c in backend.generate(["p"], GenParams(), 2)[0]]
    recs = make_records(task, problem, "sample", "words", backend.shares_prefill, 0, outs, backend=backend)
    assert [r.extra["thinking_tokens"] for r in recs] == [9, 9]
    assert recs[0].generated_tokens == 15  # thought and answer both generated; the thought is counted apart


def test_budget_forcing_uses_the_native_thinking_budget_where_the_engine_has_it():
    bf = BudgetForcing(think_budgets=(4, 16), think_end="</think>", chains=2, answer_tokens=8)
    native = WordBackend(thought_words=10, native=True)
    out = bf.run(ModelContext(native, GenParams(seed=3)), MessagesTask(), None, 3)
    assert native.seen == [4, 16]  # one engine request per cap, each with its budget
    by_cap = {}
    for o in out:
        c, e = o.completion, o.fields
        assert e["native_budget"] and c.text.endswith("\\boxed{7}")
        by_cap.setdefault(e["think_budget"], []).append(e)
    assert [e["think_tokens"] for e in by_cap[4]] == [4, 4] and all(e["forced"] for e in by_cap[4])
    assert [e["think_tokens"] for e in by_cap[16]] == [10, 10] and not any(e["forced"] for e in by_cap[16])
    # without a native budget (or with Wait insertion) the chains are grown and forced by ttc itself
    plain = WordBackend(thought_words=10, native=False)
    BudgetForcing(think_budgets=(4, 16), think_end="</think>", chains=2).run(
        ModelContext(plain, GenParams()), MessagesTask(), None, 0)
    assert set(plain.seen) == {None}

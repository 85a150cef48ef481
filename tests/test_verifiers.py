"""Verifiers: FLOPs by hand, tiny random-weight reward models of each convention, self-scores on the tiny
Llama through the transformers backend."""

import math

import pytest
from conftest import CHARS, CHAT_TEMPLATE, SPECIALS

from samplers.verifiers import (
    Candidate,
    LMPRMVerifier,
    OutcomeRewardVerifier,
    TokenPRMVerifier,
    aggregate,
    classifier_flops,
    make_verifier,
    scoring_flops,
    split_steps,
)
from ttc.backends.base import GenParams
from ttc.errors import TTCError
from ttc.metrics.flops import ModelSpec
from ttc.sweep.config import StrategyConfig

SPEC = ModelSpec(n_params_nonembed=1000, n_layer=2, d_model=8, d_attn=8, vocab_size=50)
PRM_CHAT = ("{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '\\n' }}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}")


def test_scoring_flops_by_hand():
    # prefix of 3: trunk 3*2000 + 32*(0+1+2) = 6096, one head row 800; one-token continuations add nothing
    assert scoring_flops(SPEC, 3, [1, 1]) == 6896
    # a 3-token continuation adds its first 2 tokens at contexts 3, 4: 4000 + 32*7, and 2 head rows
    assert scoring_flops(SPEC, 3, [3]) == 6896 + 4224 + 1600


def test_classifier_flops_by_hand():
    # 4 tokens: 8000 + 32*(0+1+2+3) = 8192, plus a 1-label head at one position: 2*8*1
    assert classifier_flops(SPEC, 4, 1, 1) == 8208
    # a 2-label head at every one of the 4 positions: 4 * 2*8*2
    assert classifier_flops(SPEC, 4, 2, 4) == 8192 + 128


def test_steps_and_aggregates():
    assert split_steps("a\n\n\n\nb\n\n c ") == ["a", "b", "c"]
    assert aggregate([0.9, 0.5, 0.8], "last") == 0.8
    assert aggregate([0.9, 0.5, 0.8], "min") == 0.5
    assert aggregate([0.9, 0.5, 0.8], "prod") == pytest.approx(0.36)
    assert aggregate([], "min") == 0.0


@pytest.mark.parametrize("bad", ["nope", "orm", "orm:", "oracle:x", "prm"])
def test_unknown_or_malformed_verifier(bad):
    with pytest.raises(TTCError):
        make_verifier(bad, StrategyConfig())


def tokenizer(extra_specials=()):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + list(extra_specials) + CHARS + ["<|system|>"])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tk.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                  pad_token="</s>")
    tok.add_special_tokens({"additional_special_tokens": ["<|user|>", "<|assistant|>", "<|system|>",
                                                         *extra_specials]})
    return tok, len(vocab)


def llama_config(vocab, **kw):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                       bos_token_id=1, eos_token_id=2, pad_token_id=2, **kw)


def save_tiny(path, cls_name: str, seed: int, template: str, extra_specials=(), **config) -> str:
    """A random-weight Llama of the given head class with the character tokenizer, saved under ``path``."""
    import torch
    import transformers

    tok, v = tokenizer(extra_specials)
    tok.chat_template = template
    torch.manual_seed(seed)
    getattr(transformers, cls_name)(llama_config(v, **config)).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def orm_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("orm"), "LlamaForSequenceClassification", 0, CHAT_TEMPLATE,
                     num_labels=1)


@pytest.fixture(scope="module")
def token_prm_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("prm"), "LlamaForTokenClassification", 1, PRM_CHAT, ["<extra_0>"],
                     num_labels=2)


@pytest.fixture(scope="module")
def lm_prm_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("prm-lm"), "LlamaForCausalLM", 2, PRM_CHAT)


SOLUTION = "3+4 is 7.\n\nso the answer is \\boxed{7}"


def test_orm_scores_and_costs(orm_dir):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    v = make_verifier(f"orm:{orm_dir}", StrategyConfig())
    assert isinstance(v, OutcomeRewardVerifier)
    s1, s2 = v.score(None, "what is 3+4?", None, [Candidate(SOLUTION), Candidate("no idea")])
    tok = AutoTokenizer.from_pretrained(orm_dir)
    model = AutoModelForSequenceClassification.from_pretrained(orm_dir).eval()
    text = tok.apply_chat_template([{"role": "user", "content": "what is 3+4?"},
                                    {"role": "assistant", "content": SOLUTION}], tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logit = model(input_ids=torch.tensor([ids])).logits[0, 0].item()
    assert s1.value == pytest.approx(1 / (1 + math.exp(-logit)), rel=1e-5)
    assert s1.tokens == len(ids) and s2.tokens < s1.tokens
    assert s1.flops == classifier_flops(v.spec, len(ids), 1, 1)
    # the spec counts the trunk only: embedding and score head excluded
    n_embed = model.get_input_embeddings().weight.numel()
    n_head = model.score.weight.numel()
    assert v.spec.n_params_nonembed == sum(p.numel() for p in model.parameters()) - n_embed - n_head


def test_token_prm_reads_each_step_separator(token_prm_dir):
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    for agg in ("last", "min", "prod"):
        v = make_verifier(f"prm:{token_prm_dir}", StrategyConfig(prm_agg=agg))
        assert isinstance(v, TokenPRMVerifier)
        (s,) = v.score(None, "what is 3+4?", None, [Candidate(SOLUTION)])
        assert len(s.steps) == 2 and all(0 < x < 1 for x in s.steps)
        assert s.value == pytest.approx(aggregate(s.steps, agg))
    tok = AutoTokenizer.from_pretrained(token_prm_dir)
    model = AutoModelForTokenClassification.from_pretrained(token_prm_dir).eval()
    text = tok.apply_chat_template([
        {"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."},
        {"role": "user", "content": "what is 3+4?"},
        {"role": "assistant", "content": "3+4 is 7.<extra_0>so the answer is \\boxed{7}<extra_0>"}], tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        probs = model(input_ids=torch.tensor([ids])).logits[0].softmax(-1)[:, 1]
    sep = tok.convert_tokens_to_ids("<extra_0>")
    expected = [probs[i].item() for i, t in enumerate(ids) if t == sep]
    assert list(s.steps) == pytest.approx(expected, rel=1e-5)
    assert s.flops == classifier_flops(v.spec, len(ids), 2, len(ids))


def test_lm_prm_matches_step_by_step_forward_passes(lm_prm_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    v = make_verifier(f"prm-lm:{lm_prm_dir}", StrategyConfig(prm_agg="min"))
    assert isinstance(v, LMPRMVerifier)
    (s,) = v.score(None, "what is 3+4?", None, [Candidate(SOLUTION)])
    # RLHFlow's own recipe: one forward pass per step over the conversation so far
    tok = AutoTokenizer.from_pretrained(lm_prm_dir)
    model = AutoModelForCausalLM.from_pretrained(lm_prm_dir).eval()
    good, bad = tok.convert_tokens_to_ids("+"), tok.convert_tokens_to_ids("-")
    messages, expected = [], []
    for i, step in enumerate(["3+4 is 7.", "so the answer is \\boxed{7}"]):
        messages.append({"role": "user", "content": f"what is 3+4? {step}" if i == 0 else step})
        ids = tok(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False),
                  add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        expected.append(logits[[good, bad]].softmax(-1)[0].item())
        messages.append({"role": "assistant", "content": "+"})
    assert list(s.steps) == pytest.approx(expected, rel=1e-4)
    assert s.value == pytest.approx(min(expected), rel=1e-4)
    full, cuts = v.positions("what is 3+4?", ["3+4 is 7.", "so the answer is \\boxed{7}"])
    from ttc.metrics.flops import lm_head_flops, trunk_flops

    assert s.flops == trunk_flops(v.spec, len(full), 0) + lm_head_flops(v.spec, 2)


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir):
    from ttc.backends.hf import HFBackend

    return HFBackend(tiny_model_dir, device="cpu")


def test_continuation_logprobs_match_sampling_logprobs(tiny_backend):
    prompt = [{"role": "user", "content": "1+2="}]
    params = GenParams(temperature=1.0, max_tokens=8, seed=4, logprobs=True)
    comps = tiny_backend.generate([prompt], params, 16)[0]
    # one token per character; keep the samples whose text shows every token (a random model also samples
    # special tokens, which decoding drops), an end-of-sequence token aside
    comps = [c for c in comps if len(c.text) == c.generated_tokens - (c.finish_reason == "stop")]
    assert comps
    prefix = tiny_backend.render(prompt)
    n_prefix, lps = tiny_backend.continuation_logprobs(prefix, [c.text for c in comps])
    assert n_prefix == len(tiny_backend.encode(prompt))
    for c, lp in zip(comps, lps):
        assert lp == pytest.approx(list(c.logprobs[:len(c.text)]), abs=1e-4)


def test_self_scores_on_tiny_model(tiny_backend):
    prompt = [{"role": "user", "content": "1+2="}]
    cands = [Candidate("3"), Candidate("the answer is 4")]
    logprob = make_verifier("self-logprob", StrategyConfig())
    s = logprob.score(tiny_backend, "1+2=", prompt, cands)
    n_prefix, lps = tiny_backend.continuation_logprobs(tiny_backend.render(prompt), ["3", "the answer is 4"])
    assert s[1].value == pytest.approx(math.exp(sum(lps[1]) / len(lps[1])))
    assert s[1].flops == scoring_flops(tiny_backend.info.spec, n_prefix, [len("the answer is 4")])
    # with the generation's log-probabilities at hand, the score is free
    free = logprob.score(tiny_backend, "1+2=", prompt, [Candidate("3", logprobs=(-1.0, -3.0))])[0]
    assert free.value == pytest.approx(math.exp(-2.0)) and free.flops == 0
    judge = make_verifier("self-judge", StrategyConfig())
    j = judge.score(tiny_backend, "1+2=", prompt, cands)
    text = tiny_backend.render(judge.judge_prompt("1+2=", "3"))
    _, (yes, no) = tiny_backend.continuation_logprobs(text, ["Yes", "No"])
    assert j[0].value == pytest.approx(math.exp(yes[0]) / (math.exp(yes[0]) + math.exp(no[0])))
    # the char tokenizer has no capitals: both replies start with <unk>, so the judge is undecided
    assert j[0].value == pytest.approx(0.5)
    assert j[0].tokens == len(tiny_backend.encode(text))
    assert j[0].flops == scoring_flops(tiny_backend.info.spec, j[0].tokens, [1, 1])


def test_stop_reason_names_the_stop_string(tiny_backend):
    prompt = [{"role": "user", "content": "1+2="}]
    params = GenParams(temperature=1.0, max_tokens=40, seed=0, stop=("a", "e"))
    comps = tiny_backend.generate([prompt], params, 8)[0]
    assert any(c.stop_reason for c in comps)
    for c in comps:
        if c.stop_reason is not None:
            assert c.finish_reason == "stop" and c.stop_reason in ("a", "e")
        assert "a" not in c.text and "e" not in c.text

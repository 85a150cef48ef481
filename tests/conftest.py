"""Shared fixtures: a tiny random-weight Llama with a real tokenizer and chat template, built on disk; and the
last guard against a hanging test (see the pytest settings in pyproject.toml)."""

from __future__ import annotations

import faulthandler
import itertools
import math
import os
import random
import sys

import numpy as np
import pytest

CHARS = list("0123456789+-*/=()., abcdefghijklmnopqrstuvwxyz\\{}\n?:")
SPECIALS = ["<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = ("{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] }}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}")


# A thinking model's template (Qwen3 style): with enable_thinking the assistant turn opens a thought,
# without it an empty thought is closed at once.
THINK_TEMPLATE = ("{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] }}{% endfor %}"
                  "{% if add_generation_prompt %}{{ '<|assistant|>' }}"
                  "{% if enable_thinking is defined and enable_thinking %}{{ '<think>' }}"
                  "{% else %}{{ '<think></think>' }}{% endif %}{% endif %}")


def build_tiny_model(path, seed: int = 0, n_layer: int = 2, d_model: int = 64, skill: float = 0.0,
                     chat_template: str = CHAT_TEMPLATE, think_tags: bool = False):
    """A character-level tokenizer and a random Llama (``n_layer`` layers, width ``d_model``) saved as a
    Hugging Face checkpoint.

    ``skill`` > 0 makes the answer "7" likely by construction, for fixture families whose accuracy on a
    task with gold 7 grows with it: one hidden dimension is held constant (set in every embedding, never
    written by a layer) and the output head reads it into the logits of "7" and " " (``skill`` each).
    ``think_tags`` adds ``<think>`` and ``</think>`` as single (non-special) tokens."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + CHARS + (["<think>", "</think>"] if think_tags else []))}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tk.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                  pad_token="</s>")
    tok.add_special_tokens({"additional_special_tokens": ["<|user|>", "<|assistant|>"]})
    if think_tags:
        tok.add_tokens(["<think>", "</think>"])
    tok.chat_template = chat_template
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=d_model, intermediate_size=2 * d_model,
                      num_hidden_layers=n_layer, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, bos_token_id=1, eos_token_id=2, pad_token_id=2,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # make the end-of-sequence token likely so samples have varied lengths
        model.lm_head.weight[2] *= 0.0
        if skill:
            d0 = d_model - 1
            model.model.embed_tokens.weight[:, d0] = 1.0
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight[d0] = 0.0
                layer.mlp.down_proj.weight[d0] = 0.0
            model.lm_head.weight[:, d0] = 0.0
            for ch in "7 ":
                model.lm_head.weight[vocab[ch], d0] = skill / d_model ** 0.5
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


FAULTHANDLER_GRACE = 120.0  # seconds past a test's own timeout before faulthandler ends the run
_STDERR: list[int] = []  # a copy of the real stderr, taken before pytest captures it for the tests


def pytest_configure(config):
    if not _STDERR:
        _STDERR.append(os.dup(sys.stderr.fileno()))


def timeout_of(item) -> float | None:
    """The seconds a ``@pytest.mark.timeout(N)`` gives ``item``; None where it has no such mark."""
    mark = item.get_closest_marker("timeout")
    if mark is None:
        return None
    value = mark.args[0] if mark.args else mark.kwargs.get("timeout")
    return float(value) if value else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """A test marked with a longer timeout than the default gets faulthandler's deadline (the point where a test
    that the timeout's signal could not stop ends the run) moved to its own timeout plus a grace, so that it is
    never ended while it may still run. pytest armed the default deadline just before (faulthandler_timeout);
    this replaces it, and pytest cancels it when the test ends."""
    seconds = timeout_of(item)
    default = float(item.config.getini("faulthandler_timeout") or 0)
    if seconds and default and seconds + FAULTHANDLER_GRACE > default:
        faulthandler.dump_traceback_later(seconds + FAULTHANDLER_GRACE, exit=True, file=_STDERR[0])


def pytest_collection_modifyitems(config, items):
    """Tests marked ``vllm`` need the vLLM engine; where it is not installed they show as skipped."""
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        return
    skip = pytest.mark.skip(reason="vllm is not importable here; `make test-vllm` runs these in .venv-vllm")
    for item in items:
        if item.get_closest_marker("vllm") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny-llama")))


@pytest.fixture(scope="session")
def vllm_tiny_dir(tmp_path_factory):
    # vLLM's CPU attention needs a head size of at least 32: 4 heads of 32.
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny-llama-vllm"), d_model=128))


def scripted(answer_for: dict[str, list[str]] | None = None):
    """A fake-backend script: for a prompt containing key k, pick uniformly from answer_for[k]."""
    answer_for = answer_for or {}

    def script(prompt: str, rng: random.Random) -> str:
        for key, choices in answer_for.items():
            if key in prompt:
                return rng.choice(choices)
        return f"I think the answer is \\boxed{{{rng.randint(0, 3)}}}"

    return script


def run_records(run_dir) -> list[dict]:
    """A run's records as plain dicts (missing text as None), in the store's order."""
    from ttc.store.runstore import load_run

    df = load_run(run_dir, texts=True)
    return df.astype(object).where(df.notna(), None).to_dict("records")


def brute_vote(answers, correct, k, weights=None):
    """Expected score of a (weighted) vote over every k-subset, by enumeration: the reference for the exact
    estimators."""
    weights = weights or [1.0] * len(answers)
    good = {a for a, ok in zip(answers, correct) if ok and a is not None}
    vals = []
    for s in itertools.combinations(range(len(answers)), k):
        votes = {}
        for i in s:
            if answers[i] is not None:
                votes[answers[i]] = votes.get(answers[i], 0.0) + weights[i]
        if not votes:
            vals.append(0.0)
            continue
        top = max(votes.values())
        winners = [a for a, v in votes.items() if math.isclose(v, top, rel_tol=1e-12, abs_tol=1e-15)]
        vals.append(sum(w in good for w in winners) / len(winners))
    return float(np.mean(vals))

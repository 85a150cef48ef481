"""Shared fixtures: a tiny random-weight Llama with a real tokenizer and chat template, built on disk."""

from __future__ import annotations

import random

import pytest

CHARS = list("0123456789+-*/=()., abcdefghijklmnopqrstuvwxyz\\{}\n?:")
SPECIALS = ["<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = ("{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] }}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}")


def build_tiny_model(path, seed: int = 0, n_layer: int = 2, d_model: int = 64):
    """A character-level tokenizer and a random 2-layer Llama saved as a Hugging Face checkpoint."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + CHARS)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tk.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                  pad_token="</s>")
    tok.add_special_tokens({"additional_special_tokens": ["<|user|>", "<|assistant|>"]})
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=d_model, intermediate_size=2 * d_model,
                      num_hidden_layers=n_layer, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, bos_token_id=1, eos_token_id=2, pad_token_id=2,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # make the end-of-sequence token likely so samples have varied lengths
        model.lm_head.weight[2] *= 0.0
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


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
    from ttc.store import load_run

    df = load_run(run_dir)
    return df.astype(object).where(df.notna(), None).to_dict("records")



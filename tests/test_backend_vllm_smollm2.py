"""The vllm backend on the embedded SmolLM2-135M-Instruct (its converted safetensors checkpoint)."""

from __future__ import annotations

import pytest
from test_backend_vllm import CPU_ENGINE_ARGS, cpu_env

from ttc.backends.base import GenParams

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


@pytest.fixture(scope="module")
def problem():
    from tasks import get_task

    task = get_task("chain_sum")
    return task, task.load(2, 0)


@pytest.fixture(scope="module")
def vb():
    from ttc.backends.vllm import VLLMBackend

    cpu_env()
    backend = VLLMBackend("smollm2-135m", dtype="float32", engine_args={**CPU_ENGINE_ARGS, "max_model_len": 1024})
    yield backend
    backend.close()


def test_greedy_matches_the_transformers_backend(vb, problem):
    from ttc.backends.hf import HFBackend

    task, problems = problem
    hf = HFBackend("smollm2-135m", dtype="float32", device="cpu")
    params = GenParams(temperature=0.0, max_tokens=32, seed=0)
    for p in problems:
        (v,), (h,) = vb.generate([task.prompt(p)], params, 1)[0], hf.generate([task.prompt(p)], params, 1)[0]
        assert (v.prompt_tokens, v.text, v.generated_tokens, v.finish_reason) == \
               (h.prompt_tokens, h.text, h.generated_tokens, h.finish_reason)
    assert vb.info.spec == hf.info.spec
    assert vb.info.identity["embedded"] == "smollm2-135m" and vb.info.identity["vllm_version"]


def test_sampled_n_is_reproducible_and_counted(vb, problem):
    task, problems = problem
    params = GenParams(temperature=0.7, max_tokens=64, seed=1234)
    prompts = [task.prompt(p) for p in problems]
    a = vb.generate(prompts, params, 8)
    assert vb.generate(prompts, params, 8) == a
    for comps in a:
        assert len(comps) == 8 and len({c.text for c in comps}) > 1
        assert all(1 <= c.generated_tokens <= 64 and c.finish_reason in ("stop", "length") for c in comps)
        assert all(c.generated_tokens == 64 for c in comps if c.finish_reason == "length")

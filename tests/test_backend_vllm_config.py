"""Engine arguments and server options: parsing, validation, what the run id depends on (no vLLM needed)."""

from __future__ import annotations

import pytest

from ttc.backends.server import server_flags
from ttc.errors import TTCError
from ttc.sweep.config import BackendConfig, RunConfig, parse_engine_args


def test_engine_args_are_read_as_json_like_literals():
    got = parse_engine_args(["tensor_parallel_size=2", "gpu_memory_utilization=0.85", "enforce_eager=true",
                             "dtype=bfloat16", "quantization=None", "enable-prefix-caching=False",
                             'hf_overrides={"rope_theta": 1000000}', "served=a=b"])
    assert got == {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.85, "enforce_eager": True,
                   "dtype": "bfloat16", "quantization": None, "enable_prefix_caching": False,
                   "hf_overrides": {"rope_theta": 1000000}, "served": "a=b"}
    for bad in (["novalue"], ["=3"], ["a=1", "a=2"]):
        with pytest.raises(TTCError):
            parse_engine_args(bad)


def run(**backend) -> RunConfig:
    return RunConfig(backend=BackendConfig(**backend))


def test_run_id_ignores_where_the_engine_runs_but_not_what_it_samples():
    base = run(name="vllm")
    placed = run(name="vllm", engine_args={"tensor_parallel_size": 4, "gpu_memory_utilization": 0.5},
                 concurrency=8)
    assert placed.run_id == base.run_id
    assert run(name="vllm", engine_args={"quantization": "awq"}).run_id != base.run_id
    assert run(name="vllm", engine_args={"dtype": "float16"}).run_id != base.run_id
    a = run(name="openai", base_url="http://127.0.0.1:8000/v1", api_key_env="KEY")
    b = run(name="openai", base_url="http://10.0.0.2:9000/v1", retries=2, request_timeout=5)
    assert a.run_id == b.run_id != base.run_id
    assert RunConfig().run_id == run(name="hf", engine_args={}).run_id
    assert RunConfig.from_dict(placed.to_dict()) == placed


def test_headers_of_the_flat_layout_still_load_with_the_same_run_id():
    flat = {"sweep": {"tasks": ["chain_sum"], "models": ["smollm2-135m"], "samplers": ["sample"],
                      "budgets": [1, 2, 4, 8, 16], "limit": 20},
            "sampling": {"temperature": 0.7, "top_p": 1.0, "max_tokens": 256, "seed": 0},
            "backend": "vllm", "dtype": "auto", "out": "runs", "engine_args": {"max_model_len": 2048},
            "base_url": None, "api_key_env": None, "serve": False, "request_timeout": 600.0, "retries": 8,
            "concurrency": 4}
    config = RunConfig.from_dict(flat)
    assert config.backend == BackendConfig(name="vllm", engine_args={"max_model_len": 2048}, concurrency=4)
    assert config.run_id == "chain_sum-smollm2-135m-sample-182af1be70"  # the id this header was written under


@pytest.mark.parametrize("kwargs, msg", [
    (dict(engine_args={"tensor_parallel_size": 2}), "applies to --backend vllm"),
    (dict(name="openai", base_url="http://x/v1", engine_args={"a": 1}), "needs --serve"),
    (dict(name="openai", base_url="http://x/v1", serve=True), "not both"),
    (dict(name="vllm", engine_args={"bad key": 1}), "Python identifier"),
    (dict(name="openai", base_url="http://x/v1", request_timeout=0), "--request-timeout"),
    (dict(name="openai", base_url="http://x/v1", retries=-1), "--retries"),
    (dict(dtype="fp8"), "--dtype must be one of"),
])
def test_bad_backend_options(kwargs, msg):
    with pytest.raises(TTCError, match=msg):
        BackendConfig(**kwargs)


def test_engine_args_become_server_flags():
    assert server_flags({"max_model_len": 512, "enforce_eager": True, "enable_prefix_caching": False,
                         "quantization": None, "hf_overrides": {"a": 1}}) == [
        "--max-model-len", "512", "--enforce-eager", "--no-enable-prefix-caching", "--hf-overrides", '{"a": 1}']


def test_auto_dtype_is_float32_on_a_cpu_that_emulates_bfloat16(monkeypatch):
    from ttc.backends import vllm as vllm_module

    for device, native, want in (("cpu", False, "float32"), ("cpu", True, "auto"), ("cuda", False, "auto"),
                                 ("unknown", False, "auto")):
        monkeypatch.setattr(vllm_module, "_device_type", lambda: device)
        monkeypatch.setattr(vllm_module, "cpu_has_bf16", lambda: native)
        assert vllm_module.engine_dtype("auto") == want
        assert vllm_module.engine_dtype("bfloat16") == "bfloat16"  # a named dtype is never changed
    kwargs = vllm_module.engine_kwargs("/m", "float32", {"dtype": "bfloat16"})
    assert kwargs["dtype"] == "bfloat16"  # an engine argument still wins over --dtype

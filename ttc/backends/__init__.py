"""Backend registry: a plain dict from ``--backend`` name to a factory ``(model, RunConfig) -> Backend``.

A factory reads ``config.backend`` (a ``BackendConfig``); ``openai --serve`` also reads where the run lives."""

from __future__ import annotations

from ttc.backends.base import Backend, GenParams, ModelInfo, Prompt
from ttc.errors import TTCError


def _hf(model: str, config):
    from ttc.backends.hf import HFBackend

    b = config.backend
    return HFBackend(model, dtype=b.dtype, chat_template_kwargs=b.chat_template_kwargs, concurrency=b.concurrency)


def _vllm(model: str, config):
    from ttc.backends.vllm import VLLMBackend

    b = config.backend
    return VLLMBackend(model, dtype=b.dtype, engine_args=b.engine_args, concurrency=b.concurrency,
                       chat_template_kwargs=b.chat_template_kwargs)


def _openai(model: str, config):
    from ttc.backends.openai import OpenAIBackend

    b = config.backend
    kwargs = dict(api_key_env=b.api_key_env, timeout=b.request_timeout, retries=b.retries, concurrency=b.concurrency)
    if not b.serve:
        return OpenAIBackend(model, b.base_url, **kwargs)
    from pathlib import Path

    from ttc.backends.server import local_server

    server = local_server(model, b.dtype, b.engine_args, Path(config.out) / config.run_id / "server.log").start()
    try:
        return OpenAIBackend(model, server.base_url, on_close=server.stop, liveness=server.check, **kwargs)
    except BaseException:
        server.stop()
        raise


def resolve_auto_dtype(backend: str, dtype: str) -> str:
    """What ``--dtype auto`` stands for on this machine, resolved before the run id is hashed, so that naming
    the same dtype explicitly gives the same run (and resumes it). hf: bfloat16 on GPUs and on CPUs that
    compute it natively, float32 on other CPUs. vllm (and openai --serve): float32 on a CPU without native
    bfloat16; elsewhere vLLM picks from each model's config, so ``auto`` stays ``auto``. openai with a remote
    server: the server decides, ``auto`` stays."""
    if dtype != "auto":
        return dtype
    if backend == "hf":
        import torch

        from ttc.backends.base import cpu_has_bf16

        return "bfloat16" if torch.cuda.is_available() or cpu_has_bf16() else "float32"
    if backend in ("vllm", "openai"):
        from ttc.backends.vllm import engine_dtype

        return engine_dtype(dtype)
    return dtype


BACKENDS = {
    "hf": _hf,
    "vllm": _vllm,
    "openai": _openai,
}


def make_backend(name: str, model: str, config) -> Backend:
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise TTCError(f"unknown backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None
    return factory(model, config)


__all__ = ["BACKENDS", "Backend", "GenParams", "ModelInfo", "Prompt", "make_backend", "resolve_auto_dtype"]

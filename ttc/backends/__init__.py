"""Backend registry: a plain dict from ``--backend`` name to a factory ``(model, RunConfig) -> Backend``.

A factory reads ``config.backend`` (a ``BackendConfig``); ``openai --serve`` also reads where the run lives."""

from __future__ import annotations

from ttc.backends.base import Backend, GenParams, ModelInfo, Prompt
from ttc.errors import TTCError


def _hf(model: str, config):
    from ttc.backends.hf import HFBackend

    return HFBackend(model, dtype=config.backend.dtype)


def _vllm(model: str, config):
    from ttc.backends.vllm import VLLMBackend

    b = config.backend
    return VLLMBackend(model, dtype=b.dtype, engine_args=b.engine_args, concurrency=b.concurrency)


def _openai(model: str, config):
    from ttc.backends.openai import OpenAIBackend

    b = config.backend
    kwargs = dict(api_key_env=b.api_key_env, timeout=b.request_timeout, retries=b.retries, concurrency=b.concurrency)
    if not b.serve:
        return OpenAIBackend(model, b.base_url, **kwargs)
    from pathlib import Path

    from ttc.backends.vllm import engine_dtype
    from ttc.models import resolve_model
    from ttc.serve import LocalServer

    engine_args = dict(b.engine_args)
    dtype = engine_dtype(b.dtype)
    if dtype != "auto":
        engine_args.setdefault("dtype", dtype)
    server = LocalServer(resolve_model(model).path, model, engine_args,
                         Path(config.out) / config.run_id / "server.log").start()
    try:
        return OpenAIBackend(model, server.base_url, on_close=server.stop, liveness=server.check, **kwargs)
    except BaseException:
        server.stop()
        raise


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


__all__ = ["BACKENDS", "Backend", "GenParams", "ModelInfo", "Prompt", "make_backend"]

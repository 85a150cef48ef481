"""Backend registry: a plain dict from ``--backend`` name to a factory ``(model, RunConfig) -> Backend``."""

from __future__ import annotations

from ttc.backends.base import Backend, GenParams, ModelInfo, Prompt
from ttc.errors import TTCError


def _hf(model: str, config):
    from ttc.backends.hf import HFBackend

    return HFBackend(model, dtype=config.dtype)


def _vllm(model: str, config):
    from ttc.backends.vllm import VLLMBackend

    return VLLMBackend(model, dtype=config.dtype, engine_args=config.engine_args,
                       concurrency=config.concurrency)


def _openai(model: str, config):
    from ttc.backends.openai import OpenAIBackend

    kwargs = dict(api_key_env=config.api_key_env, timeout=config.request_timeout, retries=config.retries,
                  concurrency=config.concurrency)
    if not config.serve:
        return OpenAIBackend(model, config.base_url, **kwargs)
    from pathlib import Path

    from ttc.models import resolve_model
    from ttc.serve import LocalServer

    engine_args = dict(config.engine_args)
    if config.dtype != "auto":
        engine_args.setdefault("dtype", config.dtype)
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

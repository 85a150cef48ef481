"""Backend registry: a plain dict from ``--backend`` name to a factory ``(model, RunConfig) -> Backend``."""

from __future__ import annotations

from ttc.backends.base import Backend, GenParams, ModelInfo, Prompt
from ttc.errors import TTCError


def _hf(model: str, config):
    from ttc.backends.hf import HFBackend

    return HFBackend(model, dtype=config.dtype)


BACKENDS = {
    "hf": _hf,
}


def make_backend(name: str, model: str, config) -> Backend:
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise TTCError(f"unknown backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None
    return factory(model, config)


__all__ = ["BACKENDS", "Backend", "GenParams", "ModelInfo", "Prompt", "make_backend"]

"""Sampler registry: a plain dict from name to strategy object."""

from __future__ import annotations

from samplers.sample import RepeatedSampling
from ttc.errors import TTCError

SAMPLERS = {
    "sample": RepeatedSampling(),
}


def get_sampler(name: str):
    try:
        return SAMPLERS[name]
    except KeyError:
        raise TTCError(f"unknown sampler {name!r}; known: {', '.join(sorted(SAMPLERS))}") from None


__all__ = ["SAMPLERS", "get_sampler"]

"""Sampler registry: a plain dict from name to strategy object (the contract: ``samplers.base.Strategy``).

A strategy that needs the run's settings (budgets, verifier, thinking budgets, search shape) is
``configurable`` and has ``configure(config) -> strategy``; the runner calls it once per run.
``evaluate`` reads only the stored records, so the registry's unconfigured objects summarize any run.
"""

from __future__ import annotations

from samplers.best_of_n import BestOfN
from samplers.budget_forcing import BudgetForcing
from samplers.sample import RepeatedSampling
from samplers.search import DVTS, BeamSearch
from ttc.errors import TTCError

SAMPLERS = {
    "sample": RepeatedSampling(),
    "best_of_n": BestOfN(),
    "budget_forcing": BudgetForcing(),
    "beam": BeamSearch(),
    "dvts": DVTS(),
}


def get_sampler(name: str):
    try:
        return SAMPLERS[name]
    except KeyError:
        raise TTCError(f"unknown sampler {name!r}; known: {', '.join(sorted(SAMPLERS))}") from None


def configure_sampler(sampler, config):
    """The strategy set up with the run's config (the registry's object itself if it takes none)."""
    return sampler.configure(config) if sampler.configurable else sampler


__all__ = ["SAMPLERS", "configure_sampler", "get_sampler"]

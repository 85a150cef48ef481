"""Sampler registry: a plain dict from name to strategy object (the contract: ``samplers.base.Strategy``).

A strategy that needs the run's settings (budgets, verifier, thinking budgets, search shape) is
``configurable`` and has ``configure(config) -> strategy``; the runner calls it once per run.
``evaluate`` reads only the stored records, so the registry's unconfigured objects summarize any run.
"""

from __future__ import annotations

from samplers.best_of_n import BestOfN
from samplers.budget_forcing import BudgetForcing
from samplers.imported import ImportedRecords
from samplers.sample import RepeatedSampling
from samplers.search import DVTS, BeamSearch
from ttc.errors import TTCError

SAMPLERS = {
    "sample": RepeatedSampling(),
    "best_of_n": BestOfN(),
    "budget_forcing": BudgetForcing(),
    "beam": BeamSearch(),
    "dvts": DVTS(),
    "imported": ImportedRecords(),  # evaluates `ttc import`'s records (labels imported:<filter>); never runs
}


def get_sampler(name: str):
    """The strategy that ``--sampler name`` runs (one that only evaluates imported records is refused)."""
    runnable = sorted(k for k, s in SAMPLERS.items() if getattr(s, "generates", True))
    s = SAMPLERS.get(name)
    if s is None:
        raise TTCError(f"unknown sampler {name!r}; known: {', '.join(runnable)}")
    if not getattr(s, "generates", True):
        raise TTCError(f"sampler {name!r} only evaluates records that `ttc import` brought in; it cannot run; "
                       f"known: {', '.join(runnable)}")
    return s


def configure_sampler(sampler, config):
    """The strategy set up with the run's config (the registry's object itself if it takes none)."""
    return sampler.configure(config) if sampler.configurable else sampler


__all__ = ["SAMPLERS", "configure_sampler", "get_sampler"]

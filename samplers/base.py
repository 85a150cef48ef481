"""The strategy contract: what every sampler in ``samplers/`` provides, and what it hands back.

A strategy generates a problem's records once (``run``) and later scores the stored records at every
budget (``evaluate``); nothing downstream generates again. ``docs/strategies.md`` walks through adding one.

* ``n_generations(budgets)``: how many outputs (stored records) ``run`` writes per problem for a sweep
  over ``budgets``. It is records, not samples: a search writes its final paths at every budget, budget
  forcing one record per chain and thought cap.
* ``run(ctx, task, problem, seed)``: one problem's outputs, generated through the metered
  ``ttc.sweep.context.ModelContext`` (never a backend), ``seed`` the problem's sampling seed.
* ``evaluate(df, budgets, seed=0)``: a DataFrame with columns problem_id, budget, metric, value, se,
  flops, tokens from all stored records of one (task, model, sampler); ``metrics`` names the metrics it
  reports, ``columns`` the record columns it reads.
* ``configure(config)`` (optional, ``configurable = True``): the strategy set up with the run's config.

Capabilities are plain class attributes, read as such (no probing):
``configurable`` (has ``configure``), ``grades_while_generating`` (``run`` grades candidates with the
task, as search and best-of-n do), ``name`` (the ``--sampler`` name), and optionally ``strategy_fields``
(the ``StrategyConfig`` fields that it reads; ``ttc.sweep.preflight`` refuses such a setting, given other than
its default, when no strategy of the sweep reads it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import pandas as pd

from ttc.store.records import Completion
from ttc.sweep.context import Cost, ModelContext

__all__ = ["Cost", "ModelContext", "Output", "Strategy"]


@dataclass(frozen=True)
class Output:
    """One record's worth of a strategy run: the completion, what it cost, and the strategy's own fields
    (stored as the record's ``extra``; JSON values only)."""

    completion: Completion
    cost: Cost
    fields: dict = field(default_factory=dict)


class Strategy(Protocol):
    name: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]  # the metrics evaluate reports, e.g. ("pass@k", "maj@k", "mean@k")
    columns: ClassVar[tuple[str, ...]]  # the record columns evaluate reads
    configurable: ClassVar[bool]  # has configure(config)
    grades_while_generating: ClassVar[bool]  # run() calls task.extract / task.grade on candidates

    def n_generations(self, budgets: tuple[int, ...]) -> int:
        """Outputs ``run`` returns per problem for a sweep over ``budgets``."""
        ...

    def run(self, ctx: ModelContext, task, problem, seed: int) -> list[Output]:
        """Generate one problem's outputs through ``ctx``; ``seed`` fixes every sample drawn."""
        ...

    def evaluate(self, df: pd.DataFrame, budgets: tuple[int, ...], seed: int = 0) -> pd.DataFrame:
        """Columns problem_id, budget, metric, value, se, flops, tokens: every metric of ``metrics`` at
        each budget, from the stored records of one (task, model, sampler)."""
        ...

    def configure(self, config) -> "Strategy":
        """The strategy set up with the run's ``RunConfig`` (only when ``configurable``)."""
        ...

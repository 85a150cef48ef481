"""The metrics stage: inference FLOPs from token counts (``flops``), the unbiased estimators of every budget
from one set of samples (``estimators``, ``voting``), per-problem tables (``tables``), the run's summary
(``summary``) and the extraction routes of its answers (``routes``); ``workers`` spreads the exact votes
over the cores."""

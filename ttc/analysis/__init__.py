"""Analysis of stored runs: curve fits, pretraining references, the exchange rate, figures.

Data flow: run directories -> ``summary.csv`` and per-problem values -> fits (with CIs from resampling
problems) -> tables and figures. Nothing here generates text. A notebook needs::

    from ttc.analysis import *
    summary = load_summary(run_dir)
    pp, header = run_per_problem(run_dir)
    fits, table = fit_run_curves(pp)
    curve = family_curve("SmolLM2", "gsm8k", "instruct_5shot")
"""

from ttc.analysis.bootstrap import fit_curve, fit_with_ci, problem_matrix
from ttc.analysis.chinchilla import BESIROGLU_2024, HOFFMANN_2022, ChinchillaLaw, fit_chinchilla
from ttc.analysis.exchange import (
                                   anchored_compute,
                                   breakeven_ratio,
                                   flops_matched_table,
                                   frontier,
                                   k_to_reach,
                                   run_frontier,
                                   snell_multiplier,
)
from ttc.analysis.fits import FitError, FitResult, fit_coverage_brown, fit_neglog_pass, fit_power_law, fit_sigmoid
from ttc.analysis.reference import FamilyCurve, family_curve, family_curves, load_reference, pretraining_flops
from ttc.analysis.runs import (
                                   exchange_table,
                                   fit_run_curves,
                                   load_summary,
                                   matched_table,
                                   model_identity,
                                   run_per_problem,
)
from ttc.store.runstore import load_run

__all__ = [
    "BESIROGLU_2024", "HOFFMANN_2022", "ChinchillaLaw", "FamilyCurve", "FitError", "FitResult",
    "anchored_compute", "breakeven_ratio", "exchange_table", "family_curve", "family_curves",
    "fit_chinchilla", "fit_coverage_brown", "fit_curve", "fit_neglog_pass", "fit_power_law",
    "fit_run_curves", "fit_sigmoid", "fit_with_ci", "flops_matched_table", "frontier", "k_to_reach",
    "load_reference", "load_run", "load_summary", "matched_table", "model_identity", "pretraining_flops",
    "problem_matrix", "run_frontier", "run_per_problem", "snell_multiplier",
]

"""Published open model families: parameters, pretraining tokens, scores; and their accuracy-vs-compute fits.

The table is ``ttc/data/pretraining_reference.csv``: one row per (model, benchmark, setting) with its
source (model card or report URL, and the table it comes from). Only numbers read from those sources are
in it; see the README's Analysis section for what was left out. Scores are percentages as published.

Pretraining compute is ``6 * params * tokens`` (the 6ND convention ``ttc.metrics.flops`` pairs with 2N per
inference token). Fits compare like with like: one family, one benchmark, one setting (base few-shot and
instruct scores are different curves).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from ttc.analysis.fits import FitError, FitResult, fit_sigmoid

REFERENCE_COLUMNS = ["family", "model", "params", "tokens", "benchmark", "setting", "score", "source",
                     "source_table", "note"]


def load_reference(path=None) -> pd.DataFrame:
    """The reference table, with ``compute = 6 N D`` and ``accuracy = score / 100`` added."""
    if path is None:
        with resources.files("ttc.data").joinpath("pretraining_reference.csv").open() as f:
            df = pd.read_csv(f)
    else:
        df = pd.read_csv(path)
    missing = set(REFERENCE_COLUMNS) - set(df.columns)
    if missing:
        raise FitError(f"reference table lacks columns {sorted(missing)}")
    if df["source"].isna().any() or (df["source"].astype(str).str.strip() == "").any():
        raise FitError("every reference row needs a source")
    df = df.copy()
    df["compute"] = pretraining_flops(df["params"], df["tokens"])
    df["accuracy"] = df["score"] / 100.0
    return df


def pretraining_flops(params, tokens):
    """``6 N D``."""
    return 6.0 * np.asarray(params, dtype=float) * np.asarray(tokens, dtype=float)


@dataclass(frozen=True)
class FamilyCurve:
    """A family's accuracy against pretraining compute, and its tokens-per-parameter trend."""

    family: str
    benchmark: str
    setting: str
    fit: FitResult
    rows: pd.DataFrame
    tokens_slope: float      # log D = tokens_icpt + tokens_slope * log N across the family
    tokens_icpt: float

    @property
    def label(self) -> str:
        return f"{self.family} {self.benchmark} ({self.setting})"

    def compute_for(self, accuracy):
        """Pretraining compute at which the family curve reaches ``accuracy`` (nan outside the curve)."""
        from ttc.analysis.forms import sigmoid_inverse

        return sigmoid_inverse(accuracy, **self.fit.params)

    def tokens_for(self, params):
        return np.exp(self.tokens_icpt + self.tokens_slope * np.log(np.asarray(params, dtype=float)))

    def params_for_compute(self, compute):
        """The N with ``6 N D(N) = compute`` along the family's own tokens-per-parameter trend."""
        # 6 N exp(c0) N^s = C  =>  N = (C / (6 e^c0))^(1/(1+s))
        c = np.asarray(compute, dtype=float)
        return (c / (6.0 * np.exp(self.tokens_icpt))) ** (1.0 / (1.0 + self.tokens_slope))


def family_curve(family: str, benchmark: str, setting: str, ref: pd.DataFrame | None = None,
                 floor: float = 0.0, ceiling: float = 1.0) -> FamilyCurve:
    """Fit the sigmoid in log compute to one family's rows (floor and ceiling fixed by default: a family
    has few sizes, and two free parameters already need three of them)."""
    ref = load_reference() if ref is None else ref
    rows = ref[(ref["family"] == family) & (ref["benchmark"] == benchmark) & (ref["setting"] == setting)]
    if rows.empty:
        have = ref[["family", "benchmark", "setting"]].drop_duplicates().to_records(index=False).tolist()
        raise FitError(f"no reference rows for {family}/{benchmark}/{setting}; have {have}")
    rows = rows.sort_values("compute")
    fit = fit_sigmoid(rows["compute"], rows["accuracy"], floor=floor, ceiling=ceiling)
    logN, logD = np.log(rows["params"].to_numpy(float)), np.log(rows["tokens"].to_numpy(float))
    if np.unique(logN).size >= 2:
        slope, icpt = np.polyfit(logN, logD, 1)
    else:
        slope, icpt = 0.0, float(logD.mean())
    return FamilyCurve(family, benchmark, setting, fit, rows.reset_index(drop=True), float(slope), float(icpt))


def family_curves(ref: pd.DataFrame | None = None, min_points: int = 3) -> list[FamilyCurve]:
    """Every (family, benchmark, setting) with at least ``min_points`` sizes that a sigmoid fits."""
    ref = load_reference() if ref is None else ref
    out = []
    for (fam, bench, setting), g in ref.groupby(["family", "benchmark", "setting"], sort=True):
        if len(g) >= min_points:
            out.append(family_curve(fam, bench, setting, ref))
    return out

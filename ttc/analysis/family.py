"""Pretraining curves measured by ttc: a family's members (sizes, or checkpoints of one training run via
``--model ID@REVISION``) run on the same task, prompt and grader, their single-sample accuracy fitted
against pretraining compute ``6 N D``, and test-time compute priced along that measured curve.

* ``N`` is each member's parameter count as loaded (the run header); ``D`` its pretraining tokens, from
  ``ttc/data/families.csv`` (one row per open model with its source; a revision ``stepN`` of a family
  with published tokens per step is ``N x tokens_per_step`` tokens, an OLMo revision names its tokens) or
  from ``--pretrain-tokens MODEL=D``. An unknown D is an error that says how to give it.
* The curve is ``ttc.analysis.fits.fit_sigmoid`` of accuracy at k = 1 against ``6 N D``, floor 0 and
  ceiling 1 fixed (a family has few members), at least three members.
* Per member and budget k: ``C_eff_raw`` reads the member's accuracy at k off the measured curve (like
  with like: same task); ``C_eff`` shifts the curve through the member's own k = 1 point first (so k = 1 is
  exactly ``C_0``); effective parameters and capability density as in ``ttc.analysis.exchange``.
* CIs resample problems jointly across members (they answered the same problems): each replicate
  recomputes every member's accuracies, refits the family curve and recomputes every derived number.
* Snell's FLOPs-matched comparison uses each larger member's *measured* k = 1 accuracy.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ttc.analysis.exchange import anchored_compute, flops_matched_table
from ttc.analysis.fits import FitError, fit_sigmoid
from ttc.analysis.reference import FamilyCurve, pretraining_flops
from ttc.errors import TTCError

FAMILY_COLUMNS = ["family", "model", "params", "tokens", "tokens_per_step", "revision_tokens", "stage_tokens",
                  "source", "note"]
STEP = re.compile(r"^step(\d+)$")
STAGE = re.compile(r"^(stage\d+)-", re.IGNORECASE)


def load_families(path=None) -> pd.DataFrame:
    """The family table (``ttc/data/families.csv`` unless ``path``); every row needs a source."""
    if path is None:
        with resources.files("ttc.data").joinpath("families.csv").open() as f:
            df = pd.read_csv(f)
    else:
        if not Path(path).is_file():
            raise TTCError(f"family table {path}: no such file")
        df = pd.read_csv(path)
    missing = set(FAMILY_COLUMNS[:4] + ["source"]) - set(df.columns)
    if missing:
        raise TTCError(f"family table lacks columns {sorted(missing)}")
    if df["source"].isna().any() or (df["source"].astype(str).str.strip() == "").any():
        raise TTCError("every family table row needs a source")
    for c in ("tokens_per_step", "revision_tokens", "stage_tokens", "note"):
        if c not in df.columns:
            df[c] = np.nan
    return df


def parse_pretrain_tokens(items) -> dict[str, float]:
    """``["org/m@step3=6.3e9", ...]`` -> ``{"org/m@step3": 6.3e9}`` (the last ``=`` splits)."""
    out = {}
    for item in items or []:
        model, sep, d = item.rpartition("=")
        try:
            value = float(d)
        except ValueError:
            value = float("nan")
        if not sep or not model or not np.isfinite(value) or value <= 0:
            raise TTCError(f"--pretrain-tokens must look like MODEL=TOKENS (e.g. EleutherAI/pythia-70m=3e11), "
                           f"got {item!r}")
        out[model] = value
    return out


def _names(model: str, identity: dict | None) -> list[str]:
    base = model.rpartition("@")[0] if "@" in model and not Path(model).is_dir() else model
    names = [base, (identity or {}).get("original") or "", (identity or {}).get("hub_id") or ""]
    return [n for n in names if n]


def pretrain_tokens(model: str, identity: dict | None = None, families: pd.DataFrame | None = None,
                    overrides: dict | None = None) -> tuple[float, str]:
    """(D, where it came from) for a run's model name; ``TTCError`` saying how to give D if unknown."""
    overrides = overrides or {}
    if model in overrides:
        return float(overrides[model]), "--pretrain-tokens"
    fam = load_families() if families is None else families
    rev = model.rpartition("@")[2] if "@" in model and not Path(model).is_dir() else None
    lower = fam["model"].astype(str).str.lower()
    short = lower.str.rsplit("/", n=1).str[-1]
    row = None
    for name in _names(model, identity):
        n = name.lower().rstrip("/")
        hit = fam[(lower == n) | (short == n.rsplit("/", 1)[-1])]
        if len(hit):
            row = hit.iloc[0]
            break
    how = (f"pass --pretrain-tokens '{model}=D' (D = pretraining tokens, e.g. 2e12), or add the model to "
           f"ttc/data/families.csv with its source")
    if row is None:
        raise TTCError(f"pretraining tokens of {model} are unknown: {how}")
    if rev is None or rev == "main":
        return _positive(float(row["tokens"]), model, rev, how), str(row["source"])
    m = STEP.match(rev)
    if m and pd.notna(row["tokens_per_step"]):
        d = int(m.group(1)) * float(row["tokens_per_step"])
        return _positive(d, model, rev, how), f"{row['source']} (step x tokens per step)"
    if pd.notna(row["revision_tokens"]):
        t = re.search(str(row["revision_tokens"]), rev)
        if t:
            named = float(t.group(1)) * 1e9
            before, stage = _stage_offset(row, rev)
            if before is None:
                raise TTCError(f"pretraining tokens of {model} are unknown: revision {rev} names the tokens of "
                               f"its own training stage ({stage}) only, and the family table gives no tokens seen "
                               f"before {stage} for {row['model']}; {how}")
            where = "tokens named in the revision" + (f" + {before:.6g} before {stage}" if before else "")
            return _positive(before + named, model, rev, how), f"{row['source']} ({where})"
    raise TTCError(f"pretraining tokens of {model} (revision {rev}) are unknown: the family table gives no "
                   f"tokens per step for {row['model']}; {how}")


def _stage_offset(row, rev: str) -> tuple[float | None, str]:
    """Tokens seen before the training stage a revision belongs to: 0 for none or ``stage1``, the table's
    ``stage_tokens`` entry (``stage2=3895023632384;...``) for a later stage, None when it is not given.
    OLMo 2's stage-2 revisions (``stage2-ingredient1-step11931-tokens50B``) count the 50B of stage 2 only,
    after the 3.9T of stage 1."""
    m = STAGE.match(rev)
    if m is None or m.group(1).lower() == "stage1":
        return 0.0, ""
    stage = m.group(1).lower()
    table = str(row["stage_tokens"]) if pd.notna(row.get("stage_tokens")) else ""
    for item in filter(None, table.split(";")):
        name, _, value = item.partition("=")
        if name.strip().lower() == stage:
            return float(value), stage
    return None, stage


def _positive(d: float, model: str, rev: str | None, how: str) -> float:
    """D must be positive: 6ND is read on a log scale, and a checkpoint at step 0 has seen nothing."""
    if not (np.isfinite(d) and d > 0):
        at = f" at revision {rev}" if rev else ""
        raise TTCError(f"{model}{at} has seen {d:.6g} pretraining tokens: an untrained checkpoint has no place on a "
                       f"curve of log 6ND; leave it out of the family, or {how}")
    return d


def member_values(pp: pd.DataFrame, models: list[str], metric: str, sampler: str) -> tuple[np.ndarray, dict]:
    """Budgets and ``{model: values[problem, budget]}`` over the problems every member answered."""
    g = pp[(pp["metric"] == metric) & (pp["sampler"] == sampler) & (pp["model"].isin(models))]
    tables = {m: g[g["model"] == m].pivot_table(index="problem_id", columns="budget", values="value")
              for m in models}
    common = sorted(set.intersection(*(set(t.index) for t in tables.values())))
    budgets = sorted(set.intersection(*(set(t.columns) for t in tables.values())))
    if 1 not in budgets:
        raise TTCError(f"every member needs {metric} at budget 1 from {sampler}")
    if len(common) < 2:
        raise TTCError(f"members share {len(common)} problems; a measured family curve needs the same problems")
    return np.array(budgets), {m: tables[m].loc[common, budgets].to_numpy(float) for m in models}


def _derived(curve_fit, acc: dict, budgets, members: pd.DataFrame, tokens_slope: float) -> dict:
    """Per member and budget: C_eff_raw, C_eff (anchored at the member's k = 1), densities."""
    from ttc.analysis.forms import sigmoid_inverse

    out = {}
    i1 = int(np.flatnonzero(budgets == 1)[0])
    for _, m in members.iterrows():
        a = acc[m["model"]]
        c0 = float(m["compute"])
        raw = sigmoid_inverse(a, **curve_fit.params)
        try:
            anc = anchored_compute(a, a[i1], c0, _Curve(curve_fit))
        except ValueError:
            anc = np.full(a.shape, np.nan)
        dens = (anc / c0) ** (1.0 / (1.0 + tokens_slope))
        out[m["model"]] = dict(C_eff_raw=raw, C_eff=anc, density=dens)
    return out


class _Curve:  # what anchored_compute reads from a FamilyCurve
    def __init__(self, fit):
        self.fit = fit


def measured_family(pp: pd.DataFrame, members: pd.DataFrame, task: str, metric: str = "maj@k",
                    sampler: str | None = None, n_boot: int = 200, seed: int = 0, level: float = 0.95):
    """Fit the measured family curve and price every member's test-time budgets along it.

    ``members``: model, params (as loaded), tokens, source. Returns ``(curve, exchange, matched)``;
    ``curve.fit.ci`` holds the CIs of mid and slope from the joint bootstrap."""
    pp = pp[pp["task"] == task]
    models = list(members["model"])
    if len(models) < 3:
        raise TTCError(f"a measured family curve needs at least 3 members on {task}, have {len(models)}")
    if sampler is None:
        have = [set(pp[pp["model"] == m]["sampler"]) for m in models]
        shared = sorted(set.intersection(*have))
        if not shared:
            raise TTCError("the members share no sampler; run them with the same one")
        sampler = "sample" if "sample" in shared else shared[0]
    budgets, vals = member_values(pp, models, metric, sampler)
    members = members.copy()
    members["compute"] = pretraining_flops(members["params"], members["tokens"])
    if members["compute"].nunique() < 3:
        raise TTCError("the members' 6ND take fewer than 3 distinct values; the curve is not identified")
    i1 = int(np.flatnonzero(budgets == 1)[0])
    logN, logD = np.log(members["params"].to_numpy(float)), np.log(members["tokens"].to_numpy(float))
    s, icpt = np.polyfit(logN, logD, 1) if np.unique(logN).size >= 2 else (0.0, float(logD.mean()))

    def fit_and_derive(idx):
        acc = {m: v[idx].mean(axis=0) for m, v in vals.items()}
        a1 = np.array([acc[m][i1] for m in models])
        f = fit_sigmoid(members["compute"].to_numpy(float), a1, floor=0.0, ceiling=1.0)
        return f, acc, _derived(f, acc, budgets, members, s)

    n = next(iter(vals.values())).shape[0]
    fit, acc, point = fit_and_derive(np.arange(n))
    rng = np.random.default_rng(seed)
    draws, failed = [], 0
    for _ in range(n_boot):
        try:
            draws.append(fit_and_derive(rng.integers(0, n, n)))
        except FitError:
            failed += 1
    if n_boot and failed > n_boot / 2:
        raise TTCError(f"the measured family curve could not be refitted in {failed} of {n_boot} problem "
                       f"resamples; too few problems or members")
    a = (1 - level) / 2

    def q(vs):
        vs = np.asarray(vs, dtype=float)
        vs = vs[np.isfinite(vs)]
        return (float(np.quantile(vs, a)), float(np.quantile(vs, 1 - a))) if vs.size >= max(1, len(draws) / 2) \
            else (np.nan, np.nan)

    fit = fit.with_ci({k: q([d[0].params[k] for d in draws]) for k in fit.free}, len(draws), failed,
                      np.array([[d[0].params[k] for k in fit.free] for d in draws]) if draws else None)
    rows = members.assign(accuracy=[acc[m][i1] for m in models], score=[100 * acc[m][i1] for m in models])
    curve = FamilyCurve(f"measured: {', '.join(models)}", task, f"{sampler} {metric} at k=1", fit,
                        rows.sort_values("compute").reset_index(drop=True), float(s), float(icpt))
    ex = []
    for _, m in members.iterrows():
        name, c0, N = m["model"], float(m["compute"]), float(m["params"])
        for j, k in enumerate(budgets):
            p = point[name]
            lo_hi = {key: q([d[2][name][key][j] for d in draws]) for key in ("C_eff", "C_eff_raw", "density")}
            raw = p["C_eff_raw"][j]
            ex.append(dict(task=task, model=name, sampler=sampler, metric=metric, budget=int(k),
                           accuracy=acc[name][j], pretrain_flops=c0, C_eff=p["C_eff"][j],
                           C_eff_low=lo_hi["C_eff"][0], C_eff_high=lo_hi["C_eff"][1], multiplier=p["C_eff"][j] / c0,
                           N_eff=N * p["density"][j], density=p["density"][j], density_low=lo_hi["density"][0],
                           density_high=lo_hi["density"][1], C_eff_raw=raw,
                           density_raw=curve.params_for_compute(raw) / N if np.isfinite(raw) else np.nan,
                           extrapolated=bool(not np.isfinite(p["C_eff"][j]) or not (
                               members["compute"].min() / 1.05 <= p["C_eff"][j] <= members["compute"].max() * 1.05)),
                           ci="joint (members and budgets)"))
    matched = []
    for _, m in members.iterrows():
        bigger = members[members["params"] > m["params"] * 1.05].assign(
            accuracy=lambda d: [acc[x][i1] for x in d["model"]])
        if bigger.empty:
            continue
        t = flops_matched_table(budgets, acc[m["model"]], float(m["params"]), bigger)
        t.insert(0, "model", m["model"])
        matched.append(t)
    return curve, pd.DataFrame(ex), (pd.concat(matched, ignore_index=True) if matched else pd.DataFrame())


def family_members(header_models: dict, models: list[str], families=None, overrides=None) -> pd.DataFrame:
    """model, params (as loaded, from the run headers), tokens and their source, for each model."""
    rows = []
    for m in models:
        info = header_models.get(m, {})
        spec = info.get("spec", {})
        n = spec.get("n_params_total") or spec.get("n_params_nonembed")
        if not n:
            raise TTCError(f"the run header has no parameter count for {m}")
        d, src = pretrain_tokens(m, info.get("identity"), families, overrides)
        rows.append(dict(model=m, params=float(n), tokens=d, source=src))
    return pd.DataFrame(rows)


__all__ = ["load_families", "parse_pretrain_tokens", "pretrain_tokens", "measured_family", "family_members"]

"""Exchange rate, FLOPs-matched comparison and frontier: estimators against hand calculations."""

import math

import numpy as np
import pandas as pd
import pytest

from ttc.analysis.exchange import (
    anchored_compute,
    anchored_params,
    best_at,
    breakeven_ratio,
    flops_matched_table,
    frontier,
    k_to_reach,
    snell_multiplier,
)
from ttc.analysis.fits import fit_sigmoid
from ttc.analysis.forms import sigmoid
from ttc.analysis.reference import FamilyCurve
from ttc.analysis.runs import exchange_table, k_from_fit


def curve(mid=23.0, slope=2.0, tokens_slope=0.0, tokens_icpt=math.log(1e12)):
    x = np.array([1e21, 1e22, 1e23, 1e24])
    fit = fit_sigmoid(x, sigmoid(x, 0.0, 1.0, mid, slope), floor=0.0, ceiling=1.0)
    rows = pd.DataFrame(dict(model=["a", "b", "c", "d"], params=x / 6e12, tokens=1e12, compute=x,
                             accuracy=sigmoid(x, 0.0, 1.0, mid, slope)))
    return FamilyCurve("F", "bench", "base", fit, rows, tokens_slope, tokens_icpt)


def test_snell_multiplier_by_hand():
    # M = 4: k = 4 + 3 (3) / R
    assert snell_multiplier(4, 1.0) == pytest.approx(13.0)
    assert snell_multiplier(4, 3.0) == pytest.approx(7.0)
    assert snell_multiplier(1, 0.5) == pytest.approx(1.0)  # same model: no multiplier
    with pytest.raises(ValueError):
        snell_multiplier(0.5, 1.0)


def test_breakeven_ratio_inverts_the_multiplier():
    assert breakeven_ratio(7.0, 4.0) == pytest.approx(3.0)        # k(R=3) = 7 above
    assert snell_multiplier(4, breakeven_ratio(10.0, 4.0)) == pytest.approx(10.0)
    assert breakeven_ratio(3.0, 4.0) == math.inf                  # already matched at k <= M
    assert breakeven_ratio(math.inf, 4.0) == 0.0                  # never matched


def test_k_to_reach_interpolates_in_log_k():
    # between k=1 (0.2) and k=4 (0.4), 0.3 is half-way in log k: k = 2
    assert k_to_reach(0.3, [1, 4], [0.2, 0.4]) == pytest.approx(2.0)
    assert k_to_reach(0.1, [1, 4], [0.2, 0.4]) == 1.0
    assert k_to_reach(0.5, [1, 4], [0.2, 0.4]) == math.inf


def test_flops_matched_table_by_hand():
    big = pd.DataFrame(dict(model=["big"], params=[4.0], accuracy=[0.3]))
    t = flops_matched_table([1, 4, 16], [0.2, 0.4, 0.5], n_small=1.0, larger=big, ratios=(1.0, 3.0))
    r = t.iloc[0]
    assert r["M"] == 4.0 and r["k_needed"] == pytest.approx(2.0)
    assert r["breakeven_R"] == math.inf  # k = 2 <= M = 4: wins at every R
    assert r["k@R=1"] == pytest.approx(13.0) and r["wins@R=1"]


def test_anchored_compute_by_hand():
    c = curve(slope=2.0)
    # anchor accuracy 0.5 at C0 = 1e21; accuracy sigma(2) is one decade (slope 2 per decade) further
    acc = 1 / (1 + math.exp(-2))
    assert anchored_compute(acc, 0.5, 1e21, c) == pytest.approx(1e22)
    assert anchored_compute(0.5, 0.5, 1e21, c) == pytest.approx(1e21)
    assert anchored_params(c, 0.5, 1e21)["mid"] == pytest.approx(21.0)
    with pytest.raises(ValueError):
        anchored_compute(0.4, 0.0, 1e21, c)  # an anchor on the floor places nothing


def test_family_curve_params_for_compute_by_hand():
    # D = 1e12 for every size (slope 0): N = C / (6e12)
    c = curve()
    assert c.params_for_compute(6e21) == pytest.approx(1e9)
    # D = 20 N (slope 1, icpt log 20): C = 120 N^2
    c2 = curve(tokens_slope=1.0, tokens_icpt=math.log(20))
    assert c2.params_for_compute(120e18) == pytest.approx(1e9)


def test_exchange_table_by_hand():
    """Accuracy 0.5 at k=1 and sigma(2) at k=4 on a family with slope 2 and D ~ N (s = 1): C_eff is ten
    times C0, and N_eff = N sqrt(10)."""
    acc4 = 1 / (1 + math.exp(-2))
    s = pd.DataFrame(dict(task="t", model="m", sampler="s", metric="maj@k", budget=[1, 4], value=[0.5, acc4],
                          ci_low=[0.4, 0.8], ci_high=[0.6, 0.9], flops_per_problem=[1e9, 4e9]))
    c = curve(tokens_slope=1.0, tokens_icpt=math.log(20))
    t = exchange_table(s, c, n_params=1e8, tokens=1e12)
    c0 = 6 * 1e8 * 1e12
    assert t["pretrain_flops"].iloc[0] == pytest.approx(c0)
    assert t["multiplier"].tolist() == pytest.approx([1.0, 10.0])
    assert t["density"].tolist() == pytest.approx([1.0, math.sqrt(10)])
    assert t["N_eff"].iloc[1] == pytest.approx(1e8 * math.sqrt(10))
    assert (t["C_eff_low"] <= t["C_eff"]).all() and (t["C_eff"] <= t["C_eff_high"]).all()
    assert (t["ci"] == "marginal").all()
    # raw: read off the unshifted curve (mid 23): accuracy 0.5 is at 1e23
    assert t["C_eff_raw"].iloc[0] == pytest.approx(1e23)


def test_k_from_fit_converts_flops_to_k():
    x = np.array([1e9, 2e9, 4e9, 8e9, 16e9])
    fit = fit_sigmoid(x, sigmoid(x, 0.0, 1.0, 10.0, 2.0), floor=0, ceiling=1)
    # accuracy 0.5 at 1e10 FLOPs; cost is 1e9 per k with no prefill: k = 10
    assert k_from_fit(fit, 0.5, [1, 2, 4, 8, 16], x) == pytest.approx(10.0, rel=1e-3)
    assert k_from_fit(fit, 1.0, [1, 2, 4, 8, 16], x) == math.inf


def test_frontier_by_hand():
    pts = pd.DataFrame(dict(task="t", model=["a", "a", "b", "b", "c"], sampler="s", budget=[1, 2, 1, 2, 1],
                            flops_per_problem=[1.0, 2.0, 1.5, 3.0, 5.0], value=[0.2, 0.3, 0.25, 0.5, 0.45]))
    f = frontier(pts)
    # b@1 (0.25 at 1.5) beats a@1; a@2 (0.3 at 2) beats both; c (0.45 at 5) loses to b@2 (0.5 at 3)
    assert list(zip(f["model"], f["budget"])) == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert best_at(f, 2.5)["model"] == "a" and best_at(f, 10)["value"] == 0.5
    assert best_at(f, 0.5) is None


def test_frontier_per_level():
    pts = pd.DataFrame(dict(task="t", level=["all", "all", "1", "1"], model=["a", "b", "a", "b"], sampler="s",
                            budget=1, flops_per_problem=[1.0, 2.0, 1.0, 2.0], value=[0.5, 0.4, 0.1, 0.6]))
    f = frontier(pts, by=("task", "level"))
    assert sorted(zip(f["level"], f["model"])) == [("1", "a"), ("1", "b"), ("all", "a")]

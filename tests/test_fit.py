"""Curve fits: forms against hand calculations, recovery of known parameters, loud failure on bad data."""

import math

import numpy as np
import pytest

from ttc.analysis import forms
from ttc.analysis.fits import FitError, fit_coverage_brown, fit_neglog_pass, fit_power_law, fit_sigmoid

# ---- the forms, by hand ---------------------------------------------------------------------------

def test_sigmoid_by_hand():
    # floor 0.1, ceiling 0.9, mid 20, slope 2: at 1e20 half-way; at 1e21 z = 2
    assert forms.sigmoid(1e20, 0.1, 0.9, 20, 2) == pytest.approx(0.5)
    assert forms.sigmoid(1e21, 0.1, 0.9, 20, 2) == pytest.approx(0.1 + 0.8 / (1 + math.exp(-2)))
    assert forms.sigmoid_inverse(0.1 + 0.8 / (1 + math.exp(-2)), 0.1, 0.9, 20, 2) == pytest.approx(1e21)
    assert np.isnan(forms.sigmoid_inverse(0.95, 0.1, 0.9, 20, 2))  # above the ceiling: unreachable


def test_power_law_and_coverage_forms_by_hand():
    assert forms.power_law(4.0, 2.0, 0.5) == pytest.approx(4.0)
    assert forms.power_law_inverse(4.0, 2.0, 0.5) == pytest.approx(4.0)
    # Brown et al.: log c = a k^b with a=-2, b=-0.5 at k=4: log c = -1
    assert forms.coverage_brown(4, -2.0, -0.5) == pytest.approx(math.exp(-1))
    # Schaeffer et al.: -log pass@k = a k^-b with a=2, b=0.5 at k=4: -log p = 1
    assert forms.neglog_pass(4, 2.0, 0.5) == pytest.approx(math.exp(-1))


# ---- recovery of known parameters -------------------------------------------------------------------

def test_sigmoid_recovers_all_four_parameters():
    rng = np.random.default_rng(0)
    x = np.logspace(9, 14, 16)
    true = dict(floor=0.05, ceiling=0.85, mid=11.5, slope=1.3)
    y = forms.sigmoid(x, **true) + rng.normal(0, 0.005, x.size)
    r = fit_sigmoid(x, y)
    for k, v in true.items():
        assert r.params[k] == pytest.approx(v, abs=0.05 if k != "mid" else 0.1), k
    assert r.r2 > 0.99 and r.dof == 12 and r.free == ("floor", "ceiling", "mid", "slope")


def test_sigmoid_with_fixed_floor_and_ceiling_recovers_mid_and_slope_from_three_points():
    x = np.array([1.6e21, 8.6e21, 1.1e23])
    y = forms.sigmoid(x, 0.0, 1.0, 23.0, 2.0)
    r = fit_sigmoid(x, y, floor=0.0, ceiling=1.0)
    assert r.params["mid"] == pytest.approx(23.0, abs=1e-4) and r.params["slope"] == pytest.approx(2.0, abs=1e-4)
    assert r.free == ("mid", "slope") and r.dof == 1
    assert r.predict(1e23) == pytest.approx(forms.sigmoid(1e23, 0, 1, 23, 2), abs=1e-6)


def test_power_law_recovers_exactly():
    x = np.logspace(10, 12, 6)
    r = fit_power_law(x, 3e-5 * x ** 0.4)
    assert r.params["a"] == pytest.approx(3e-5, rel=1e-6) and r.params["b"] == pytest.approx(0.4, rel=1e-6)
    assert r.r2 == pytest.approx(1.0)


def test_coverage_brown_recovers():
    k = np.array([1, 2, 4, 8, 16, 32, 64, 128])
    rng = np.random.default_rng(1)
    c = forms.coverage_brown(k, -1.8, -0.3) * np.exp(rng.normal(0, 0.005, k.size))
    r = fit_coverage_brown(k, np.minimum(c, 1.0))
    assert r.params["a"] == pytest.approx(-1.8, abs=0.05) and r.params["b"] == pytest.approx(-0.3, abs=0.02)


def test_neglog_pass_recovers_exactly():
    k = np.array([1, 2, 4, 8, 16, 32])
    r = fit_neglog_pass(k, forms.neglog_pass(k, 1.7, 0.29))
    assert r.params["a"] == pytest.approx(1.7, rel=1e-6) and r.params["b"] == pytest.approx(0.29, rel=1e-6)


def test_brown_and_schaeffer_agree_on_the_same_curve():
    """The two forms are the same family (a_B = -a_S, b_B = -b_S); fitted on different scales they agree
    exactly on noiseless data."""
    k = np.array([1, 2, 4, 8, 16])
    p = forms.neglog_pass(k, 1.2, 0.4)
    b, s = fit_coverage_brown(k, p), fit_neglog_pass(k, p)
    assert b.params["a"] == pytest.approx(-s.params["a"], rel=1e-4)
    assert b.params["b"] == pytest.approx(-s.params["b"], rel=1e-4)


def test_to_rows_marks_fixed_parameters():
    x = np.array([1e21, 1e22, 1e23])
    rows = fit_sigmoid(x, [0.05, 0.3, 0.8], floor=0, ceiling=1).to_rows()
    assert {r["param"]: r["fixed"] for r in rows} == {"floor": True, "ceiling": True, "mid": False, "slope": False}


# ---- loud failures -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fit,x,y,msg", [
    (fit_sigmoid, [1e10, 1e11, 1e12, 1e13], [0.1, 0.2, 0.3, 0.4], "cannot support 4"),
    (fit_sigmoid, [1e10, 1e11, 1e12, 1e13, 1e14], [0.3] * 5, "constant"),
    (fit_sigmoid, [1e10, 1e11, 1e12, 1e13, 1e14], [0.1, 0.2, 1.3, 0.4, 0.5], r"\[0, 1\]"),
    (fit_sigmoid, [1e10, 1e11, 1e12, 1e13, np.nan], [0.1, 0.2, 0.3, 0.4, 0.5], "non-finite"),
    (fit_power_law, [1, 2], [0.1, 0.2], "cannot support 2"),
    (fit_power_law, [1, 2, 3], [0.0, 0.1, 0.2], "positive"),
    (fit_coverage_brown, [1, 2, 4], [0.5, 1.0, 1.0], "below coverage 1"),
    (fit_coverage_brown, [1, 2, 4], [0.0, 0.2, 0.4], "coverage in"),
    (fit_neglog_pass, [1, 2, 4], [0.2, 0.4, 1.0], "strictly between"),
    (fit_neglog_pass, [1, 1, 1], [0.2, 0.3, 0.4], "distinct x"),
])
def test_degenerate_data_raise(fit, x, y, msg):
    with pytest.raises(FitError, match=msg):
        fit(x, y)


def test_sigmoid_refuses_a_step():
    x = np.logspace(10, 14, 9)
    y = np.where(np.log10(x) < 12.2, 0.1, 0.9)
    with pytest.raises(FitError, match="step|bound"):
        fit_sigmoid(x, y, floor=0.1, ceiling=0.9)


def test_sigmoid_refuses_a_midpoint_far_outside_the_data():
    """Accuracy creeping from 1.0% to 1.2% over a decade puts the midpoint ~24 decades away: no fit."""
    x = np.logspace(10, 11, 5)
    y = np.linspace(0.010, 0.012, 5)
    with pytest.raises(FitError, match="midpoint"):
        fit_sigmoid(x, y, floor=0.0, ceiling=1.0, mid_margin=1.0)


def test_coverage_refuses_rising_log_coverage_the_wrong_way():
    # coverage falling with k is not a Brown power law
    with pytest.raises(FitError):
        fit_coverage_brown([1, 2, 4, 8], [0.8, 0.6, 0.4, 0.2])

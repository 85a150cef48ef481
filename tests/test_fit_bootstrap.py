"""Bootstrap over problems: the matrix from per-problem rows, CIs that cover the truth, counted failures."""

import numpy as np
import pandas as pd
import pytest

from ttc.analysis import forms
from ttc.analysis.bootstrap import fit_curve, fit_with_ci, problem_matrix
from ttc.analysis.fits import FitError


def per_problem_rows(values: np.ndarray, budgets, flops_per_k=1e10, prefill=5e9):
    rows = []
    for p, row in enumerate(values):
        for k, v in zip(budgets, row):
            rows.append(dict(task="t", model="m", sampler="s", problem_id=f"p{p}", budget=k, metric="pass@k",
                             value=v, flops=prefill + k * flops_per_k, tokens=10 * k))
    return pd.DataFrame(rows)


def test_problem_matrix_by_hand():
    pp = per_problem_rows(np.array([[0.0, 1.0], [0.5, 1.0]]), [1, 2])
    budgets, values, xs = problem_matrix(pp, "flops")
    assert budgets.tolist() == [1.0, 2.0]
    assert values.tolist() == [[0.0, 1.0], [0.5, 1.0]]
    assert xs[0].tolist() == [1.5e10, 2.5e10]
    _, _, ks = problem_matrix(pp, "budget")
    assert ks[1].tolist() == [1.0, 2.0]


def test_problem_matrix_refuses_mixed_curves_and_too_few_problems():
    pp = per_problem_rows(np.array([[0.0, 1.0], [0.5, 1.0]]), [1, 2])
    with pytest.raises(FitError, match="curves"):
        problem_matrix(pd.concat([pp, pp.assign(metric="maj@k")]))
    with pytest.raises(FitError, match="at least 2 problems"):
        problem_matrix(pp[pp.problem_id == "p0"])


def test_bootstrap_ci_covers_the_generating_parameters():
    """Problems with per-sample success rates p_i; pass@k per problem is 1-(1-p_i)^k, so the mean over
    problems is the truth the CI should cover; the Schaeffer fit is evaluated on that mean."""
    rng = np.random.default_rng(0)
    budgets = np.array([1, 2, 4, 8, 16, 32])
    p = rng.beta(0.3, 1.5, size=300)
    values = 1 - (1 - p[:, None]) ** budgets[None, :]
    truth = fit_with_ci(values, np.broadcast_to(budgets, values.shape), "neglog_pass", n_boot=0)
    sub = values[:60]
    r = fit_with_ci(sub, np.broadcast_to(budgets, sub.shape).astype(float), "neglog_pass", n_boot=300, seed=1)
    for k in ("a", "b"):
        lo, hi = r.ci[k]
        assert lo <= r.params[k] <= hi
        assert lo <= truth.params[k] <= hi, (k, lo, truth.params[k], hi)
    assert r.n_boot == 300 and r.n_boot_failed == 0 and r.draws.shape == (300, 2)


def test_sigmoid_bootstrap_band_brackets_the_fit():
    rng = np.random.default_rng(2)
    budgets = np.array([1, 2, 4, 8, 16, 32])
    flops = 1e10 * budgets
    true = forms.sigmoid(flops, 0.1, 0.8, 10.8, 1.5)
    values = (rng.random((40, budgets.size)) < true).astype(float)
    r = fit_with_ci(values, np.broadcast_to(flops, values.shape).astype(float), "sigmoid", n_boot=60,
                    floor=0.0, ceiling=1.0)
    lo, hi = r.predict_band(flops)
    mid = r.predict(flops)
    assert np.all(lo <= mid + 1e-9) and np.all(mid <= hi + 1e-9)


def test_too_many_failed_replicates_raise():
    """One informative problem among ten: most resamples hold only all-zero problems and cannot be fitted."""
    values = np.zeros((10, 4))
    values[0] = [0.2, 0.4, 0.6, 0.8]
    xs = np.broadcast_to(np.array([1.0, 2.0, 4.0, 8.0]), values.shape)
    with pytest.raises(FitError, match="bootstrap replicates"):
        fit_with_ci(values, xs, "power_law", n_boot=50, max_failed=0.1)


def test_fit_curve_from_per_problem_rows():
    k = np.array([1, 2, 4, 8])
    rows = np.vstack([forms.neglog_pass(k, a, 0.3) for a in (1.0, 1.5, 2.0, 2.5)])
    r = fit_curve(per_problem_rows(rows, k), "coverage_brown", x="budget", n_boot=20)
    assert r.params["b"] < 0 and r.n == 4 and set(r.ci) == {"a", "b"}

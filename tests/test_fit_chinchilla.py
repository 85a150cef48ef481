"""The Chinchilla law: published constants, compute-optimal allocation by hand, fit recovery and failures."""

import numpy as np
import pytest

from ttc.analysis.chinchilla import BESIROGLU_2024, HOFFMANN_2022, ChinchillaLaw, fit_chinchilla
from ttc.analysis.fits import FitError

SMALL_GRID = dict(alpha=np.array([0.5]), beta=np.array([0.5]), e=np.array([0.0, 0.5]),
                  a=np.array([10.0]), b=np.array([5.0, 10.0]))


def test_published_constants():
    assert (HOFFMANN_2022.E, HOFFMANN_2022.A, HOFFMANN_2022.B) == (1.69, 406.4, 410.7)
    assert (HOFFMANN_2022.alpha, HOFFMANN_2022.beta) == (0.34, 0.28)
    assert (BESIROGLU_2024.E, BESIROGLU_2024.A, BESIROGLU_2024.B) == (1.8172, 482.01, 2085.43)
    assert (BESIROGLU_2024.alpha, BESIROGLU_2024.beta) == (0.3478, 0.3658)


def test_loss_by_hand():
    law = ChinchillaLaw(E=2.0, A=100.0, B=1000.0, alpha=0.5, beta=0.5)
    assert law.loss(1e4, 1e6) == pytest.approx(2.0 + 100 / 100 + 1000 / 1000)


def test_optimal_allocation_by_hand():
    """Symmetric law (A = B, alpha = beta): G = 1 and N* = D* = sqrt(C / 6)."""
    law = ChinchillaLaw(E=1.0, A=400.0, B=400.0, alpha=0.3, beta=0.3)
    n, d = law.optimal(6e20)
    assert n == pytest.approx(1e10) and d == pytest.approx(1e10)


@pytest.mark.parametrize("law", [HOFFMANN_2022, BESIROGLU_2024])
def test_optimal_spends_the_budget_and_minimises_loss(law):
    C = 5.76e23  # Chinchilla's budget
    n, d = law.optimal(C)
    assert 6 * n * d == pytest.approx(C)
    for f in (0.8, 1.25):  # moving along the iso-FLOP line only raises the loss
        assert law.loss(n * f, C / (6 * n * f)) > law.loss(n, d)


def test_besiroglu_optimum_is_near_twenty_tokens_per_parameter():
    n, d = BESIROGLU_2024.optimal(5.76e23)
    assert 15 < d / n < 30  # Epoch's refit restores the ~20 tokens/parameter of Approaches 1 and 2


def test_fit_recovers_known_law():
    truth = ChinchillaLaw(E=1.8, A=480.0, B=2000.0, alpha=0.35, beta=0.37)
    N = np.repeat(np.logspace(7.5, 10, 6), 5)
    D = np.tile(np.logspace(9, 12, 5), 6)
    rng = np.random.default_rng(0)
    L = truth.loss(N, D) * np.exp(rng.normal(0, 0.002, N.size))
    fit = fit_chinchilla(N, D, L, grid=SMALL_GRID)
    assert fit.E == pytest.approx(1.8, rel=0.03)
    assert fit.alpha == pytest.approx(0.35, abs=0.03) and fit.beta == pytest.approx(0.37, abs=0.03)
    n_fit, _ = fit.optimal(1e22)
    n_true, _ = truth.optimal(1e22)
    assert n_fit == pytest.approx(n_true, rel=0.25)


def test_fit_fails_loudly():
    with pytest.raises(FitError, match="at least 6"):
        fit_chinchilla([1e8, 1e9], [1e10, 1e11], [3.0, 2.5])
    with pytest.raises(FitError, match="two values"):
        fit_chinchilla([1e8] * 6, np.logspace(9, 11, 6), np.linspace(3, 2.5, 6))
    with pytest.raises(FitError, match="positive"):
        fit_chinchilla(np.logspace(7, 9, 6), np.logspace(9, 11, 6), [3, 2.9, 2.8, 0, 2.6, 2.5])

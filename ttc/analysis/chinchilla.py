"""The Chinchilla loss law ``L(N, D) = E + A / N**alpha + B / D**beta`` and compute-optimal allocation.

Fitting follows Hoffmann et al. 2022 (Approach 3, appendix D.2): with ``a = log A``, ``b = log B``,
``e = log E``, minimise the Huber loss (delta = 1e-3) of
``LSE(a - alpha log N, b - beta log D, e) - log L`` over all runs with L-BFGS, started from every point
of a grid, keeping the best. Besiroglu et al. 2024 (Epoch AI, "Chinchilla Scaling: A replication
attempt", arXiv 2404.10102) showed the published fit stopped early; their refit is shipped beside it.

Compute-optimal allocation under ``C = 6 N D`` (Hoffmann eq. 4):
``G = (alpha A / (beta B))**(1 / (alpha + beta))``, ``N*(C) = G (C/6)**(beta/(alpha+beta))``,
``D*(C) = G**-1 (C/6)**(alpha/(alpha+beta))``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from ttc.analysis.fits import FitError


@dataclass(frozen=True)
class ChinchillaLaw:
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""

    def loss(self, N, D):
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        return self.E + self.A / N ** self.alpha + self.B / D ** self.beta

    def optimal(self, C) -> tuple[np.ndarray, np.ndarray]:
        """(N*, D*) for training compute C (FLOPs), with C = 6 N D."""
        C = np.asarray(C, dtype=float)
        s = self.alpha + self.beta
        G = (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / s)
        return G * (C / 6.0) ** (self.beta / s), (C / 6.0) ** (self.alpha / s) / G


# Hoffmann et al. 2022, eq. 10 (the rounded values printed in the paper's body).
HOFFMANN_2022 = ChinchillaLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28,
                              source="Hoffmann et al. 2022, arXiv 2203.15556, eq. 10")
# Besiroglu et al. 2024 (Epoch AI), the refit of Approach 3 on data reconstructed from Hoffmann's Fig. 4.
BESIROGLU_2024 = ChinchillaLaw(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658,
                               source="Besiroglu et al. 2024, arXiv 2404.10102, eq. 4 / Table 1")

# Hoffmann et al.'s grid of initialisations (appendix D.2): 5 x 5 x 6 x 6 x 6 = 5,400 starts.
HOFFMANN_GRID = dict(alpha=np.arange(0.0, 2.01, 0.5), beta=np.arange(0.0, 2.01, 0.5),
                     e=np.arange(-1.0, 1.51, 0.5), a=np.arange(0.0, 25.1, 5.0), b=np.arange(0.0, 25.1, 5.0))
# The default: a coarse sub-grid of the same ranges (2 x 2 x 2 x 3 x 3 = 72 starts), minutes cheaper.
COARSE_GRID = dict(alpha=np.array([0.25, 0.75]), beta=np.array([0.25, 0.75]), e=np.array([0.0, 1.0]),
                   a=np.array([0.0, 10.0, 20.0]), b=np.array([0.0, 10.0, 20.0]))


def _objective(theta, logN, logD, logL, delta):
    a, b, e, alpha, beta = theta
    terms = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])
    m = terms.max(axis=0)
    ex = np.exp(terms - m)
    tot = ex.sum(axis=0)
    r = m + np.log(tot) - logL          # LSE(terms) - log L
    absr = np.abs(r)
    huber = np.where(absr <= delta, 0.5 * r ** 2, delta * (absr - 0.5 * delta))
    dh = np.clip(r, -delta, delta)  # Huber derivative
    w = ex / tot                        # softmax weights: d LSE / d term
    grad = np.array([np.sum(dh * w[0]), np.sum(dh * w[1]), np.sum(dh * w[2]),
                     np.sum(dh * w[0] * -logN), np.sum(dh * w[1] * -logD)])
    return float(np.sum(huber)), grad


def fit_chinchilla(N, D, L, delta: float = 1e-3, grid: dict | None = None) -> ChinchillaLaw:
    """Fit ``L(N, D)`` to losses of runs with N parameters and D tokens (Huber on log L, L-BFGS from a grid).

    ``grid`` defaults to ``COARSE_GRID``; pass ``HOFFMANN_GRID`` for the paper's full grid.

    Raises ``FitError`` on fewer than 6 runs, on N or D that never varies, or on non-positive values."""
    N, D, L = (np.asarray(v, dtype=float).ravel() for v in (N, D, L))
    if not (N.shape == D.shape == L.shape):
        raise FitError("Chinchilla fit: N, D and L must have the same length")
    if N.size < 6:
        raise FitError(f"Chinchilla fit: {N.size} runs cannot support 5 parameters (need at least 6)")
    if np.any(~np.isfinite(np.concatenate([N, D, L]))) or np.any(N <= 0) or np.any(D <= 0) or np.any(L <= 0):
        raise FitError("Chinchilla fit: N, D and L must be finite and positive")
    if np.unique(N).size < 2 or np.unique(D).size < 2:
        raise FitError("Chinchilla fit: N and D must each take at least two values to separate the terms")
    logN, logD, logL = np.log(N), np.log(D), np.log(L)
    g = grid or COARSE_GRID
    best = None
    for alpha, beta, e, a, b in itertools.product(g["alpha"], g["beta"], g["e"], g["a"], g["b"]):
        r = optimize.minimize(_objective, [a, b, e, alpha, beta], args=(logN, logD, logL, delta),
                              jac=True, method="L-BFGS-B")
        if np.all(np.isfinite(r.x)) and (best is None or r.fun < best.fun):
            best = r
    if best is None:
        raise FitError("Chinchilla fit: no start converged")
    a, b, e, alpha, beta = best.x
    if alpha <= 0 or beta <= 0:
        raise FitError(f"Chinchilla fit: non-positive exponent (alpha={alpha:.3g}, beta={beta:.3g}); "
                       f"the data do not show loss falling with both N and D")
    return ChinchillaLaw(E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)),
                         alpha=float(alpha), beta=float(beta), source="fit")

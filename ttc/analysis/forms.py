"""The functional forms the fits use, and their inverses: pure numpy functions.

* ``sigmoid``: accuracy against log10 compute, with a floor and a ceiling,
  ``y = floor + (ceiling - floor) / (1 + exp(-slope * (log10(x) - mid)))``.
  ``mid`` is the log10 compute at which accuracy is half-way between floor and ceiling; ``slope`` is per
  decade of compute.
* ``power_law``: ``y = a * x**b``, fitted as a straight line in log-log space.
* ``coverage_brown``: Brown et al. 2024 ("Large Language Monkeys"), eq. 2: ``log c(k) = a * k**b``
  (a < 0, b < 0, so coverage rises towards 1 as k grows).
* ``neglog_pass``: Schaeffer et al. 2025 ("How do large language monkeys get their power (laws)?"):
  ``-log pass@k = a * k**(-b)`` (a > 0, b > 0).
"""

from __future__ import annotations

import numpy as np


def sigmoid(x, floor: float, ceiling: float, mid: float, slope: float):
    """Accuracy at compute ``x`` (FLOPs, > 0)."""
    z = slope * (np.log10(np.asarray(x, dtype=float)) - mid)
    return floor + (ceiling - floor) * 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1/(1+e^-z), overflow-free


def sigmoid_inverse(y, floor: float, ceiling: float, mid: float, slope: float):
    """The compute at which ``sigmoid`` reaches accuracy ``y``; nan outside (floor, ceiling)."""
    y = np.asarray(y, dtype=float)
    u = (y - floor) / (ceiling - floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        logit = np.log(u) - np.log1p(-u)
        out = 10.0 ** (mid + logit / slope)
    return np.where((u > 0) & (u < 1), out, np.nan)


def power_law(x, a: float, b: float):
    return a * np.asarray(x, dtype=float) ** b


def power_law_inverse(y, a: float, b: float):
    return (np.asarray(y, dtype=float) / a) ** (1.0 / b)


def coverage_brown(k, a: float, b: float):
    """Coverage (pass@k) at k samples: ``exp(a * k**b)``."""
    return np.exp(a * np.asarray(k, dtype=float) ** b)


def neglog_pass(k, a: float, b: float):
    """pass@k at k samples under ``-log pass@k = a * k**-b``."""
    return np.exp(-a * np.asarray(k, dtype=float) ** (-b))


def logit(p):
    p = np.asarray(p, dtype=float)
    return np.log(p) - np.log1p(-p)

"""``python -m ttc.fit RUN_DIR...``: fitted curves with CIs and the exchange-rate table (``ttc.analysis``).

The library side is ``ttc.analysis``: ``fit_sigmoid``, ``fit_power_law``, ``fit_coverage_brown``,
``fit_neglog_pass``, ``fit_chinchilla`` and the run-level helpers; this module is the command line.
"""

from __future__ import annotations

import sys

from ttc.analysis import (fit_chinchilla, fit_coverage_brown, fit_curve, fit_neglog_pass,  # noqa: F401
                          fit_power_law, fit_sigmoid)
from ttc.analysis.cli import fit_main as main

if __name__ == "__main__":
    sys.exit(main())

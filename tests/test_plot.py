"""The run's curve: log-axis tick labels drawn as plain text, the same labels matplotlib would typeset."""

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

from ttc.report.curve import plain_log_label, plot_curve  # noqa: E402


@pytest.mark.parametrize("label, plain", [
    (r"$\mathdefault{10^{11}}$", "10\u00b9\u00b9"),
    (r"$\mathdefault{2\times10^{10}}$", "2\u00d710\u00b9\u2070"),
    (r"$\mathdefault{10^{-3}}$", "10\u207b\u00b3"),
    (r"$\mathdefault{-10^{2}}$", "-10\u00b2"),
    (r"$\mathdefault{10}$", "10"),
    (r"$\mathdefault{0.5}$", "0.5"),
    ("", ""),
    ("1e11", "1e11"),  # anything else is left as it is
])
def test_plain_log_label(label, plain):
    assert plain_log_label(label) == plain


def test_curve_ticks_are_matplotlibs_labels_without_mathtext():
    budgets = [1, 2, 4, 8, 16, 32]
    summary = pd.DataFrame([dict(task="t", model="m", sampler="sample", metric=m, budget=k, value=0.1 * i,
                                 ci_low=0.0, ci_high=0.2 * i, flops_per_problem=3e9 * k, level="all")
                            for m in ("pass@k", "maj@k") for i, k in enumerate(budgets)])
    ax = plot_curve(summary, "t").axes[0]

    def labels():
        ax.figure.canvas.draw()
        return [t.label1.get_text() for t in ax.xaxis.get_major_ticks() + ax.xaxis.get_minor_ticks()]

    plain = labels()
    ax.set_xscale("log")  # matplotlib's own formatters again
    typeset = labels()
    assert any(s.startswith("$") for s in typeset) and not any("$" in s for s in plain)
    assert plain == [plain_log_label(s) for s in typeset]
    assert "10\u00b9\u2070" in plain  # the decade in range

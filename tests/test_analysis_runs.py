"""From a stored run (fake backend) to fits, exchange table, and the two command lines."""

import re
import zlib

import pandas as pd
import pytest

from ttc.analysis.runs import analyze_run, fit_run_curves, load_summary, model_identity, run_per_problem
from ttc.backends.fake import FakeBackend
from ttc.cli.analysis import fit_main, plot_main
from ttc.sweep.config import RunConfig, SweepConfig
from ttc.sweep.runner import run_sweep

EXPR = re.compile(r"problem: ([-+\d\s]+)=")


def solver(prompt, rng):
    """Right with a per-problem probability (from a hash of the expression), else off by a few."""
    m = EXPR.search(prompt)
    if not m:
        return "no idea"
    expr = m.group(1)
    value = eval(expr)  # digits, spaces, + and - only (the regex admits nothing else)
    p = 0.05 + 0.6 * (zlib.crc32(expr.encode()) % 100) / 100
    answer = value if rng.random() < p else value + rng.choice([-3, -2, -1, 1, 2, 3])
    return f"The answer is \\boxed{{{answer}}}"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    cfg = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=("smollm2-135m",), budgets=(1, 2, 4, 8, 16),
                                      limit=16), out=str(out))
    store = run_sweep(cfg, backend_factory=lambda model, c: FakeBackend(solver), progress=False)
    return store.root


def test_fits_from_a_stored_run(run_dir):
    pp, header = run_per_problem(run_dir)
    assert set(pp["metric"]) >= {"pass@k", "maj@k"}
    fits, table = fit_run_curves(pp, n_boot=30)
    assert ("chain_sum", "smollm2-135m", "sample", "pass@k", "coverage_brown") in fits
    ok = table[table["error"] == ""]
    assert (ok["ci_low"].notna() | ok["fixed"]).all()
    # every planned fit is either in the table with numbers or with its reason
    assert set(table["form"]) == {"sigmoid", "power_law", "coverage_brown", "neglog_pass"}


def test_model_identity_reads_the_header(run_dir):
    _, header = run_per_problem(run_dir)
    ident = model_identity(header, "smollm2-135m")
    assert ident["n_params"] == header["models"]["smollm2-135m"]["spec"]["n_params_total"]


def test_analyze_run_and_exchange_table(run_dir):
    a = analyze_run(run_dir, n_boot=20, family="SmolLM2", setting="instruct_5shot", tokens=2e12)
    ex = a.exchange
    assert list(ex["budget"]) == [1, 2, 4, 8, 16]
    assert ex["density"].iloc[0] == pytest.approx(1.0)
    # majority voting helps on this task, so the exchange rate never falls below the k=1 anchor
    assert (ex["multiplier"] >= 1 - 1e-9).all()
    assert set(ex["ci"]) == {"joint"}
    assert not a.matched.empty and (a.matched["M"] > 1).all()


def test_fit_cli_prints_tables(run_dir, capsys):
    assert fit_main([str(run_dir), "--n-boot", "20", "--family", "SmolLM2", "--setting", "instruct_5shot",
                     "--tokens", "2e12"]) == 0
    out = capsys.readouterr().out
    assert "fitted parameters" in out and "exchange rate" in out and "compute-optimal frontier" in out
    assert "SmolLM2 gsm8k (instruct_5shot)" in out


def test_plot_cli_writes_png_and_pdf(run_dir, tmp_path, capsys):
    assert plot_main([str(run_dir), "--n-boot", "10", "--out", str(tmp_path), "--family", "SmolLM2",
                      "--setting", "instruct_5shot", "--tokens", "2e12"]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"frontier.png", "frontier.pdf", f"exchange_{run_dir.name}.png", f"exchange_{run_dir.name}.pdf"} <= names
    assert all(p.stat().st_size > 1000 for p in tmp_path.iterdir())


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert fit_main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1


def test_summary_has_the_overall_rows(run_dir):
    s = load_summary(run_dir)
    assert isinstance(s, pd.DataFrame) and s["run"].iloc[0] == run_dir.name

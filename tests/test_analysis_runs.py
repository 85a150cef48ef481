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


@pytest.fixture(scope="module")
def two_model_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs2")
    cfg = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=("org/m1", "org/m2"), budgets=(1, 2, 4, 8, 16),
                                      limit=12), out=str(out))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")  # hub names of fake models: nothing to reach
        return run_sweep(cfg, backend_factory=lambda model, c: FakeBackend(solver), progress=False).root


def _fit_table_lines(out: str) -> list[str]:
    block = out.split("fitted parameters", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return [ln for ln in block if ln.strip() and not ln.startswith(("flag:", "  not fitted"))]


def test_fit_cli_tells_the_models_of_a_run_apart(two_model_run, capsys):
    assert fit_main([str(two_model_run), "--n-boot", "10", "--family", "SmolLM2", "--setting", "instruct_5shot",
                     "--tokens", "2e12", "--reading", "published"]) == 0
    lines = _fit_table_lines(capsys.readouterr().out)
    assert lines[0].split()[0] == "model"
    rows = [ln.split() for ln in lines[1:]]
    assert {r[0] for r in rows} == {"org/m1", "org/m2"}
    keys = [tuple(r[:5]) for r in rows]  # model, metric, form, x, param: no two rows alike
    assert len(keys) == len(set(keys))


def test_reliability_flags():
    from ttc.analysis.bootstrap import reliability

    assert reliability(1.282e-06, 4.594e+07, 146, 54) == "wide,boot"  # the 13-decade CI, 54 of 200 failed
    assert reliability(0.15, 0.67, 200, 0) == ""
    assert reliability(-0.16, 0.82, 200, 0) == "sign"
    assert reliability(0.0, 0.041, 200, 0) == ""  # a floor at its bound is not a sign change
    assert reliability(4.6e-9, 3.7e-3, 190, 10) == "wide"  # 10 of 200 failed: 5%, not more
    assert reliability(0.1, 0.2, 189, 11) == "boot"
    assert reliability(float("nan"), float("nan"), 0, 0) == ""


def test_fit_cli_flags_unreliable_parameters(run_dir, capsys):
    assert fit_main([str(run_dir), "--n-boot", "40", "--family", "SmolLM2", "--setting", "instruct_5shot",
                     "--tokens", "2e12"]) == 0
    lines = _fit_table_lines(capsys.readouterr().out)
    assert lines[0].split()[-1] == "flag"
    pp, _ = run_per_problem(run_dir)
    _, table = fit_run_curves(pp, n_boot=40)
    ok = table[(table["error"] == "") & ~table["fixed"].astype(bool)]
    same_sign = (ok["ci_low"] > 0) | (ok["ci_high"] < 0)
    wide = same_sign & (ok["ci_high"].abs().combine(ok["ci_low"].abs(), max)
                        > 100 * ok["ci_high"].abs().combine(ok["ci_low"].abs(), min))
    assert (ok["flag"].str.contains("wide") == wide).all()
    assert (ok["flag"].str.contains("sign") == ((ok["ci_low"] < 0) & (ok["ci_high"] > 0))).all()


def test_fit_table_marks_and_explains_an_unreliable_fit(capsys):
    from ttc.analysis.bootstrap import reliability
    from ttc.cli.analysis import _print_fit_table

    row = dict(task="t", model="m", sampler="sample", metric="maj@k", form="power_law", x="flops", fixed=False, n=6,
               dof=4, r2=0.9, rmse=0.01, n_boot_failed=54, error="")
    table = pd.DataFrame([dict(row, param="a", value=2.3e-5, ci_low=1.282e-06, ci_high=4.594e+07),
                          dict(row, param="b", value=0.37, ci_low=0.15, ci_high=0.67)])
    table["flag"] = [reliability(r.ci_low, r.ci_high, 200 - 54, 54) for r in table.itertuples()]
    _print_fit_table(table)
    out = capsys.readouterr().out.splitlines()
    assert out[2].split()[-1] == "wide,boot" and out[3].split()[-1] == "boot"
    assert out[4].startswith("flag: wide = the 95% CI's ends differ by more than 100x") and len(out) == 5


def test_tokens_must_be_positive(run_dir, capsys):
    assert fit_main([str(run_dir), "--tokens", "0"]) == 2
    assert "--tokens must be a positive" in capsys.readouterr().err

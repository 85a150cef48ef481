"""Every verb answers a bad argument and a missing run directory with one ``error:`` line and exit code 2: no
usage block, no traceback."""

import pytest

from ttc.cli import VERBS, main

MISSING = "/nonexistent/ttc-run"

CASES = {
    "run: unknown flag": ["run", "--bogus"],
    "run: bad budget": ["run", "--budget", "1,x"],
    "run: zero limit": ["run", "--limit", "0"],
    "run: bad think budget for --max-tokens": ["run", "--sampler", "budget_forcing", "--max-tokens", "8"],
    "tasks: unknown flag": ["tasks", "--bogus"],
    "summary: unknown flag": ["summary", MISSING, "--bogus"],
    "summary: no run dir given": ["summary"],
    "summary: missing run dir": ["summary", MISSING],
    "summary: bad budget": ["summary", MISSING, "--budget", "x"],
    "show: unknown flag": ["show", MISSING, "--bogus"],
    "show: missing run dir": ["show", MISSING],
    "report: unknown flag": ["report", MISSING, "--bogus"],
    "report: missing run dir": ["report", MISSING],
    "fit: unknown flag": ["fit", MISSING, "--bogus"],
    "fit: missing run dir": ["fit", MISSING],
    "plot: unknown flag": ["plot", MISSING, "--bogus"],
    "plot: missing run dir": ["plot", MISSING],
    "import: unknown flag": ["import", "lm_eval", MISSING, "--bogus"],
    "import: unknown format": ["import", "zzz", MISSING],
    "import: missing log": ["import", "lm_eval", MISSING],
    "import: hyphenated name, missing log": ["import", "lm-eval", MISSING],
    "rescore: unknown flag": ["rescore", MISSING, "--task", "chain_sum", "--bogus"],
    "rescore: no task": ["rescore", MISSING],
    "rescore: missing run or log": ["rescore", MISSING, "--task", "chain_sum"],
    "compare: unknown flag": ["compare", MISSING, MISSING, "--bogus"],
    "compare: missing run dir": ["compare", MISSING, MISSING],
    "serve: unknown flag": ["serve", "smollm2-135m", "--bogus"],
    "completion: unknown shell": ["completion", "tcsh"],
    "ttc: unknown verb": ["nope"],
}


def test_every_verb_is_covered():
    assert {argv[0] for argv in CASES.values()} >= set(VERBS)


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_error_line_and_exit_2(case, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `ttc run` refusals must leave no runs/ behind
    try:
        rc = main(CASES[case])
    except SystemExit as e:  # argparse's usage errors leave through sys.exit
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "usage:" not in err
    assert list(tmp_path.iterdir()) == []

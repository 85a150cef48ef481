"""The packaged tasks end to end on the embedded model (SmolLM2-135M on CPU): a couple of problems each,
two samples, short completions. Checks the plumbing, not the accuracy."""

import pandas as pd
import pytest
from conftest import run_records

PACKAGED = ["chain_sum", "gsm_symbolic", "basic_arithmetic", "countdown", "puzzle24", "rg:leg_counting",
            "humaneval", "champ"]


@pytest.mark.slow
def test_packaged_tasks_run_end_to_end(tmp_path, capsys):
    from ttc.cli.run import main

    rc = main(["--task", ",".join(PACKAGED), "--model", "smollm2-135m", "--budget", "1,2", "--limit", "2",
               "--max-tokens", "24", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    records = run_records(run)
    by_task = pd.DataFrame(records).groupby("task")
    assert set(by_task.groups) == set(PACKAGED)
    for task, g in by_task:
        assert len(g) == 2 * 2, task                                     # 2 problems x 2 samples
        assert {"answer", "answer_strict", "correct"} <= set(g.columns)
        assert g["correct"].isin([True, False]).all()
    summary = pd.read_csv(run / "summary.csv")
    overall = summary[summary["level"].astype(str) == "all"]
    assert set(overall["task"]) == set(PACKAGED)
    levels = pd.read_csv(run / "problems.csv")
    assert len(levels) == 2 * len(PACKAGED) and levels["level"].between(1, 5).all()

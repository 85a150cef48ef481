"""Difficulty levels from per-problem pass@1 (equal-width bins) and the per-level rows of summary.csv."""

import pandas as pd
import pytest

from samplers import SAMPLERS
from ttc.metrics.summary import SUMMARY_COLUMNS, problem_levels, summarize


def records(correct_by_problem: dict[str, list[bool]], sampler: str = "sample") -> pd.DataFrame:
    rows = []
    for pid, correct in correct_by_problem.items():
        for i, ok in enumerate(correct):
            rows.append(dict(task="t", model="m", sampler=sampler, problem_id=pid, sample_index=i,
                             n_samples=len(correct), answer="1" if ok else str(i + 2), answer_strict=None,
                             gold="1", correct=ok, prompt_tokens=10, generated_tokens=5, finish_reason="stop",
                             prefill_flops=100.0, decode_flops=10.0, prefill_shared=True, seed=0, extra={},
                             verifier_flops=0.0))
    return pd.DataFrame(rows)


# (correct of 5 samples, expected level): level 1 = pass@1 in [0.8, 1] ... level 5 = [0, 0.2)
@pytest.mark.parametrize("n_correct,level", [(5, 1), (4, 1), (3, 2), (2, 3), (1, 4), (0, 5)])
def test_equal_width_bins(n_correct, level):
    lv = problem_levels(records({"p": [True] * n_correct + [False] * (5 - n_correct)}))
    assert lv["level"].tolist() == [level] and lv["pass@1"].tolist() == [n_correct / 5]


def test_bin_edges_are_exact():
    # 3/5 = 0.6 is the lower edge of level 2, 1/10 = 0.1 is inside level 5, 2/10 = 0.2 starts level 4
    lv = problem_levels(records({"a": [True] * 3 + [False] * 2, "b": [True] + [False] * 9,
                                 "c": [True] * 2 + [False] * 8})).set_index("problem_id")["level"]
    assert lv.to_dict() == {"a": 2, "b": 5, "c": 4}


def test_levels_come_from_repeated_sampling_records():
    df = pd.concat([records({"p": [True] * 4}), records({"p": [False] * 4}, sampler="best_of_n")])
    lv = problem_levels(df)
    assert lv["level"].tolist() == [1] and lv["n_samples"].tolist() == [4]


def test_summary_has_all_rows_and_per_level_rows():
    df = records({"easy": [True] * 4, "hard": [False] * 4, "mid": [True, True, False, False]})
    s = summarize(df, (1, 2, 4), SAMPLERS)
    assert list(s.columns) == SUMMARY_COLUMNS
    overall = s[s["level"] == "all"]
    assert len(overall) == 3 * 3 and set(overall["n_problems"]) == {3}        # 3 budgets x 3 metrics
    by_level = s[s["level"] != "all"]
    assert set(by_level["level"]) == {"1", "3", "5"}
    mean1 = by_level[(by_level["metric"] == "mean@k") & (by_level["budget"] == 1)].set_index("level")["value"]
    assert mean1.to_dict() == {"1": 1.0, "3": 0.5, "5": 0.0}
    p4 = overall[(overall["metric"] == "pass@k") & (overall["budget"] == 4)]["value"].item()
    assert p4 == pytest.approx(2 / 3)


def test_summary_csv_round_trip_and_overall_filter(tmp_path):
    from ttc.cli.run import print_summary
    from ttc.report.curve import plot_curve

    s = summarize(records({"a": [True, False], "b": [False, False]}), (1, 2), SAMPLERS)
    path = tmp_path / "summary.csv"
    s.to_csv(path, index=False)
    back = pd.read_csv(path)
    assert set(back["level"].astype(str)) == {"all", "3", "5"}
    print_summary(path)
    plot_curve(back)

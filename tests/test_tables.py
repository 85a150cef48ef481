"""Runs of equal keys in record frames: the ordering and grouping every per-problem table is built on."""

import numpy as np
import pandas as pd

from ttc.metrics.tables import sizes_of, sort_by, starts_of


def test_a_frame_in_key_order_is_kept_and_others_are_sorted_stably():
    ordered = pd.DataFrame({"p": ["a", "a", "b", "b", "c"], "i": [0, 1, 0, 0, 2], "row": range(5)}, index=[9, 8, 7, 6, 5])
    kept = sort_by(ordered, ["p", "i"])
    assert kept["row"].tolist() == [0, 1, 2, 3, 4] and kept.index.tolist() == [0, 1, 2, 3, 4]
    shuffled = ordered.iloc[[4, 2, 0, 3, 1]]
    assert sort_by(shuffled, ["p", "i"])["row"].tolist() == [0, 1, 2, 3, 4]  # ties keep their order: 2 before 3
    later_key = pd.DataFrame({"p": ["a", "a"], "i": [1, 0]})
    assert sort_by(later_key, ["p", "i"])["i"].tolist() == [0, 1]


def test_keys_that_do_not_compare_are_left_to_pandas():
    with_missing = pd.DataFrame({"answer": ["b", None, "a"], "row": range(3)})
    assert sort_by(with_missing, ["answer"])["row"].tolist() == [2, 0, 1]  # pandas puts the missing last


def test_runs_begin_where_any_key_changes():
    df = pd.DataFrame({"t": ["x", "x", "x", "y", "y"], "p": ["a", "a", "b", "b", "b"]})
    starts = starts_of(df, ["t", "p"])
    assert starts.tolist() == [0, 2, 3]
    assert sizes_of(starts, len(df)).tolist() == [2, 1, 2]
    assert starts_of(df.iloc[:0], ["t"]).tolist() == [] and sizes_of(np.zeros(0, int), 0).tolist() == []

"""The strategy of imported records: vote@k (the harness's vote over the first k samples, ties to the first
seen), labels imported:<name> evaluated by it, and a summary.csv without -0.0."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samplers import SAMPLERS
from samplers.imported import ordered_votes
from ttc.metrics.summary import summarize
from ttc.metrics.tables import Problems


def records(problems: dict[str, list[tuple[str | None, bool]]], sampler="imported:f") -> pd.DataFrame:
    rows = []
    for pid, samples in problems.items():
        for i, (answer, correct) in enumerate(samples):
            rows.append({"task": "t", "model": "m", "sampler": sampler, "problem_id": pid, "sample_index": i,
                         "answer": answer, "correct": correct, "generated_tokens": 5, "prefill_flops": 1.0,
                         "decode_flops": 2.0, "prefill_shared": False})
    return pd.DataFrame(rows)


def lm_eval_vote(answers, correct, k):
    """lm-eval: take_first_k k, majority_vote (Counter.most_common), take_first; '[invalid]' votes too."""
    first = ["[invalid]" if a is None else a for a in answers[:k]]
    winner = Counter(first).most_common(1)[0][0]
    return float(any(c for a, c in zip(first, correct[:k]) if a == winner))


def test_ties_go_to_the_answer_seen_first_and_no_answer_votes():
    df = records({"tie": [("5", False), ("7", True), ("7", True), ("5", False)],
                  "none": [(None, False), (None, False), ("7", True)],
                  "short": [("7", True)]})
    p = Problems.of(df)
    assert list(p.ids) == ["none", "short", "tie"]
    assert ordered_votes(p, 1).tolist()[:2] == [0.0, 1.0] and ordered_votes(p, 1)[2] == 0.0
    assert ordered_votes(p, 3).tolist()[0] == 0.0  # two missing answers outvote one "7", as in lm-eval
    assert np.isnan(ordered_votes(p, 3)[1])  # fewer samples than k
    assert ordered_votes(p, 4)[2] == 0.0  # 5 and 7 twice each: "5" came first


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["1", "2", "3", None]), min_size=1, max_size=8), st.integers(1, 8))
def test_vote_at_k_is_lm_evals_vote(answers, k):
    k = min(k, len(answers))
    correct = [a == "2" for a in answers]
    p = Problems.of(records({"p": list(zip(answers, correct))}))
    assert ordered_votes(p, k)[0] == lm_eval_vote(answers, correct, k)


def test_a_label_with_a_variant_is_evaluated_by_its_strategy():
    df = pd.concat([records({"a": [("1", True), ("2", False)], "b": [("2", False), ("2", False)]}, "imported:x"),
                    records({"a": [("1", True), ("1", True)], "b": [("2", False), ("3", False)]}, "imported:y")])
    s = summarize(df, (1, 2), SAMPLERS)
    s = s[s["level"] == "all"].set_index(["sampler", "metric", "budget"])["value"]
    assert s[("imported:x", "vote@k", 1)] == 0.5 and s[("imported:y", "vote@k", 2)] == 0.5
    assert s[("imported:x", "mean@k", 1)] == 0.25 and s[("imported:x", "pass@k", 2)] == 0.5
    with pytest.raises(Exception, match="no strategy named 'nope:x'"):
        summarize(records({"a": [("1", True)]}, "nope:x"), (1,), SAMPLERS)


def test_no_negative_zero_in_the_summary(tmp_path):
    df = records({"a": [("1", False), ("2", False), ("3", False), ("4", False)]}, "sample")
    s = summarize(df, (1, 2, 4), SAMPLERS)
    path = tmp_path / "summary.csv"
    s.to_csv(path, index=False)
    assert (s[s["metric"] == "pass@k"]["value"] == 0).all()
    assert "-0.0" not in path.read_text()
    assert not np.signbit(s[["value", "ci_low", "ci_high"]].to_numpy(dtype=float)).any()

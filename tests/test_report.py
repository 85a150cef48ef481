"""The report page's data (per-problem statistics, votes, bounded texts), extraction routes, ttc.show."""

import json
import re

import pandas as pd
import pytest

from reportruns import small_run, synthetic_run
from ttc import browse
from ttc.report import write_report
from ttc.routes import extraction_routes, record_routes
from ttc.show import main as show_main


def frame(rows):
    base = dict(task="t", model="m", sampler="sample", gold="3", prompt_tokens=10, generated_tokens=5,
                finish_reason="stop", prefill_flops=100.0, decode_flops=10.0, prefill_shared=True, verifier_flops=0.0,
                n_samples=len(rows))
    return pd.DataFrame([{**base, "sample_index": i, **r} for i, r in enumerate(rows)])


@pytest.mark.parametrize("answer,strict,route", [
    ("3", "3", "strict"), ("3", None, "flexible"), ("3", "4", "flexible"), (None, None, "none"), (None, "4", "none"),
])
def test_record_routes(answer, strict, route):
    df = frame([dict(problem_id="a", answer=answer, answer_strict=strict, correct=False)])
    assert record_routes(df).tolist() == [route]


def test_extraction_routes_shares():
    df = frame([dict(problem_id="a", answer="3", answer_strict="3", correct=True),
                dict(problem_id="a", answer="3", answer_strict=None, correct=True),
                dict(problem_id="a", answer="5", answer_strict=None, correct=False),
                dict(problem_id="a", answer=None, answer_strict=None, correct=False)])
    t = extraction_routes(df).iloc[0]
    assert (t["records"], t["strict"], t["flexible"], t["none"]) == (4, 0.25, 0.5, 0.25)
    assert (t["correct_strict"], t["correct_flexible"]) == (0.25, 0.25)


def test_problem_stats_and_vote_by_hand():
    df = frame([dict(problem_id="a", answer="3", answer_strict="3", correct=True),
                dict(problem_id="a", answer="3", answer_strict=None, correct=True),
                dict(problem_id="a", answer="5", answer_strict="5", correct=False, finish_reason="length"),
                dict(problem_id="a", answer=None, answer_strict=None, correct=False),
                dict(problem_id="b", answer="4", answer_strict="4", correct=False),
                dict(problem_id="b", answer="3", answer_strict="3", correct=True)])
    s = browse.problem_stats(df).set_index("problem_id")
    a, b = s.loc["a"], s.loc["b"]
    assert (a["n"], a["correct"], a["unparsed"], a["flex_only"], a["length"]) == (4, 2, 1, 1, 0 + 1)
    assert a["winner"] == "3" and a["vote"] == 1.0
    assert a["flops"] == 100.0 + 4 * 10.0  # one shared prefill, four decodes
    assert b["vote"] == 0.5  # a tie of 3 (right) and 4 (wrong)
    v = browse.vote_counts(df)
    assert v[v["problem_id"] == "a"][["answer", "count", "correct"]].values.tolist() == [["3", 2, True], ["5", 1, False]]


def report_data(path):
    html = path.read_text()
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    return html, json.loads(m.group(1))


def test_report_of_a_sweep_is_self_contained(tmp_path):
    store = small_run(tmp_path)
    path = store.root / "report.html"  # written by the runner's finish
    assert path.exists()
    html, data = report_data(path)
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "the page must load nothing from a network"
    assert "data:image/png;base64," in html
    assert "</script><!--" not in html.split('id="report-data">')[1].split("</script>")[0]
    rows = data["problems"]["rows"]
    assert len(rows) == 6
    assert all(len(v) <= 8 for v in data["samples"].values()) and len(data["samples"]) == 6
    assert len(data["questions"]) == 6  # rebuilt from the task: chain_sum is generated from the seed
    df = browse.load_columns(store.root, browse.LIGHT_COLUMNS)
    stats = browse.problem_stats(df)
    col = data["problems"]["columns"]
    assert sorted(r[col.index("correct")] for r in rows) == sorted(stats["correct"].tolist())
    first = rows[0]
    rec = df[(df["problem_id"] == first[col.index("problem_id")]) & (df["sample_index"] == 1)].iloc[0]
    shown = data["samples"]["0"][1]
    assert shown[0] == 1 and shown[1] == browse.sample_texts(store.root, 2)["text"].iloc[1]
    assert shown[8] == rec["decode_flops"] + rec["verifier_flops"]  # the prefill is shared: counted per problem
    assert shown[6:8] == [rec["prompt_tokens"], rec["generated_tokens"]] and shown[5] == rec["finish_reason"]


def test_report_failure_never_loses_the_run(tmp_path, monkeypatch, capsys):
    import ttc.report

    def broken(run_dir):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(ttc.report, "write_report", broken)
    store = small_run(tmp_path)
    assert (store.root / "summary.csv").exists() and not (store.root / "report.html").exists()
    assert "warning: report.html not written (RuntimeError: drawing failed)" in capsys.readouterr().err


def test_large_run_page_is_bounded(tmp_path):
    store = synthetic_run(tmp_path, problems=60, samples=64)
    path = write_report(store.root, samples_per_problem=5, max_chars=50, max_problems=40)
    html, data = report_data(path)
    assert len(data["problems"]["rows"]) == 60  # statistics for every problem
    assert len(data["samples"]) == 40 and all(len(v) == 5 for v in data["samples"].values())
    assert all(len(s[1]) <= 50 + 60 for v in data["samples"].values() for s in v)
    assert "the first 5 samples of each problem" in html
    assert data["questions"] == {} and "No question" in data["question_note"]


def test_show_cli(tmp_path, capsys):
    store = small_run(tmp_path)
    assert show_main([str(store.root), "--wrong"]) == 0
    listing = capsys.readouterr().out
    stats = browse.problem_stats(browse.load_columns(store.root, browse.LIGHT_COLUMNS))
    wrong = stats[stats["vote"] < 1]["problem_id"].tolist()
    assert all(pid in listing for pid in wrong) and len(listing.strip().splitlines()) == len(wrong) + 1
    pid = stats["problem_id"].iloc[0]
    assert show_main([str(store.root), "--problem", pid, "--samples", "2"]) == 0
    out = capsys.readouterr().out
    assert f"== {pid}" in out and "gold:" in out and "question:" in out and out.count("--- #") == 2
    assert show_main([str(store.root), "--problem", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: no problem 'nope'")


def test_run_prints_routes_after_the_summary(tmp_path, capsys):
    from ttc.run import print_routes

    store = small_run(tmp_path)
    capsys.readouterr()
    print_routes(store.root)
    out = capsys.readouterr().out
    table = extraction_routes(browse.load_columns(store.root, ["task", "model", "sampler", "answer", "answer_strict",
                                                                "correct"])).iloc[0]
    assert out.startswith("answers by extraction route")
    assert f"{100 * table['strict']:.1f}" in out and f"{100 * table['flexible']:.1f}" in out

"""The report page's data (per-problem statistics, votes, bounded texts), extraction routes, ttc show."""

import json
import re

import pandas as pd
import pytest
from reportruns import small_run, synthetic_run

from ttc.cli.show import main as show_main
from ttc.metrics.routes import extraction_routes, record_routes
from ttc.report import browse
from ttc.report.html import write_report


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
    import ttc.report.html

    def broken(run_dir, **given):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(ttc.report.html, "write_report", broken)
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
    from ttc.cli.run import print_routes

    store = small_run(tmp_path)
    capsys.readouterr()
    print_routes(store.root)
    out = capsys.readouterr().out
    table = extraction_routes(browse.load_columns(store.root, ["task", "model", "sampler", "answer", "answer_strict",
                                                                "correct"])).iloc[0]
    assert out.startswith("answers by extraction route")
    assert f"{100 * table['strict']:.1f}" in out and f"{100 * table['flexible']:.1f}" in out


def random_records(seed: int) -> pd.DataFrame:
    """Records of two tasks x two models x two samplers, in shuffled order: ties, unparsed answers, an
    answer graded both ways, unshared prefills and missing verifier costs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for task, model, sampler in [(t, m, s) for t in ("t1", "t0") for m in ("m", "a") for s in ("sample", "beam")]:
        for p in rng.permutation(9):
            n = int(rng.integers(1, 9))
            for i in range(n):
                a = rng.choice(["1", "2", "3", "", "10"], p=[.3, .2, .2, .2, .1]) or None
                rows.append(dict(task=task, model=model, sampler=sampler, problem_id=f"p{p}", sample_index=i,
                                 n_samples=n, answer=a, answer_strict=a if rng.random() < .5 else None, gold="2",
                                 correct=a == "2" or (a == "10" and bool(rng.random() < .5)),
                                 prompt_tokens=int(rng.integers(5, 9)), generated_tokens=int(rng.integers(1, 50)),
                                 finish_reason="length" if rng.random() < .2 else "stop",
                                 prefill_flops=float(rng.integers(1, 5)), decode_flops=float(rng.integers(1, 99)),
                                 prefill_shared=bool(p % 3), verifier_flops=float(rng.integers(0, 3)) or None))
    return pd.DataFrame(rows).sample(frac=1, random_state=seed).reset_index(drop=True)


def stats_by_definition(df: pd.DataFrame) -> dict:
    """problem_stats' numbers and vote_counts' rows, one problem at a time in plain Python."""
    out = {}
    for key, g in df.groupby(browse.KEYS):
        recs = g.sort_values("sample_index").to_dict("records")
        answers = [r["answer"] for r in recs if isinstance(r["answer"], str)]
        counts = {a: answers.count(a) for a in answers}
        good = {a: any(r["correct"] for r in recs if r["answer"] == a) for a in counts}
        votes = sorted(counts, key=lambda a: (-counts[a], a))
        winners = [a for a in votes if counts[a] == counts[votes[0]]]
        prefill = [r["prefill_flops"] for r in recs]
        out[key] = dict(
            n=len(recs), correct=sum(r["correct"] for r in recs), unparsed=len(recs) - len(answers),
            flex_only=sum(r["correct"] and isinstance(r["answer"], str) and r["answer_strict"] != r["answer"]
                          for r in recs),
            length=sum(r["finish_reason"] == "length" for r in recs),
            generated_tokens=sum(r["generated_tokens"] for r in recs) / len(recs),
            flops=(max(prefill) if recs[0]["prefill_shared"] else sum(prefill))
            + sum(r["decode_flops"] for r in recs) + sum(0 if pd.isna(r["verifier_flops"]) else r["verifier_flops"] for r in recs),
            vote=sum(good[a] for a in winners) / len(winners) if winners else 0.0,
            winner=votes[0] if votes else None, tied=len(winners),
            votes=[[a, counts[a], good[a], rank] for rank, a in enumerate(votes)])
    return out


@pytest.mark.parametrize("seed", range(4))
def test_problem_stats_and_votes_equal_their_definition(seed):
    df = random_records(seed)
    expected = stats_by_definition(df)
    stats = browse.problem_stats(df).set_index(browse.KEYS)
    votes = browse.vote_counts(df)
    assert list(stats.index) == sorted(expected)  # one row per problem, in key order
    for key, e in expected.items():
        row = stats.loc[key]
        for col in ("n", "correct", "unparsed", "flex_only", "length", "tied"):
            assert row[col] == e[col], (key, col)
        for col in ("generated_tokens", "flops", "vote"):
            assert row[col] == pytest.approx(e[col], rel=1e-12), (key, col)
        assert (row["winner"] if isinstance(row["winner"], str) else None) == e["winner"]
        mine = votes[(votes[browse.KEYS] == pd.Series(key, index=browse.KEYS)).all(axis=1)]
        assert mine[["answer", "count", "correct", "rank"]].values.tolist() == e["votes"], key
    ordered = df.sort_values(browse.KEYS + ["sample_index"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(browse.vote_counts(ordered), votes)  # the input's order does not matter


def test_the_sweeps_page_equals_the_page_written_from_disk(tmp_path, monkeypatch):
    """The finish hands the page the records and summary it has; the page is the one ttc report
    writes from the run directory alone, and the records were read once for both."""
    import ttc.store.runstore

    reads = []
    real = ttc.store.runstore.read_records
    monkeypatch.setattr(ttc.store.runstore, "read_records", lambda *a, **k: reads.append(a) or real(*a, **k))
    store = small_run(tmp_path)
    finished = (store.root / "report.html").read_text()
    assert len(reads) == 1
    write_report(store.root)
    assert (store.root / "report.html").read_text() == finished


def test_the_page_script_sets_stored_text_as_text_only():
    """The page's one rule for stored text (model outputs, answers, ids, questions): ``textContent``, never an
    HTML parser. The script calls none of the ways to parse a string as HTML or code, and sets only two attributes:
    the link to a problem (``#problem=`` and the id through encodeURIComponent) and aria-sort."""
    from ttc.report.page import JS

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "DOMParser", "createContextualFragment", "srcdoc"):
        assert sink not in JS, sink
    assert re.findall(r"setAttribute\('([a-z-]+)'", JS) == ["aria-sort", "href"]
    assert "'#problem=' + encodeURIComponent(" in JS


def test_the_page_explains_the_resume_count():
    from pathlib import Path

    from ttc.report.html import provenance_section

    page = provenance_section({"run_id": "r", "resumed": 2}, Path("r"))
    assert "the same command was run again on this run 2 times" in page
    assert "0 (written by one run of the command)" in provenance_section({"run_id": "r"}, Path("r"))

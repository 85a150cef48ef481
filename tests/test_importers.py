"""ttc import: lm-evaluation-harness --log_samples output and inspect_ai eval logs become runs, faithfully.

The logs here are written in each tool's documented layout, so every branch is cheap to reach; logs made by the
tools themselves are imported and re-scored in tests/test_importers_real.py."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from ttc import load_run
from ttc.cli.importers import build_parser
from ttc.cli.importers import main as import_main
from ttc.errors import TTCError
from ttc.report import browse

GSM_FILTERS = [
    {"name": "strict-match", "filter": [{"function": "regex", "regex_pattern": "#### (\\-?[0-9\\.\\,]+)"},
                                        {"function": "take_first"}]},
    {"name": "flexible-extract", "filter": [{"function": "regex", "group_select": -1,
                                             "regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)"},
                                            {"function": "take_first"}]},
    {"name": "flex-maj", "filter": [{"function": "regex", "group_select": -1,
                                     "regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)"},
                                    {"function": "majority_vote"}, {"function": "take_first"}]},
]
GSM_METRIC = {"metric": "exact_match", "aggregation": "mean", "higher_is_better": True, "ignore_case": True,
              "ignore_punctuation": False, "regexes_to_ignore": [",", "\\$", "(?s).*#### ", "\\.$"]}
DOCS = [  # (doc id, question, target, four completions)
    ("tom-18", "Tom has 3 apples and buys 15. How many?", "18",
     ["3 + 15 = 18\n#### 18", "He has 18 apples.", "I think 17", "no idea"]),
    ("six-7", "What is 6 times 7?", "42", ["#### 41", "#### 42", "6*7 is 42.", "42"]),
]


def values(col: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in col]


def lm_eval_answers(texts, f):
    """What lm-eval itself logs as filtered_resps for the fixtures (worked out by hand, per filter)."""
    import re

    step = f["filter"][0]
    if step["function"] != "regex":
        return list(texts)
    out = []
    for t in texts:
        m = re.findall(step["regex_pattern"], t)
        if not m:
            out.append("[invalid]")
            continue
        m = m[step.get("group_select", 0)]
        out.append((next((x for x in m if x), "[invalid]") if isinstance(m, tuple) else m).strip())
    return out


def write_lm_eval(out: Path, docs=DOCS, filters=GSM_FILTERS, metric=GSM_METRIC, date="2026-01-02T03-04-05.678901",
                  with_results=True, logged=None, config_extra=None):
    """An lm-eval --output_path: samples_<task>_<date>.jsonl (one line per doc and filter) and results_<date>.json.
    ``logged(filter, doc index)`` overrides the per-document exact_match lm-eval would log."""
    from collections import Counter

    d = out / "org__model"
    d.mkdir(parents=True)
    gen = {"until": ["Question:"], "do_sample": True, "temperature": 0.8, "top_k": 20, "max_gen_toks": 64}
    lines, reported = [], {}
    for f in filters:
        per_doc = []
        for i, (doc_id, q, target, resps) in enumerate(docs):
            answers = lm_eval_answers(resps, f)
            chosen = answers[0] if f["filter"][1]["function"] == "take_first" else Counter(answers).most_common(1)[0][0]
            norm = chosen.replace(",", "").replace("$", "").rstrip(".").lower()
            score = float(norm == target) if logged is None else logged(f["name"], i)
            per_doc.append(score)
            lines.append({"doc_id": i, "doc": {"id": doc_id, "question": q, "answer": f"... #### {target}"},
                          "target": target,
                          "arguments": {"gen_args_0": {"arg_0": f"Question: {q}\nAnswer:", "arg_1": gen}},
                          "resps": [resps], "filtered_resps": [chosen], "filter": f["name"],
                          "metrics": ["exact_match"], "doc_hash": "x", "prompt_hash": "y", "target_hash": "z",
                          "exact_match": score})
        reported[f"exact_match,{f['name']}"] = sum(per_doc) / len(per_doc)
    (d / f"samples_gsm_tiny_{date}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    if with_results:
        (d / f"results_{date}.json").write_text(json.dumps({
            "results": {"gsm_tiny": {"alias": "gsm_tiny", **reported}},
            "configs": {"gsm_tiny": {"task": "gsm_tiny", "repeats": len(docs[0][3]), "output_type": "generate_until",
                                     "generation_kwargs": gen, "filter_list": filters, "metric_list": [metric],
                                     **(config_extra or {})}},
            "config": {"model": "hf", "model_args": "pretrained=org/model,dtype=float32"},
            "n-samples": {"gsm_tiny": {"original": len(docs), "effective": len(docs)}},
            "lm_eval_version": "0.4.13", "model_name": "org/model"}))
    return out


def imported(capsys) -> Path:
    return Path(capsys.readouterr().out.split("-> ")[1].split()[0].strip())


def summary_value(run: Path, label: str, metric: str, budget: int) -> float:
    s = pd.read_csv(run / "summary.csv")
    s = s[(s["level"].astype(str) == "all") & (s["sampler"] == label) & (s["metric"] == metric) & (s["budget"] == budget)]
    return float(s["value"].iloc[0])


def test_every_filter_is_a_label_graded_as_lm_eval_grades(tmp_path, tiny_model_dir, capsys):
    src = write_lm_eval(tmp_path / "lm")
    assert import_main(["lm-eval", str(src), "--out", str(tmp_path / "runs"), "--model-config", tiny_model_dir,
                        "--tokenizer", tiny_model_dir]) == 0
    run = imported(capsys)
    df = load_run(run)
    assert set(df["sampler"]) == {"imported:strict-match", "imported:flexible-extract", "imported:flex-maj"}
    flex = df[df["sampler"] == "imported:flexible-extract"].sort_values(["problem_id", "sample_index"])
    # the doc's own ids, in the log's order of completions; the answers as lm-eval's filter gives them
    assert flex["problem_id"].tolist() == ["six-7"] * 4 + ["tom-18"] * 4
    assert values(flex["answer"]) == ["41", "42", "42.", "42", "18", "18", "17", None]
    # "42." is 42 under the task's regexes_to_ignore ("\\.$"), as lm-eval graded it
    assert flex["correct"].tolist() == [False, True, True, True, True, True, False, False]
    strict = df[df["sampler"] == "imported:strict-match"].sort_values(["problem_id", "sample_index"])
    assert values(strict["answer"]) == ["41", "42", None, None, "18", None, None, None]
    assert (flex["prompt_tokens"] > 0).all() and (flex["decode_flops"] > 0).all()
    # lm-eval's number for each filter is in the summary: take_first = vote of the first, majority = vote of all
    results = json.loads(next(src.rglob("results_*.json")).read_text())["results"]["gsm_tiny"]
    assert summary_value(run, "imported:flexible-extract", "vote@k", 1) == results["exact_match,flexible-extract"] == 0.5
    assert summary_value(run, "imported:strict-match", "vote@k", 1) == results["exact_match,strict-match"] == 0.5
    assert summary_value(run, "imported:flex-maj", "vote@k", 4) == results["exact_match,flex-maj"] == 1.0
    assert summary_value(run, "imported:flexible-extract", "mean@k", 1) == pytest.approx((3 / 4 + 2 / 4) / 2)
    header = json.loads((run / "header.json").read_text())
    assert [r["metric"] for r in header["source"]["reported"]] == ["vote@k"] * 3
    assert header["source"]["sampling"] == {"top_k": 20, "stop": ["Question:"], "max_tokens": 64}
    assert header["source"]["notes"] == []  # every document agrees with lm-eval's logged value
    first = browse.sample_texts(run, 1)
    extra = first[first["sampler"] == "imported:flexible-extract"]["extra"].tolist()
    assert [(e["doc_id"], e["lm_eval"], e["lm_eval_filtered"]) for e in extra] == [(1, {"exact_match": 0.0}, "41"),
                                                                                  (0, {"exact_match": 1.0}, "18")]
    assert extra[0]["question"].startswith("Question: What is 6") and "doc" not in extra[0]
    # the doc itself is kept once, under the label that holds the completions for `ttc rescore`
    assert header["source"]["texts_label"] == "imported:strict-match"
    assert first[first["sampler"] == "imported:strict-match"]["extra"].iloc[1]["doc"]["id"] == "tom-18"
    assert (run / "report.html").exists() and "-0.0" not in (run / "summary.csv").read_text()


def test_both_spellings_and_aliases_name_the_same_format(tmp_path, capsys):
    src = write_lm_eval(tmp_path / "lm")
    assert import_main(["lm_eval", str(src), "--out", str(tmp_path / "runs")]) == 0
    first = capsys.readouterr().out
    assert import_main(["lm-eval", str(src), "--out", str(tmp_path / "runs")]) == 0
    again = capsys.readouterr().out
    assert "already imported" in again and first.split("-> ")[1].split()[0] == again.split("-> ")[1].split()[0]
    assert import_main(["LM-Eval", str(src), "--out", str(tmp_path / "runs")]) == 0
    capsys.readouterr()
    assert import_main(["nope", str(src), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: unknown format 'nope'; known: lm-eval, inspect")


def test_the_import_prints_lm_eval_beside_ttc(tmp_path, capsys):
    src = write_lm_eval(tmp_path / "lm")
    assert import_main(["lm-eval", str(src), "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr()
    lines = [ln for ln in out.out.splitlines() if ln.strip().startswith("imported:")]
    assert len(lines) == 3
    for ln in lines:
        cells = ln.split()
        assert cells[2] == cells[-1]  # lm-eval's value and ttc's, to four places
    assert "FLOPs unknown" in out.err


def test_without_token_counts_flops_are_unknown_not_zero(tmp_path, capsys):
    src = write_lm_eval(tmp_path / "lm")
    assert import_main(["lm-eval", str(src), "--out", str(tmp_path / "runs")]) == 0
    run = imported(capsys)
    df = load_run(run)
    assert df["generated_tokens"].isna().all() and df["decode_flops"].isna().all()
    assert set(df["finish_reason"]) == {"unknown"}
    s = pd.read_csv(run / "summary.csv")
    assert s["flops_per_problem"].isna().all()
    assert "-0.0" not in (run / "summary.csv").read_text()
    header = json.loads((run / "header.json").read_text())
    assert header["flops_convention"].startswith("FLOPs: unknown")
    assert any("FLOPs: unknown" in a for a in header["assumptions"])
    assert (run / "curve.png").stat().st_size > 0


def test_a_huge_import_leaves_the_page_to_ttc_report(tmp_path, capsys, monkeypatch):
    from ttc.importers import write

    monkeypatch.setattr(write, "REPORT_MAX_RECORDS", 4)
    src = write_lm_eval(tmp_path / "lm")
    assert import_main(["lm-eval", str(src), "--out", str(tmp_path / "runs")]) == 0
    captured = capsys.readouterr()
    run = Path(captured.out.split("-> ")[1].split()[0])
    assert f"note: report.html not written for 24 records (over 4); `ttc report {run}` draws it" in captured.err
    assert (run / "summary.csv").exists() and not (run / "report.html").exists()
    assert import_main(["lm-eval", str(src), "--out", str(tmp_path / "bare"), "--no-summary"]) == 0
    captured = capsys.readouterr()
    bare = Path(captured.out.split("-> ")[1].split()[0])
    assert "no summary.csv yet" in captured.out and not (bare / "summary.csv").exists()
    assert len(load_run(bare)) == 24


def test_curve_without_flops_plots_samples_per_problem(recwarn):
    from ttc.report.curve import plot_curve

    s = pd.DataFrame({"task": "t", "model": "m", "sampler": "s", "metric": "mean@k", "budget": [1, 2, 4],
                      "value": [0.1, 0.2, 0.3], "ci_low": 0.0, "ci_high": 0.5, "flops_per_problem": math.nan,
                      "level": "all"})
    fig = plot_curve(s)
    ax = fig.axes[0]
    assert "FLOPs unknown" in ax.get_xlabel() and list(ax.lines[0].get_xdata()) == [1, 2, 4]
    assert not [w for w in recwarn if "positive" in str(w.message)]


def test_exact_match_options_are_the_tasks(tmp_path, capsys):
    # without the options (ignore nothing) "42." is wrong, and lm-eval's logged values say so: they agree
    src = write_lm_eval(tmp_path / "lm", metric={"metric": "exact_match"},
                        logged=lambda f, i: {("flexible-extract", 0): 1.0, ("flexible-extract", 1): 0.0}.get((f, i), 0.0))
    assert import_main(["lm-eval", str(src), "--out", str(tmp_path / "runs"), "--filter", "flexible-extract"]) == 0
    run = imported(capsys)
    flex = load_run(run).sort_values(["problem_id", "sample_index"])
    assert flex["correct"].tolist() == [False, True, False, True, True, True, False, False]
    header = json.loads((run / "header.json").read_text())
    assert header["source"]["notes"] == [] and header["config"]["sweep"]["samplers"] == ["imported:flexible-extract"]


def test_a_disagreement_with_lm_eval_is_said(tmp_path, capsys):
    src = write_lm_eval(tmp_path / "lm", logged=lambda f, i: 1.0)  # lm-eval says every document was right
    assert import_main(["lm-eval", str(src), "--out", str(tmp_path / "runs")]) == 0
    captured = capsys.readouterr()
    assert "note: filter 'strict-match': ttc's grading differs from lm-eval's logged value on 1 of 2 documents" \
        in captured.err


@pytest.mark.parametrize("extra, message", [
    ({"metric_list": [{"metric": "bleu"}]}, "is scored with lm-eval metric(s) bleu; ttc reproduces exact_match only"),
    ({"process_results": "def process_results(doc, results): ..."}, "is scored by its own process_results"),
    ({"metric_list": [{"metric": "exact_match", "strip": True}]}, "uses exact_match option(s) strip"),
])
def test_a_grading_ttc_cannot_reproduce_is_refused_in_one_line(tmp_path, capsys, extra, message):
    src = write_lm_eval(tmp_path / "lm", config_extra=extra)
    assert import_main(["lm-eval", str(src), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "ttc rescore" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_filter_ttc_cannot_reapply_is_left_out_and_said(tmp_path, capsys):
    odd = {"name": "odd", "filter": [{"function": "custom", "filter_fn": "x"}, {"function": "take_first"}]}
    src = write_lm_eval(tmp_path / "lm", filters=GSM_FILTERS[:1] + [odd])
    # lm-eval's own odd filter: write_lm_eval works out a regex; the custom step is what ttc does not know
    assert import_main(["lm-eval", str(src), "--out", str(tmp_path / "runs")]) == 0
    captured = capsys.readouterr()
    assert "note: filter 'odd': step(s) custom" in captured.err and "filter left out" in captured.err
    run = Path(captured.out.split("-> ")[1].split()[0])
    assert set(load_run(run)["sampler"]) == {"imported:strict-match"}
    assert import_main(["lm-eval", str(src), "--out", str(tmp_path / "runs2"), "--filter", "odd"]) == 2
    assert "filter 'odd': step(s) custom" in capsys.readouterr().err


def test_without_results_file_reducing_filters_are_left_out(tmp_path, capsys):
    src = write_lm_eval(tmp_path / "lm", with_results=False)
    assert import_main(["lm-eval", str(src), "--out", str(tmp_path / "runs")]) == 2
    assert "no samples to import" in capsys.readouterr().err


def test_ids_are_the_harness_and_a_repeated_id_is_refused(tmp_path, capsys):
    docs = [(f"q{i}", f"{i} + 0 =", str(i), [str(i), "0"]) for i in (2, 10, 1)]
    src = write_lm_eval(tmp_path / "lm", docs=docs)
    assert import_main(["lm-eval", str(src), "--out", str(tmp_path / "runs"), "--id-field", "doc_id"]) == 0
    run = imported(capsys)
    df = load_run(run, columns=["problem_id", "extra", "sample_index"])
    assert sorted(set(df["problem_id"])) == ["0", "1", "2"]
    assert import_main(["lm-eval", str(src), "--out", str(tmp_path / "runs")]) == 0
    assert set(load_run(imported(capsys))["problem_id"]) == {"q2", "q10", "q1"}
    same = write_lm_eval(tmp_path / "dup", docs=[("a", "x", "1", ["1"]), ("a", "y", "2", ["2"])])
    assert import_main(["lm-eval", str(same), "--out", str(tmp_path / "runs3")]) == 2
    assert "problem id 'a' is given twice" in capsys.readouterr().err
    assert not any((tmp_path / "runs3").iterdir())  # the half-written run is gone


def test_import_errors_are_one_line(tmp_path, capsys):
    assert import_main(["lm_eval", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    bad = tmp_path / "samples_t_2026-01-01T00-00-00.1.jsonl"
    bad.write_text("{not json\n")
    assert import_main(["lm_eval", str(bad), "--out", str(tmp_path / "runs")]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_help_shows_each_default_once():
    text = build_parser().format_help()
    assert "(default: None)" not in text and "the log's) (default" not in " ".join(text.split())


def inspect_log(epochs=3, status="success", errors=()):
    """An inspect_ai EvalLog in its JSON layout: a match() and an includes() scorer, `epochs` epochs of two
    samples; the (id, epoch) pairs in ``errors`` failed."""
    answers = {"q1": ["3", "3", "4"], "q2": ["", "10", "10"]}
    samples = []
    for sid, target in (("q1", "3"), ("q2", "10")):
        for e in range(1, epochs + 1):
            a = answers[sid][e - 1]
            text = f"The answer is {a}" if a else "I am not sure"
            s = {"id": sid, "epoch": e, "input": [{"role": "user", "content": f"What is {sid}?"}], "target": target,
                 "messages": [{"role": "user", "content": f"What is {sid}?"}, {"role": "assistant", "content": text}],
                 "output": {"model": "hf/tiny", "completion": text, "time": 0.5,
                            "choices": [{"message": {"role": "assistant", "content": text},
                                         "stop_reason": "unknown" if not a else "stop"}],
                            "usage": {"input_tokens": 12, "output_tokens": 32 if not a else 4 + e}},
                 "scores": {"match": {"value": "C" if a == target else "I", "answer": a},
                            "includes": {"value": "C" if a else "I", "answer": text, "explanation": "x"}},
                 "metadata": {}, "total_time": 1.5, "working_time": 1.25}
            if (sid, e) in errors:
                s = {"id": sid, "epoch": e, "input": s["input"], "target": target,
                     "error": {"message": "RuntimeError('tool server went away')", "traceback": "..."}}
            samples.append(s)
    return {"version": 2, "status": status,
            "eval": {"task": "arith", "model": "hf/tiny", "created": "2026-01-01T00:00:00+00:00",
                     "dataset": {"samples": 2, "sample_ids": ["q1", "q2"]}, "config": {"epochs": epochs},
                     "model_generate_config": {"temperature": 0.7, "max_tokens": 32, "stop_seqs": ["\n\n"]},
                     "scorers": [{"name": "match"}, {"name": "includes"}], "packages": {"inspect_ai": "0.3.285"}},
            "plan": {"steps": [{"solver": "generate"}]},
            "results": {"scores": [{"name": "match", "metrics": {"accuracy": {"value": 2 / 3}}},
                                   {"name": "includes", "metrics": {"accuracy": {"value": 5 / 6}}}]},
            "stats": {}, "samples": samples}


def test_inspect_epochs_become_records_with_every_score(tmp_path, tiny_model_dir, capsys):
    path = tmp_path / "log.json"
    path.write_text(json.dumps(inspect_log()))
    assert import_main(["inspect", str(path), "--out", str(tmp_path / "runs"), "--model-config", tiny_model_dir]) == 0
    run = imported(capsys)
    df = load_run(run).sort_values(["problem_id", "sample_index"])
    assert set(df["sampler"]) == {"imported:match"}
    assert values(df["answer"]) == ["3", "3", "4", None, "10", "10"]
    assert df["correct"].tolist() == [True, True, False, False, True, True]
    assert df["generated_tokens"].tolist() == [5, 6, 7, 32, 6, 7] and set(df["prompt_tokens"]) == {12}
    # 'unknown' where the output used every token is a length stop (as lm-eval's importer infers)
    assert df["finish_reason"].tolist() == ["stop", "stop", "stop", "length", "stop", "stop"]
    assert (df["decode_flops"] > 0).all()
    e = df["extra"].iloc[0]
    assert e["scores"]["includes"] == {"value": "C", "answer": "The answer is 3", "explanation": "x"}
    assert e["timing"] == {"total_time": 1.5, "working_time": 1.25, "generate_time": 0.5}
    assert e["messages"][1] == {"role": "assistant", "text": "The answer is 3"}
    header = json.loads((run / "header.json").read_text())
    assert header["source"]["epochs"] == 3 and header["config"]["sampling"]["temperature"] == 0.7
    assert header["source"]["sampling"]["stop"] == ["\n\n"]
    assert browse.sample_texts(run, 1)["extra"].iloc[0]["question"] == "user: What is q1?"
    # inspect's accuracy (each sample's epochs reduced by their mean) is the summary's mean@k at k=1
    assert summary_value(run, "imported:match", "mean@k", 1) == pytest.approx(2 / 3)
    assert header["source"]["reported"] == [{"label": "imported:match", "name": "match/accuracy (mean)",
                                             "value": 2 / 3, "metric": "mean@k", "budget": 1}]


def test_an_errored_inspect_log_is_refused_unless_allowed(tmp_path, capsys):
    path = tmp_path / "log.json"
    path.write_text(json.dumps(inspect_log(status="error", errors={("q2", 2), ("q2", 3)})))
    assert import_main(["inspect", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: the eval ended with status 'error': 2 of 6 samples carry an error")
    assert "--allow-errors imports the 4 good samples" in err and not (tmp_path / "runs").exists()
    assert import_main(["inspect", str(path), "--out", str(tmp_path / "runs"), "--allow-errors"]) == 0
    run = imported(capsys)
    df = load_run(run)
    assert len(df) == 4 and df.groupby("problem_id").size().to_dict() == {"q1": 3, "q2": 1}
    header = json.loads((run / "header.json").read_text())
    assert header["source"]["errors"]["samples_with_error"] == 2 and header["source"]["errors"]["status"] == "error"
    assert any("--allow-errors" in a for a in header["assumptions"])


def test_samples_with_errors_in_a_successful_log_are_refused_too(tmp_path, capsys):
    path = tmp_path / "log.json"
    path.write_text(json.dumps(inspect_log(errors={("q1", 1)})))
    assert import_main(["inspect", str(path), "--out", str(tmp_path / "runs")]) == 2
    assert "status 'success': 1 of 6 samples carry an error (RuntimeError('tool server went away'))" in \
        capsys.readouterr().err


def test_inspect_eval_without_inspect_ai_says_so(tmp_path, capsys):
    path = tmp_path / "log.eval"
    path.write_bytes(b"PK\x03\x04")
    try:
        import inspect_ai  # noqa: F401

        pytest.skip("inspect_ai is importable here: the .eval path is covered by the real-log test")
    except ImportError:
        pass
    assert import_main(["inspect", str(path), "--out", str(tmp_path / "runs")]) == 2
    assert "needs inspect_ai" in capsys.readouterr().err


def test_the_imported_strategy_never_runs():
    from samplers import get_sampler

    with pytest.raises(TTCError, match="only evaluates records that `ttc import` brought in"):
        get_sampler("imported")


def tree_digest(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(path)).encode() + p.read_bytes())
    return h.hexdigest()


def test_rescore_a_ttc_run_after_its_grader_changes(tmp_path, capsys, monkeypatch):
    from conftest import scripted

    from tasks.rg import ReasoningGymTask
    from ttc.backends.fake import FakeBackend
    from ttc.cli.rescore import main as rescore_main
    from ttc.sweep.config import RunConfig, SweepConfig
    from ttc.sweep.runner import run_sweep

    cfg = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=("smollm2-135m",), budgets=(1, 2, 4), limit=6),
                    out=str(tmp_path / "runs"))
    source = run_sweep(cfg, backend_factory=lambda m, c: FakeBackend(scripted()), progress=False).root
    before = tree_digest(source)
    assert rescore_main([str(source), "--task", "chain_sum"]) == 0
    same = Path(capsys.readouterr().out.split("-> ")[1].strip())
    cols = ["sampler", "problem_id", "sample_index", "text", "answer", "correct", "decode_flops", "finish_reason"]
    # the grader has not changed
    pd.testing.assert_frame_equal(load_run(same, texts=True)[cols], load_run(source, texts=True)[cols])
    # a grader that changed: every extracted answer is right now
    monkeypatch.setattr(ReasoningGymTask, "grade", lambda self, answer, problem: answer is not None)
    assert rescore_main([str(source), "--task", "chain_sum", "--out", str(tmp_path / "again")]) == 0
    changed = Path(capsys.readouterr().out.split("-> ")[1].strip())
    df, old = load_run(changed), load_run(source)
    assert changed.parent == tmp_path / "again" and changed.name != source.name
    assert df["correct"].tolist() == df["answer"].notna().tolist() != old["correct"].tolist()
    assert [e["source"]["correct"] for e in df["extra"]] == old["correct"].tolist()
    header = json.loads((changed / "header.json").read_text())
    assert header["rescored_from"]["run_id"] == source.name and header["rescored_from"]["task"] == ["chain_sum"]
    assert pd.read_csv(changed / "summary.csv").shape == pd.read_csv(source / "summary.csv").shape
    assert tree_digest(source) == before  # the source is never modified


def test_rescore_a_schema_1_run_keeps_its_labels(tmp_path, capsys):
    import shutil

    from ttc.cli.rescore import main as rescore_main

    fixture = Path(__file__).parent / "data" / "schema1-run"
    source = tmp_path / fixture.name
    shutil.copytree(fixture, source)
    before = tree_digest(source)
    assert rescore_main([str(source), "--task", "chain_sum"]) == 0
    new = Path(capsys.readouterr().out.split("-> ")[1].strip())
    df, old = load_run(new), load_run(source)
    assert set(df["sampler"]) == {"sample", "best_of_n"} and len(df) == len(old)
    assert df["answer"].equals(old["answer"]) and df["correct"].tolist() == old["correct"].tolist()
    assert tree_digest(source) == before and (source / "samples").is_dir()  # read in place, not converted


def test_rescore_refuses_what_it_cannot_grade(tmp_path, capsys):
    from ttc.cli.rescore import main as rescore_main

    src = write_lm_eval(tmp_path / "lm")
    # chain_sum's scorer needs its own problems' data, and no id of this log is one of them
    assert rescore_main([str(src), "--task", "chain_sum", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "task 'chain_sum' grades with its own problems' data" in err and "custom:<grader>" in err
    assert not any((tmp_path / "runs").iterdir())
    assert rescore_main([str(tmp_path / "nope"), "--task", "chain_sum"]) == 2
    assert rescore_main([str(src), "--task", "custom:exact", "--out", str(tmp_path / "runs")]) == 0
    run = Path(capsys.readouterr().out.split("-> ")[1].strip())
    df = load_run(run)
    assert set(df["sampler"]) == {"sample"} and len(df) == 8  # each completion once, not once per filter

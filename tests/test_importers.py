"""ttc import: lm-evaluation-harness --log_samples output and inspect_ai eval logs become runs.

The fixtures are written in each tool's documented layout; where the tool itself is installed (the
`.venv-harness` that `make test` builds, which sees this venv's packages), real logs made by it on the tiny
fixture model are imported too."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from ttc import load_run
from ttc.cli.importers import main as import_main
from ttc.report import browse

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / ".venv-harness" / "bin"

GSM_FILTERS = [
    {"name": "strict-match", "filter": [{"function": "regex", "regex_pattern": "#### (\\-?[0-9\\.\\,]+)"},
                                        {"function": "take_first"}]},
    {"name": "flexible-extract", "filter": [{"function": "regex", "group_select": -1,
                                             "regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)"},
                                            {"function": "take_first"}]},
]
DOCS = [  # (question, target, four completions)
    ("Tom has 3 apples and buys 15. How many?", "18",
     ["3 + 15 = 18\n#### 18", "He has 18 apples.", "I think 17", "no idea"]),
    ("What is 6 times 7?", "42", ["#### 42", "#### 41", "6*7 is 42", "42"]),
]


def values(col: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in col]


def write_lm_eval(out: Path, docs=DOCS, date="2026-01-02T03-04-05.678901", with_results=True):
    """An lm-eval --output_path: samples_<task>_<date>.jsonl (one line per doc and filter) and results_<date>.json."""
    d = out / "org__model"
    d.mkdir(parents=True)
    gen = {"until": ["Question:"], "do_sample": True, "temperature": 0.8, "max_gen_toks": 64}
    lines = []
    for f in GSM_FILTERS:
        for i, (q, target, resps) in enumerate(docs):
            first = resps[0]
            lines.append({"doc_id": i, "doc": {"question": q, "answer": f"... #### {target}"}, "target": target,
                          "arguments": {"gen_args_0": {"arg_0": f"Question: {q}\nAnswer:", "arg_1": gen}},
                          "resps": [resps], "filtered_resps": [first], "filter": f["name"],
                          "metrics": ["exact_match"], "doc_hash": "x", "prompt_hash": "y", "target_hash": "z",
                          "exact_match": 0.0})
    (d / f"samples_gsm_tiny_{date}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    if with_results:
        (d / f"results_{date}.json").write_text(json.dumps({
            "results": {"gsm_tiny": {"alias": "gsm_tiny", "exact_match,strict-match": 0.0}},
            "configs": {"gsm_tiny": {"task": "gsm_tiny", "repeats": 4, "output_type": "generate_until",
                                     "generation_kwargs": gen, "filter_list": GSM_FILTERS}},
            "config": {"model": "hf", "model_args": "pretrained=org/model,dtype=float32"},
            "lm_eval_version": "0.4.13", "model_name": "org/model"}))
    return out


def test_lm_eval_repeats_become_records(tmp_path, tiny_model_dir, capsys):
    src = write_lm_eval(tmp_path / "lm")
    assert import_main(["lm_eval", str(src), "--out", str(tmp_path / "runs"), "--filter", "flexible-extract",
                        "--model-config", tiny_model_dir, "--tokenizer", tiny_model_dir]) == 0
    run = Path(capsys.readouterr().out.split("-> ")[1].strip())
    df = load_run(run).sort_values(["problem_id", "sample_index"])
    assert len(df) == 8 and set(df["n_samples"]) == {4}
    # flexible: the last number (the regex's group_select -1), strict: "#### N" only
    assert values(df["answer"]) == ["18", "18", "17", None, "42", "41", "42", "42"]
    assert values(df["answer_strict"]) == ["18", None, None, None, "42", "41", None, None]
    assert df["correct"].tolist() == [True, True, False, False, True, False, True, True]
    assert (df["prompt_tokens"] > 0).all() and (df["decode_flops"] > 0).all() and (~df["prefill_shared"]).all()
    header = json.loads((run / "header.json").read_text())
    assert header["source"]["filter"] == "flexible-extract"
    text = " ".join(header["assumptions"])
    assert "flexible-extract" in text and "finish reasons" in text and "seed" in text
    summary = pd.read_csv(run / "summary.csv")
    mean1 = summary[(summary["metric"] == "mean@k") & (summary["budget"] == 1) & (summary["level"] == "all")]
    assert mean1["value"].iloc[0] == pytest.approx((2 / 4 + 3 / 4) / 2)
    assert (run / "report.html").exists()
    q = browse.sample_texts(run, 1)["extra"].iloc[0]
    assert q["question"].startswith("Question: Tom has 3 apples")


def test_lm_eval_default_filter_and_missing_fields(tmp_path, capsys):
    src = write_lm_eval(tmp_path / "lm", with_results=False)
    # without results_*.json a reducing filter cannot be re-applied per completion
    assert import_main(["lm_eval", str(src), "--out", str(tmp_path / "runs")]) == 2
    assert "reduces the 4 completions to one answer" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "lm")
    src = write_lm_eval(tmp_path / "lm")
    assert import_main(["lm_eval", str(src), "--out", str(tmp_path / "runs")]) == 0
    run = Path(capsys.readouterr().out.split("-> ")[1].strip())
    header = json.loads((run / "header.json").read_text())
    assert header["source"]["filter"] == "strict-match"  # the first filter in the file
    text = " ".join(header["assumptions"])
    assert "every FLOPs column is 0" in text and "counted as 0" in text
    df = load_run(run)
    assert (df["decode_flops"] == 0).all() and set(df["finish_reason"]) == {"unknown"}


def test_import_errors_are_one_line(tmp_path, capsys):
    assert import_main(["nope", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: unknown format 'nope'")
    assert import_main(["lm_eval", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    bad = tmp_path / "samples_t_2026-01-01T00-00-00.1.jsonl"
    bad.write_text("{not json\n")
    assert import_main(["lm_eval", str(bad), "--out", str(tmp_path / "runs")]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def inspect_log(epochs=3):
    """An inspect_ai EvalLog in its JSON layout: a match() scorer, `epochs` epochs of two samples."""
    answers = {"q1": ["3", "3", "4"], "q2": ["", "10", "10"]}
    samples = []
    for sid, target in (("q1", "3"), ("q2", "10")):
        for e in range(1, epochs + 1):
            a = answers[sid][e - 1]
            text = f"The answer is {a}" if a else "I am not sure"
            samples.append({"id": sid, "epoch": e, "input": [{"role": "user", "content": f"What is {sid}?"}],
                            "target": target,
                            "output": {"model": "hf/tiny", "completion": text,
                                       "choices": [{"message": {"role": "assistant", "content": text},
                                                    "stop_reason": "max_tokens" if not a else "stop"}],
                                       "usage": {"input_tokens": 12, "output_tokens": 4 + e, "total_tokens": 16 + e}},
                            "scores": {"match": {"value": "C" if a == target else "I", "answer": a}},
                            "metadata": {}})
    return {"version": 2, "status": "success",
            "eval": {"task": "arith", "model": "hf/tiny", "created": "2026-01-01T00:00:00+00:00",
                     "dataset": {"samples": 2}, "config": {"epochs": epochs},
                     "model_generate_config": {"temperature": 0.7, "max_tokens": 32},
                     "scorers": [{"name": "match"}], "packages": {"inspect_ai": "0.3.285"}},
            "plan": {"steps": [{"solver": "generate"}]}, "results": {}, "stats": {}, "samples": samples}


def test_inspect_epochs_become_records(tmp_path, tiny_model_dir, capsys):
    path = tmp_path / "log.json"
    path.write_text(json.dumps(inspect_log()))
    assert import_main(["inspect", str(path), "--out", str(tmp_path / "runs"), "--model-config", tiny_model_dir]) == 0
    run = Path(capsys.readouterr().out.split("-> ")[1].strip())
    df = load_run(run).sort_values(["problem_id", "sample_index"])
    assert values(df["answer"]) == ["3", "3", "4", None, "10", "10"]
    assert df["correct"].tolist() == [True, True, False, False, True, True]
    assert df["generated_tokens"].tolist() == [5, 6, 7, 5, 6, 7] and set(df["prompt_tokens"]) == {12}
    assert df["finish_reason"].tolist() == ["stop", "stop", "stop", "length", "stop", "stop"]
    assert (df["decode_flops"] > 0).all()
    header = json.loads((run / "header.json").read_text())
    assert header["source"]["epochs"] == 3 and header["config"]["sampling"]["temperature"] == 0.7
    assert browse.sample_texts(run, 1)["extra"].iloc[0]["question"] == "user: What is q1?"


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


LM_EVAL_TASK = """task: tiny_arith
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
repeats: 4
generation_kwargs:
  until: ["\\n\\n"]
  do_sample: true
  temperature: 1.0
  max_gen_toks: 16
filter_list:
  - name: "flexible-extract"
    filter:
      - function: "regex"
        group_select: -1
        regex_pattern: "(-?[0-9]+)"
  - name: "maj@4"
    filter:
      - function: "regex"
        group_select: -1
        regex_pattern: "(-?[0-9]+)"
      - function: "majority_vote"
      - function: "take_first"
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""


def harness_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=str(ROOT))
    return env


@pytest.mark.slow
@pytest.mark.timeout(1500)  # lm-eval given up to 600 s, then the import
@pytest.mark.skipif(not (HARNESS / "lm_eval").exists(), reason="lm-eval is not installed in .venv-harness "
                    "(`make harness` installs it)")
def test_real_lm_eval_log_on_the_tiny_model(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "arith.jsonl"
    data.write_text("".join(json.dumps({"question": f"{a} + {b} =", "answer": str(a + b)}) + "\n"
                            for a, b in [(1, 2), (3, 4), (5, 5), (2, 7), (8, 1)]))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "tiny_arith.yaml").write_text(LM_EVAL_TASK.format(data=data))
    cmd = [str(HARNESS / "lm_eval"), "--model", "hf", "--model_args", f"pretrained={tiny_model_dir},dtype=float32",
           "--tasks", "tiny_arith", "--include_path", str(tmp_path / "tasks"), "--device", "cpu", "--batch_size", "4",
           "--log_samples", "--output_path", str(tmp_path / "out"), "--seed", "0"]
    made = subprocess.run(cmd, capture_output=True, text=True, env=harness_env(), timeout=600, cwd=tmp_path)
    assert made.returncode == 0, made.stderr[-3000:]
    results = json.loads(next((tmp_path / "out").rglob("results_*.json")).read_text())["results"]["tiny_arith"]
    assert import_main(["lm_eval", str(tmp_path / "out"), "--out", str(tmp_path / "runs")]) == 0
    run = Path(capsys.readouterr().out.split("-> ")[1].strip())
    df = load_run(run)
    assert len(df) == 20 and set(df["n_samples"]) == {4}
    # counted with the tokenizer of the checkpoint the log names, costed with its config
    assert (df["prompt_tokens"] > 0).all() and (df["prefill_flops"] > 0).all() and df["generated_tokens"].sum() > 0
    assert ((df["decode_flops"] > 0) == (df["generated_tokens"] > 0)).all()
    s = pd.read_csv(run / "summary.csv")
    s = s[s["level"] == "all"].set_index(["metric", "budget"])["value"]
    # ttc's single-sample accuracy is lm-eval's per-completion exact match; maj@4 its majority-vote filter
    # up to ties, which lm-eval breaks by first occurrence and ttc scores as 1/t
    assert s[("mean@k", 1)] == pytest.approx(results["exact_match,flexible-extract"])
    assert abs(s[("maj@k", 4)] - results["exact_match,maj@4"]) <= 0.5
    assert (run / "report.html").exists()


INSPECT_TASK = """
import sys
from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.scorer import match
from inspect_ai.solver import generate

task = Task(dataset=[Sample(input=f"{a} + {b} =", target=str(a + b), id=f"q{a}{b}") for a, b in [(1, 2), (3, 4)]],
            solver=[generate()], scorer=match(numeric=True), epochs=3)
eval(task, model="hf/" + sys.argv[1], model_args={"device": "cpu"}, log_dir=sys.argv[2], display="none",
     max_tokens=8, temperature=1.0)
"""


@pytest.mark.slow
@pytest.mark.timeout(1500)  # two subprocesses of up to 600 s each
@pytest.mark.skipif(not (HARNESS / "inspect").exists(), reason="inspect_ai is not installed in .venv-harness "
                    "(`make harness` installs it)")
def test_real_inspect_log_on_the_tiny_model(tmp_path, tiny_model_dir):
    script = tmp_path / "task.py"
    script.write_text(INSPECT_TASK)
    py = str(HARNESS / "python")
    made = subprocess.run([py, str(script), tiny_model_dir, str(tmp_path / "logs")], capture_output=True, text=True,
                          env=harness_env(), timeout=600, cwd=tmp_path)
    assert made.returncode == 0, made.stderr[-3000:]
    log = next((tmp_path / "logs").glob("*.eval"))
    out = subprocess.run([py, "-m", "ttc.import", "inspect", str(log), "--out", str(tmp_path / "runs")],
                         capture_output=True, text=True, env=harness_env(), timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    run = Path(out.stdout.split("-> ")[1].strip())
    df = load_run(run)
    assert len(df) == 6 and set(df["n_samples"]) == {3}
    assert (df["prompt_tokens"] > 0).all() and (df["decode_flops"] > 0).all()

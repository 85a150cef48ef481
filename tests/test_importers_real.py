"""Logs made by lm-evaluation-harness and inspect_ai themselves (on the tiny fixture model), imported and re-scored.

The tools live in their own venv (`make harness` builds `.venv-harness`, which sees this venv's packages; the
environment variable TTC_HARNESS_VENV names another); without it these tests are skipped, with the reason. Each
tool runs once per module (a fixture) with a timeout, and the tests read what it wrote."""

import hashlib
import json
import math
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from test_importers import tree_digest

from ttc import load_run
from ttc.cli.importers import main as import_main
from ttc.cli.rescore import main as rescore_main

ROOT = Path(__file__).resolve().parent.parent
HARNESS = Path(os.environ.get("TTC_HARNESS_VENV") or ROOT / ".venv-harness") / "bin"
DATA = Path(__file__).parent / "data" / "lm_eval"
TIMEOUT = 900  # seconds for one tool run on a busy 2-core machine
# A test's timeout covers its fixtures' setup: the first test of a module runs the tool (up to TIMEOUT), then imports.
pytestmark = pytest.mark.timeout(2 * TIMEOUT)
needs_lm_eval = pytest.mark.skipif(not (HARNESS / "lm_eval").exists(), reason=f"lm-eval is not installed in "
                                   f"{HARNESS.parent} (`make harness` installs it, or set TTC_HARNESS_VENV)")
needs_inspect = pytest.mark.skipif(not (HARNESS / "inspect").exists(), reason=f"inspect_ai is not installed in "
                                   f"{HARNESS.parent} (`make harness` installs it, or set TTC_HARNESS_VENV)")

# A task whose filter keeps every completion's answer (lm-eval's value: the mean over completions) and a
# majority vote over them; no exact_match options (lm-eval cannot apply them to a list of answers).
ARITH_TASK = """task: tiny_arith
dataset_path: json
dataset_kwargs:
  data_files:
    test: tiny_arith.jsonl
test_split: test
output_type: generate_until
doc_to_text: "{{question}}"
doc_to_target: "{{answer}}"
repeats: 4
generation_kwargs:
  until: ["\\n\\n"]
  do_sample: true
  temperature: 1.0
  max_gen_toks: 8
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
# documents a model that favours "7" (conftest.build_tiny_model's skill) answers right some of the time
SEVENS = [("1 + 6 =", "7"), ("2 + 5 =", "7"), ("3 + 4 =", "7"), ("0 + 7 =", "7"), ("70 + 7 =", "77"),
          ("7 * 11 =", "77"), ("700 + 77 =", "777"), ("1 + 2 =", "3")]


def harness_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=str(ROOT))
    return env


@pytest.fixture(scope="module")
def skilled_model(tmp_path_factory):
    from conftest import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("skilled") / "m", skill=3.0))


@pytest.fixture(scope="module")
def lm_eval_out(tmp_path_factory, skilled_model):
    """One lm-eval run of two tasks: sevens_sc (tests/data/lm_eval/sevens_sc.yaml: five filters, take_first,
    majority_vote and take_first_k, GSM8K's exact_match options) and tiny_arith (above)."""
    if not (HARNESS / "lm_eval").exists():
        pytest.skip("lm-eval is not installed")
    work = tmp_path_factory.mktemp("lm_eval")
    tasks = work / "tasks"
    tasks.mkdir()
    (tasks / "sevens_sc.yaml").write_text((DATA / "sevens_sc.yaml").read_text())
    (tasks / "tiny_arith.yaml").write_text(ARITH_TASK)
    (work / "sevens_sc.jsonl").write_text("".join(json.dumps({"id": f"seven-{i}", "question": q, "answer": a}) + "\n"
                                                  for i, (q, a) in enumerate(SEVENS)))
    (work / "tiny_arith.jsonl").write_text("".join(json.dumps({"question": f"{a} + {b} =", "answer": str(a + b)})
                                                   + "\n" for a, b in [(1, 2), (3, 4), (5, 5), (2, 7), (8, 1)]))
    cmd = [str(HARNESS / "lm_eval"), "--model", "hf", "--model_args", f"pretrained={skilled_model},dtype=float32",
           "--tasks", "sevens_sc,tiny_arith", "--include_path", str(tasks), "--device", "cpu", "--batch_size", "64",
           "--log_samples", "--output_path", str(work / "out"), "--seed", "0"]
    made = subprocess.run(cmd, capture_output=True, text=True, env=harness_env(), timeout=TIMEOUT, cwd=work)
    assert made.returncode == 0, made.stderr[-3000:]
    return work


def results_of(out: Path, task: str) -> dict:
    for f in out.rglob("results_*.json"):
        r = json.loads(f.read_text())
        if task in r["results"]:
            return r["results"][task]
    raise AssertionError(f"no results for {task}")


def samples_file(out: Path, task: str) -> Path:
    return next(out.rglob(f"samples_{task}_*.jsonl"))


def summary_at(run: Path) -> pd.Series:
    s = pd.read_csv(run / "summary.csv")
    return s[s["level"].astype(str) == "all"].set_index(["sampler", "metric", "budget"])["value"]


@pytest.mark.slow
@needs_lm_eval
def test_a_real_self_consistency_log_gives_lm_evals_numbers(lm_eval_out, tmp_path, capsys):
    out = lm_eval_out / "out"
    assert import_main(["lm-eval", str(samples_file(out, "sevens_sc")), "--out", str(tmp_path / "runs")]) == 0
    captured = capsys.readouterr()
    run = Path(captured.out.split("-> ")[1].split()[0])
    assert "differs from lm-eval" not in captured.err  # every document graded as lm-eval graded it
    results = results_of(out, "sevens_sc")
    header = json.loads((run / "header.json").read_text())
    reported = header["source"]["reported"]
    assert sorted(r["name"] for r in reported) == sorted(k for k in results if k.startswith("exact_match,"))
    s = summary_at(run)
    problems = len(SEVENS)
    for r in reported:
        assert abs(s[(r["label"], r["metric"], r["budget"])] - results[r["name"]]) <= 1 / (2 * problems), r
    assert {r["name"]: (r["metric"], r["budget"]) for r in reported} == {
        "exact_match,score-first": ("vote@k", 1), "exact_match,maj@8": ("vote@k", 8),
        "exact_match,flex-first": ("vote@k", 1), "exact_match,flex-maj@8": ("vote@k", 8),
        "exact_match,flex-maj@4": ("vote@k", 4)}
    assert any(results[r["name"]] > 0 for r in reported)  # not a comparison of zeros
    df = load_run(run)
    assert set(df["problem_id"]) == {f"seven-{i}" for i in range(problems)} and set(df["n_samples"]) == {8}
    # the checkpoint the log names gives the token counts and the model's shape
    assert (df["prompt_tokens"] > 0).all() and (df["prefill_flops"] > 0).all()
    assert ((df["decode_flops"] > 0) == (df["generated_tokens"] > 0)).all()
    assert set(df["finish_reason"]) <= {"stop", "length"}
    assert header["source"]["sampling"] == {"top_k": 40, "stop": ["\n\n"], "max_tokens": 10}


@pytest.mark.slow
@needs_lm_eval
def test_a_real_log_whose_filter_keeps_every_answer(lm_eval_out, tmp_path, capsys):
    out = lm_eval_out / "out"
    assert import_main(["lm_eval", str(samples_file(out, "tiny_arith")), "--out", str(tmp_path / "runs")]) == 0
    run = Path(capsys.readouterr().out.split("-> ")[1].split()[0])
    results = results_of(out, "tiny_arith")
    s = summary_at(run)
    # lm-eval's value of a filter without a reduction is the mean over completions: ttc's mean@k at k=1
    assert s[("imported:flexible-extract", "mean@k", 1)] == pytest.approx(results["exact_match,flexible-extract"])
    assert s[("imported:maj@4", "vote@k", 4)] == pytest.approx(results["exact_match,maj@4"])
    df = load_run(run)
    assert len(df) == 2 * 20 and set(df["n_samples"]) == {4}
    assert set(df["problem_id"]) == {"0", "1", "2", "3", "4"}  # no id in the docs: lm-eval's row numbers


@pytest.mark.slow
@needs_lm_eval
def test_rescore_a_real_lm_eval_log_and_its_import(lm_eval_out, tmp_path, capsys):
    out = lm_eval_out / "out"
    data = lm_eval_out / "sevens_sc.jsonl"
    before = tree_digest(out)
    assert import_main(["lm-eval", str(samples_file(out, "sevens_sc")), "--out", str(tmp_path / "runs")]) == 0
    imported = Path(capsys.readouterr().out.split("-> ")[1].split()[0])
    imported_before = tree_digest(imported)
    # the imported run, re-scored by a ttc task: a new run beside it, the source untouched
    assert rescore_main([str(imported), "--task", "custom:number", "--data-file", str(data)]) == 0
    again = Path(capsys.readouterr().out.split("-> ")[1].strip())
    assert again.parent == imported.parent and again != imported and tree_digest(imported) == imported_before
    header = json.loads((again / "header.json").read_text())
    assert header["rescored_from"]["run_id"] == imported.name and header["config"]["sweep"]["samplers"] == ["sample"]
    df = load_run(again, texts=True)
    assert set(df["sampler"]) == {"sample"} and set(df["task"]) == {"custom:number"} and len(df) == 8 * 8
    # ttc's extractor and grader, not lm-eval's filter: custom:number's answer of each text, compared as numbers
    from tasks.answers import math_answer
    from tasks.mathgrade import numeric_equal

    mine = [math_answer(t)[0] for t in df["text"]]
    assert [None if pd.isna(a) else a for a in df["answer"]] == mine
    assert df["correct"].tolist() == [bool(a is not None and numeric_equal(a, g)) for a, g in zip(mine, df["gold"])]
    assert {"answer", "correct"} <= set(df["extra"].iloc[0]["source"])
    assert any("matched its own by id" in a for a in header["assumptions"])
    # the log itself, re-scored: the same records as re-scoring its import
    assert rescore_main([str(out), "--task", "custom:number", "--data-file", str(data), "--out",
                         str(tmp_path / "direct")]) == 0
    runs = [Path(ln.split("-> ")[1]) for ln in capsys.readouterr().out.strip().splitlines()]
    assert len(runs) == 2  # one run per task in the directory
    direct = {json.loads((r / "header.json").read_text())["source"]["rescored_from"]["task"]: load_run(r, texts=True)
              for r in runs}
    assert set(direct) == {"sevens_sc", "tiny_arith"}
    cols = ["problem_id", "sample_index", "text", "answer", "correct"]
    pd.testing.assert_frame_equal(direct["sevens_sc"][cols], df[cols])
    assert tree_digest(out) == before


INSPECT_SCRIPT = """
import sys
from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.scorer import includes, match
from inspect_ai.solver import generate, solver


@solver
def fails_on(sample_id, epoch):
    async def solve(state, generate_):
        if str(state.sample_id) == sample_id and state.epoch == epoch:
            raise RuntimeError("the tool server went away")
        return await generate_(state)
    return solve


dataset = [Sample(input=f"{a} + {b} =", target=str(a + b), id=f"q{a}{b}") for a, b in [(1, 2), (2, 5), (3, 4)]]
model = "hf/" + sys.argv[1]
eval(Task(dataset=dataset, solver=[generate()], scorer=[match(numeric=True), includes()], epochs=3),
     model=model, model_args={"device": "cpu"}, log_dir=sys.argv[2] + "/ok", display="none", max_tokens=8,
     temperature=1.0)
# the last sample of the run raises: the eval ends with status 'error', the samples before it are logged
eval(Task(dataset=dataset, solver=[fails_on("q34", 2)], scorer=[match(numeric=True), includes()], epochs=2),
     model=model, model_args={"device": "cpu"}, log_dir=sys.argv[2] + "/error", display="none", max_tokens=8,
     temperature=1.0, max_samples=1, fail_on_error=True)
"""


@pytest.fixture(scope="module")
def inspect_logs(tmp_path_factory, skilled_model):
    if not (HARNESS / "inspect").exists():
        pytest.skip("inspect_ai is not installed")
    work = tmp_path_factory.mktemp("inspect")
    (work / "task.py").write_text(INSPECT_SCRIPT)
    made = subprocess.run([str(HARNESS / "python"), str(work / "task.py"), skilled_model, str(work / "logs")],
                          capture_output=True, text=True, env=harness_env(), timeout=TIMEOUT, cwd=work)
    assert made.returncode == 0, made.stderr[-3000:]
    return next((work / "logs" / "ok").glob("*.eval")), next((work / "logs" / "error").glob("*.eval"))


def ttc_in_harness(*args) -> subprocess.CompletedProcess:
    """``python -m ttc ...`` in the harness venv (reading a .eval log needs inspect_ai)."""
    return subprocess.run([str(HARNESS / "python"), "-m", "ttc", *args], capture_output=True, text=True,
                          env=harness_env(), timeout=TIMEOUT, cwd=ROOT)


@pytest.mark.slow
@needs_inspect
def test_a_real_inspect_log_imports_with_every_scorer(inspect_logs, tmp_path):
    log, _ = inspect_logs
    r = ttc_in_harness("import", "inspect", str(log), "--out", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr
    run = Path(r.stdout.split("-> ")[1].split()[0])
    df = load_run(run)
    assert len(df) == 9 and set(df["n_samples"]) == {3} and set(df["sampler"]) == {"imported:match"}
    assert (df["prompt_tokens"] > 0).all() and (df["decode_flops"] > 0).all()
    # max_tokens=8: an output of 8 tokens is a length stop although inspect says 'unknown'
    assert ((df["generated_tokens"] >= 8) == (df["finish_reason"] == "length")).all()
    assert set(df["extra"].iloc[0]["scores"]) == {"match", "includes"} and "timing" in df["extra"].iloc[0]
    header = json.loads((run / "header.json").read_text())
    (reported,) = header["source"]["reported"]
    assert summary_at(run)[(reported["label"], reported["metric"], reported["budget"])] == \
        pytest.approx(reported["value"])


@pytest.mark.slow
@needs_inspect
def test_rescore_a_real_inspect_log(inspect_logs, tmp_path):
    log, _ = inspect_logs
    before = hashlib.sha256(log.read_bytes()).hexdigest()
    data = tmp_path / "arith.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{a}{b}", "question": f"{a} + {b} =", "answer": str(a + b)}) + "\n"
                            for a, b in [(1, 2), (2, 5), (3, 4)]))
    r = ttc_in_harness("rescore", str(log), "--task", "custom:number", "--data-file", str(data), "--out",
                       str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr
    run = Path(r.stdout.split("-> ")[1].strip())
    df = load_run(run)
    assert len(df) == 9 and set(df["sampler"]) == {"sample"} and set(df["task"]) == {"custom:number"}
    assert {e["source"]["correct"] for e in df["extra"]} <= {True, False}
    assert json.loads((run / "header.json").read_text())["source"]["rescored_from"]["format"] == "inspect"
    assert hashlib.sha256(log.read_bytes()).hexdigest() == before
    # and its import, re-scored in this process
    r = ttc_in_harness("import", "inspect", str(log), "--out", str(tmp_path / "runs"))
    imported = Path(r.stdout.split("-> ")[1].split()[0])
    assert rescore_main([str(imported), "--task", "custom:number", "--data-file", str(data)]) == 0
    assert len(load_run(next(imported.parent.glob("*-rescore-custom_number-*")))) == 9


@pytest.mark.slow
@needs_inspect
def test_a_real_errored_inspect_log_is_refused_unless_allowed(inspect_logs, tmp_path):
    _, log = inspect_logs
    r = ttc_in_harness("import", "inspect", str(log), "--out", str(tmp_path / "runs"))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0
    assert "the eval ended with status 'error': 1 of 6 samples carry an error" in r.stderr
    assert "the tool server went away" in r.stderr and "--allow-errors imports the 5 good samples" in r.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    r = ttc_in_harness("import", "inspect", str(log), "--out", str(tmp_path / "runs"), "--allow-errors")
    assert r.returncode == 0, r.stderr
    run = Path(r.stdout.split("-> ")[1].split()[0])
    df = load_run(run)
    assert len(df) == 5 and df.groupby("problem_id").size().to_dict() == {"q12": 2, "q25": 2, "q34": 1}
    errors = json.loads((run / "header.json").read_text())["source"]["errors"]
    assert errors["status"] == "error" and errors["samples_with_error"] == 1
    assert "the tool server went away" in errors["eval_error"]
    assert not math.isnan(summary_at(run)[("imported:match", "mean@k", 1)])


CASES = [  # (prediction, target, options of exact_match)
    ("84.", "84", {"regexes_to_ignore": ["\\.$"]}), ("84.", "84", {}), ("$1,000", "1000", {"regexes_to_ignore":
                                                                                              [",", "\\$"]}),
    ("The answer is 7", "7", {"regexes_to_ignore": ["(?s).*answer is "]}), ("ABC", "abc", {"ignore_case": True}),
    ("a-b!", "ab", {"ignore_punctuation": True}), ("-4", "4", {"ignore_punctuation": True}),
    ("x12", "x", {"ignore_numbers": True}), (" 7", "7", {}), ("7 ", "7", {}), ("[invalid]", "7", {}),
    ("Ünïcode.", "ünïcode", {"ignore_case": True, "regexes_to_ignore": ["\\.$"]}),
]
FILTER_CASES = [  # (regex step, text)
    ({"regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)", "group_select": -1}, "so 3 + 4 = 7, then 11."),
    ({"regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)", "group_select": -1}, "no digits"),
    ({"regex_pattern": "#### (\\-?[0-9\\.\\,]+)"}, "work\n#### 1,234"),
    ({"regex_pattern": "\\\\boxed\\{([^{}]*)\\}", "group_select": -1}, "\\boxed{3} and \\boxed{ 5 }"),
    ({"regex_pattern": "(a)|(b)", "group_select": 0, "fallback": "none"}, "b"),
]


@pytest.mark.slow
@needs_lm_eval
def test_exact_match_and_filters_are_lm_evals_own(tmp_path):
    """ttc's re-implementation against lm-eval's functions themselves, case by case."""
    from ttc.importers.lm_eval_filters import ExactMatch, apply

    script = tmp_path / "cases.py"
    script.write_text(
        "import json, sys\n"
        "from lm_eval.api.metrics import exact_match_hf_evaluate\n"
        "from lm_eval.filters.extraction import RegexFilter\n"
        "cases, filters = json.load(open(sys.argv[1]))\n"
        "em = [float(exact_match_hf_evaluate([p], [t], **o)['exact_match']) for p, t, o in cases]\n"
        "fl = [RegexFilter(**s).apply([[t]], None)[0][0] for s, t in filters]\n"
        "print(json.dumps([em, fl]))\n")
    (tmp_path / "cases.json").write_text(json.dumps([CASES, FILTER_CASES]))
    r = subprocess.run([str(HARNESS / "python"), str(script), str(tmp_path / "cases.json")], capture_output=True,
                       text=True, env=harness_env(), timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr[-2000:]
    em, fl = json.loads(r.stdout.strip().splitlines()[-1])
    mine = [float(ExactMatch.from_metric({"metric": "exact_match", **o})(p, t)) for p, t, o in CASES]
    assert mine == em
    assert [apply(({"function": "regex", **s},), t) for s, t in FILTER_CASES] == fl

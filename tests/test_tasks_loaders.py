"""Hub-benchmark loaders on small fixture files written in the hub schema, the hub failure message,
``--data-file`` plumbing, and the ``ttc tasks`` listing."""

import json

import pandas as pd
import pytest
from conftest import run_records, scripted

from tasks import TASKS, get_task, load_problems
from tasks.hub import read_data_file
from ttc.backends.fake import FakeBackend
from ttc.errors import TTCError
from ttc.sweep.config import RunConfig, SamplingConfig, SweepConfig

# One or two rows per benchmark, with the hub dataset's columns.
FIXTURES = {
    "gsm8k": [{"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
                           "clips in May. How many clips did Natalia sell altogether in April and May?",
               "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 "
                         "clips altogether in April and May.\n#### 72"},
              {"question": "How many cents is $10.50?", "answer": "10.50 * 100 = 1,050\n#### 1,050"}],
    "math500": [{"problem": "Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.",
                 "solution": "...", "answer": "\\left( 3, \\frac{\\pi}{2} \\right)", "subject": "Precalculus",
                 "level": 2, "unique_id": "test/precalculus/807.json"}],
    "aime2024": [{"id": 60, "problem": "Every morning Aya goes for a 9-kilometer-long walk ...", "solution": "...",
                  "answer": "204", "url": "https://example.org", "year": 2024}],
    "aime2025": [{"id": "0", "problem": "Find the sum of all integer bases $b>9$ for which $17_b$ is a divisor "
                                        "of $97_b$.", "solution": "...", "answer": 70}],
    "gpqa_diamond": [{"Record ID": "recA", "Question": "Which particle is a lepton?", "Correct Answer": "muon",
                      "Incorrect Answer 1": "proton", "Incorrect Answer 2": "neutron",
                      "Incorrect Answer 3": "pion"}],
    "arc_challenge": [{"id": "Mercury_1", "question": "Which gas do plants take in?",
                       "choices": {"text": ["oxygen", "carbon dioxide", "helium", "argon"],
                                   "label": ["A", "B", "C", "D"]}, "answerKey": "B"}],
}
GOLDS = {"gsm8k": "72", "math500": "\\left( 3, \\frac{\\pi}{2} \\right)", "aime2024": "204", "aime2025": "70",
         "arc_challenge": "B"}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.mark.parametrize("name", sorted(FIXTURES))
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_loader_reads_hub_schema(name, fmt, tmp_path):
    rows = FIXTURES[name]
    if fmt == "jsonl":
        path = write_jsonl(tmp_path / "data.jsonl", rows)
    else:
        path = str(tmp_path / "data.parquet")
        pd.DataFrame(rows).to_parquet(path)
    task = get_task(name)
    problems = load_problems(task, 10, 0, data_file=path)
    assert len(problems) == len(rows)
    assert all(p.question and p.id for p in problems)
    if name in GOLDS:
        assert problems[0].gold == GOLDS[name]
    if name == "gsm8k":
        assert problems[1].gold == "1050"
    messages = task.prompt(problems[0])
    assert messages[0]["role"] == "user" and problems[0].question.split()[0] in messages[0]["content"]


def test_limit_keeps_dataset_order(tmp_path):
    rows = [{"question": f"q{i}", "answer": f"#### {i}"} for i in range(5)]
    problems = get_task("gsm8k").load(3, 7, data_file=write_jsonl(tmp_path / "d.jsonl", rows))
    assert [p.gold for p in problems] == ["0", "1", "2"]


def test_hub_failure_is_one_line_with_the_fix(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(TTCError) as e:
        get_task("gsm8k").load(5, 0)
    msg = str(e.value)
    assert "\n" not in msg and "openai/gsm8k" in msg and "--data-file" in msg


@pytest.mark.parametrize("content,fragment", [
    ('{"question": "q"}\n', "missing answer"),
    ("not json\n", "line 1 is not JSON"),
])
def test_bad_data_file_is_a_clear_error(tmp_path, content, fragment):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(TTCError, match=fragment):
        get_task("gsm8k").load(5, 0, data_file=str(path))


def test_data_file_errors(tmp_path):
    with pytest.raises(TTCError, match="no such file"):
        read_data_file(tmp_path / "missing.jsonl")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(TTCError, match="unsupported type"):
        read_data_file(tmp_path / "x.txt")
    with pytest.raises(TTCError, match="needs --data-file"):
        get_task("custom:math").load(5, 0)
    with pytest.raises(TTCError, match="unknown custom grader"):
        get_task("custom:fuzzy")


def test_data_file_in_config_hash():
    base = RunConfig()
    with_file = RunConfig(sweep=SweepConfig(data_file="/data/gsm8k.jsonl"))
    assert "data_file" not in base.identity()["sweep"]          # earlier run ids are unchanged
    assert base.config_hash() != with_file.config_hash()
    assert RunConfig.from_dict(with_file.to_dict()) == with_file


def test_cli_data_file_runs_offline(tmp_path, capsys):
    """The whole sweep on a fixture file with a scripted backend: records keep flexible and strict."""
    from ttc.sweep.runner import run_sweep

    path = write_jsonl(tmp_path / "gsm.jsonl", FIXTURES["gsm8k"])
    config = RunConfig(sweep=SweepConfig(tasks=("gsm8k",), budgets=(1, 2), limit=2, data_file=path),
                       sampling=SamplingConfig(seed=1), out=str(tmp_path / "runs"))
    script = scripted({"Natalia": ["48 + 24 = 72 in all. \\boxed{72}", "She sold 72 clips", "maybe 70"],
                       "cents": ["\\boxed{1,050}", "1050 cents"]})
    store = run_sweep(config, backend_factory=lambda m, c: FakeBackend(script), progress=False)
    records = run_records(store.root)
    assert len(records) == 4
    for r in records:
        if "boxed" in r["text"]:
            assert r["answer"] == r["answer_strict"]
        else:
            assert r["answer_strict"] is None
        assert r["correct"] == (r["answer"] == r["gold"])
    summary = pd.read_csv(store.root / "summary.csv")
    assert set(summary["level"].astype(str)) >= {"all"}
    assert (store.root / "problems.csv").exists()


def test_cli_rejects_missing_data_file(tmp_path, capsys):
    from ttc.cli.run import main

    rc = main(["--task", "gsm8k", "--data-file", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "no such file" in err and len(err.strip().splitlines()) == 1


def test_cli_rejects_data_file_for_generated_tasks(tmp_path, capsys):
    from ttc.cli.run import main

    path = write_jsonl(tmp_path / "d.jsonl", FIXTURES["gsm8k"])
    rc = main(["--task", "chain_sum", "--data-file", path, "--out", str(tmp_path)])
    assert rc == 2 and "--data-file" in capsys.readouterr().err


def test_listing_names_every_task(capsys):
    from ttc.cli.tasks import main

    assert main([]) == 0
    out = capsys.readouterr().out
    for name in list(TASKS) + ["rg:<family>", "custom:<grader>"]:
        assert name in out
    for needle in ("openai/gsm8k", "HuggingFaceH4/MATH-500", "CC-BY-4.0", "1319", "164", "270", "Apache-2.0"):
        assert needle in out


REQUIRED = ["chain_sum", "gsm_symbolic", "basic_arithmetic", "countdown", "puzzle24", "gsm8k", "math500",
            "aime2024", "aime2025", "gpqa_diamond", "arc_challenge", "humaneval", "champ"]


@pytest.mark.parametrize("name", REQUIRED)
def test_every_task_states_source_licence_split_size(name):
    task = TASKS[name]
    assert task.source and task.licence and task.split and task.description
    assert task.size is None or task.size > 0


def test_any_reasoning_gym_family_by_name():
    task = get_task("rg:leg_counting")
    problems = task.load(2, 0)
    assert len(problems) == 2 and task.grade(problems[0].gold, problems[0])
    with pytest.raises(TTCError, match="unknown reasoning-gym family"):
        get_task("rg:no_such_family")

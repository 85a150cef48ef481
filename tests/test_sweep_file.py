"""Sweep files: ``ttc run --config FILE`` takes every flag of the run, the command line overrides the file, several
``[[sweep]]`` tables run one after another, bad keys and types are one line before anything is written, and the
``sweep.toml`` every run writes reproduces it (same run id)."""

from __future__ import annotations

import json

import pytest
from conftest import scripted

import ttc.backends
from ttc import load_run
from ttc.backends.fake import FakeBackend
from ttc.cli.run import build_parser, config_from_args, main
from ttc.sweep.sweepfile import (
    BY_KEY,
    COMMAND_ONLY,
    OPTIONS,
    configs_from_file,
    read_sweep_file,
    sweep_toml,
    values_of,
)


@pytest.fixture
def fake_hf(monkeypatch):
    """``--backend hf`` answers with the scripted fake backend; ``calls`` counts the problems it generated."""
    calls = []

    def factory(model, config):
        backend = FakeBackend(scripted())
        original = backend.generate

        def generate(prompts, params, n):
            calls.append(len(prompts))
            return original(prompts, params, n)

        backend.generate = generate
        return backend

    monkeypatch.setitem(ttc.backends.BACKENDS, "hf", factory)
    return calls


def flags_config(*argv):
    return config_from_args(build_parser().parse_args(list(argv)))


def run_dir_of(out: str) -> str:
    return [line for line in out.splitlines() if line.startswith("run directory: ")][-1].split(": ", 1)[1]


def test_every_flag_of_the_run_is_an_option_and_every_option_a_flag():
    """The table is the one map from flag to config field: the parser's flags are exactly its keys (and the
    command's own), and it covers every field of the config."""
    import dataclasses

    from ttc.sweep.config import RunConfig

    flags = {a.option_strings[0][2:] for a in build_parser()._actions if a.option_strings and a.dest != "help"}
    assert flags == set(BY_KEY) | set(COMMAND_ONLY)
    fields = {o.field for o in OPTIONS}
    config = RunConfig()
    every = {f"{f.name}.{g.name}" if dataclasses.is_dataclass(getattr(config, f.name)) else f.name
             for f in dataclasses.fields(config)
             for g in (dataclasses.fields(getattr(config, f.name)) if dataclasses.is_dataclass(getattr(config, f.name))
                       else [f])}
    assert fields == every


@pytest.mark.parametrize("argv", [
    [],
    ["--task", "chain_sum,gsm8k", "--budget", "4,1,2", "--limit", "7", "--seed", "11", "--temperature", "0",
     "--top-p", "0.95", "--max-tokens", "64", "--dtype", "float32", "--concurrency", "3"],
    ["--backend", "vllm", "--engine-arg", "max_model_len=512", "--engine-arg", "enforce_eager=None",
     "--engine-arg", 'hf_overrides={"rope_theta": 1e6}', "--chat-template-kwargs", '{"enable_thinking": true}'],
    ["--backend", "openai", "--base-url", "http://127.0.0.1:8000/v1", "--api-key-env", "MY_KEY",
     "--request-timeout", "30", "--retries", "2", "--model", "org/served-name"],
    ["--sampler", "sample,best_of_n,budget_forcing", "--verifier", "oracle", "--prm-agg", "min",
     "--step-delimiter", "\\n\\t", "--answer-prefix", '\\n\\nAnswer: "', "--think-budget", "16,8",
     "--think-end", "</think>", "--num-wait", "1", "--chains", "2", "--beam-width", "3", "--lookahead", "1",
     "--max-steps", "5", "--answer-tokens", "9"],
])
def test_the_resolved_file_gives_back_the_config_and_its_run_id(tmp_path, argv):
    config = flags_config(*argv)
    path = tmp_path / "sweep.toml"
    path.write_text(sweep_toml(config))
    (again,) = configs_from_file(path)
    assert again == config and again.run_id == config.run_id
    assert values_of(again) == values_of(config)


def test_a_run_writes_its_sweep_file_and_the_file_reproduces_it(tmp_path, fake_hf, capsys):
    out = tmp_path / "runs"
    argv = ["--task", "chain_sum", "--limit", "3", "--budget", "1,2", "--temperature", "0.5", "--seed", "4",
            "--sampler", "sample,best_of_n", "--verifier", "oracle", "--step-delimiter", "\\n",  # read by best_of_n
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    run_dir = run_dir_of(capsys.readouterr().out)
    generated = len(fake_hf)
    assert generated > 0
    records = load_run(run_dir)
    from pathlib import Path

    sweep_file = Path(run_dir) / "sweep.toml"
    assert sweep_file.is_file() and not list(Path(run_dir).glob(".sweep.toml.*"))  # no temporary left
    header = json.loads((Path(run_dir) / "header.json").read_text())
    assert 'temperature = 0.5' in sweep_file.read_text() and header["run_id"] == Path(run_dir).name

    assert main(["--config", str(sweep_file), "--no-progress"]) == 0
    assert run_dir_of(capsys.readouterr().out) == run_dir  # the same run id: it resumed
    assert len(fake_hf) == generated  # nothing generated again
    assert load_run(run_dir).equals(records)
    assert json.loads((Path(run_dir) / "header.json").read_text())["resumed"] == 1
    assert [p.name for p in out.iterdir()] == [Path(run_dir).name]


def test_flags_on_the_command_line_override_the_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('task = "chain_sum"\nlimit = 3\nseed = 7\nbudget = [1, 4]\nmax-tokens = 99\n')
    argv = ["--config", str(path), "--seed", "0", "--budget", "2"]
    from ttc.cli.run import configs_from_args

    (config,) = configs_from_args(build_parser().parse_args(argv), argv)
    # --seed 0 is also the default: given on the command line, it still wins over the file
    assert config.sampling.seed == 0 and config.sweep.budgets == (2,)
    assert config.sweep.limit == 3 and config.sampling.max_tokens == 99  # the rest from the file
    assert config.sampling.temperature == 0.7  # neither: the default


def test_several_sweeps_run_one_after_another(tmp_path, fake_hf, capsys):
    models = [tmp_path / "family-small", tmp_path / "family-large"]
    for m in models:  # checkpoint directories as far as the checks before a run look (the backend is scripted)
        m.mkdir()
        (m / "config.json").write_text('{"model_type": "llama"}')
    out = tmp_path / "runs"
    path = tmp_path / "family.toml"
    path.write_text(f'task = "chain_sum"\nlimit = 2\nbudget = "1,2"\nout = {json.dumps(str(out))}\n\n'
                    + "".join(f"[[sweep]]\nmodel = {json.dumps(str(m))}\n" for m in models)
                    + f"[[sweep]]\nmodel = {json.dumps(str(models[0]))}\nlimit = 3\ntemperature = 0.2\n")
    sweeps = read_sweep_file(path)
    assert [w for w, _ in sweeps] == [f"--config {path} [[sweep]] {i}" for i in (1, 2, 3)]
    assert main(["--config", str(path), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "sweep 1 of 3" in printed and "sweep 3 of 3" in printed
    runs = sorted(out.iterdir())
    assert len(runs) == 3
    for run in runs:
        header = json.loads((run / "header.json").read_text())
        (config,) = configs_from_file(run / "sweep.toml")
        assert config.run_id == run.name == header["run_id"]
        assert config.sweep.models[0] in {str(m) for m in models}
        assert load_run(run)["problem_id"].nunique() == config.sweep.limit
    # the same file again: every sweep resumes, nothing is generated
    before = len(fake_hf)
    assert main(["--config", str(path), "--no-progress"]) == 0
    assert len(fake_hf) == before and len(list(out.iterdir())) == 3


def test_sweeps_that_become_the_same_run_run_once(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('limit = 2\n[[sweep]]\nmodel = "a"\n[[sweep]]\nmodel = "b"\n')
    argv = ["--config", str(path), "--model", "smollm2-135m"]
    from ttc.cli.run import configs_from_args

    configs = configs_from_args(build_parser().parse_args(argv), argv)
    assert len(configs) == 1 and configs[0].sweep.models == ("smollm2-135m",)


@pytest.mark.parametrize("text, message", [
    ("max_tokens = 3\n", "unknown key 'max_tokens' (did you mean 'max-tokens'?)"),
    ("limit = \"3\"\n", "limit must be an integer, got a string ('3')"),
    ("budget = [1, true]\n", "budget must be a list of positive integers or one comma-separated string, got a list"),
    ("temperature = \"hot\"\n", "temperature must be a number, got a string ('hot')"),
    ("serve = 1\n", "serve must be true or false, got an integer (1)"),
    ("model = 3\n", "model must be a list of names or one comma-separated string, got an integer (3)"),
    ("engine-arg = 5\n", "engine-arg must be a table"),
    ("no-progress = true\n", "'no-progress' is a flag of the command, not of the run"),
    ("[sampling]\ntemperature = 1.0\n", "unknown key 'sampling'"),
    ("limit = 2\n[[sweep]]\nmodle = \"x\"\n", "[[sweep]] 1: unknown key 'modle' (did you mean 'model'?)"),
    ("[[sweep]]\nlimit = 2\n[[sweep]]\nlimit = 0\n", "[[sweep]] 2: --limit must be a positive integer, got 0"),
    ("[[sweep]]\nbudget = \"1,x\"\n", "[[sweep]] 1: budget: --budget must be a comma-separated list"),
    ("sweep = 3\n", "sweep must be one or more [[sweep]] tables"),
    ("limit = \n", "not valid TOML"),
])
def test_bad_files_are_one_line_before_anything_is_written(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    out = tmp_path / "runs"
    path.write_text(text)
    assert main(["--config", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --config {path}") and err.count("\n") == 1, err
    assert message in err, err
    assert not out.exists()


def test_a_missing_file_is_one_line(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err == f"error: --config {tmp_path / 'nope.toml'}: no such file\n"
    assert not (tmp_path / "runs").exists()


def test_values_read_as_the_flag_reads_its_text(tmp_path):
    as_text = tmp_path / "text.toml"
    as_text.write_text('task = "chain_sum, gsm8k"\nbudget = "4,1"\nengine-arg = ["max_model_len=512"]\n'
                       'backend = "vllm"\nchat-template-kwargs = \'{"enable_thinking": true}\'\n'
                       'step-delimiter = "\\n"\n')
    typed = tmp_path / "typed.toml"
    typed.write_text('task = ["chain_sum", "gsm8k"]\nbudget = [1, 4]\nengine-arg = {max_model_len = 512}\n'
                     'backend = "vllm"\nchat-template-kwargs = {enable_thinking = true}\nstep-delimiter = "\\n"\n')
    flags = flags_config("--task", "chain_sum,gsm8k", "--budget", "1,4", "--backend", "vllm", "--engine-arg",
                         "max_model_len=512", "--chat-template-kwargs", '{"enable_thinking": true}',
                         "--step-delimiter", "\\n")
    assert configs_from_file(as_text) == configs_from_file(typed) == [flags]


def test_yaml_files_read_the_same_keys(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "s.yaml"
    path.write_text("task: chain_sum\nbudget: [1, 2]\nsweep:\n  - {model: a, limit: 2}\n  - {model: b}\n")
    a, b = configs_from_file(path)
    assert a.sweep.models == ("a",) and a.sweep.limit == 2 and a.sweep.budgets == (1, 2)
    assert b.sweep.models == ("b",) and b.sweep.limit == 20


def test_a_run_that_fails_before_its_first_record_leaves_no_sweep_file_behind():
    """The resolved sweep.toml is written when a run opens: the store counts it among what opening writes, so a
    sweep that fails before its first record still leaves no run directory."""
    from ttc.store.runstore import OPENING_FILES, SWEEP_FILE
    from ttc.sweep import sweepfile

    assert sweepfile.SWEEP_FILE == SWEEP_FILE and SWEEP_FILE in OPENING_FILES

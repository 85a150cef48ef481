"""Bad input ends in one ``error:`` line and exit 2, before any generation and before the run directory is
created; interrupts and internal errors have no traceback unless ``--debug`` asks for one."""

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ttc.backends.hub import _reachable
from ttc.cli.run import main
from ttc.errors import TTCError, check_interrupted, cli_guard

ROOT = Path(__file__).parent.parent


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("args,fragment", [
    (["--seed", "-1"], "--seed must be an integer in [0, 2**32)"),
    (["--seed", str(2**32)], "--seed must be an integer in [0, 2**32)"),
    (["--temperature", "inf"], "--temperature must be a finite number"),
    (["--temperature", "nan"], "--temperature must be a finite number"),
    (["--backend", "nope"], "unknown backend 'nope'"),
])
def test_bad_values(tmp_path, capsys, args, fragment):
    out = tmp_path / "runs"
    assert main(args + ["--out", str(out), "--no-progress"]) == 2
    assert fragment in one_error_line(capsys)
    assert not out.exists()  # nothing created


@pytest.mark.parametrize("args,fragment", [
    (["--seed", "x"], "invalid int value"),
    (["--no-such-flag"], "unrecognized arguments"),
    (["--limit"], "expected one argument"),
])
def test_usage_errors_are_one_line(tmp_path, capsys, args, fragment):
    with pytest.raises(SystemExit) as e:
        main(args + ["--out", str(tmp_path / "runs")])
    err = one_error_line(capsys)
    assert e.value.code == 2 and fragment in err and "--help" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("task,content,fragment", [
    ("custom:exact", '{"id": "a", "question": "q", "answer": "1"}\n{"id": "a", "question": "r", "answer": "2"}\n',
     "the id 'a' is used by two problems"),
    ("custom:exact", "", "no rows"),
    ("custom:exact", "\n\n", "no rows"),
    ("custom:exact", '[1, 2]\n', "row 1 is a list, not an object"),
    ("custom:exact", '{"question": "q", "answer": "1"}\n"text"\n', "row 2 is a str"),
    ("gsm8k", '3\n', "row 1 is a int"),
    ("champ", '{"_raw_text": "q", "_raw_answer": "a"}\nnull\n', "row 2 is a NoneType"),
    ("humaneval", '[]\n', "row 1 is a list"),
])
def test_bad_data_files(tmp_path, capsys, task, content, fragment):
    out = tmp_path / "runs"
    data = write(tmp_path / "data.jsonl", content)
    assert main(["--task", task, "--data-file", data, "--out", str(out), "--no-progress"]) == 2
    assert fragment in one_error_line(capsys)
    assert not out.exists()


def test_unreachable_hub_fails_fast_with_a_hint(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy",
                "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    _reachable.cache_clear()
    out = tmp_path / "runs"
    start = time.monotonic()
    assert main(["--model", "nobody-org/no-such-model", "--out", str(out), "--no-progress"]) == 2
    assert main(["--task", "gsm8k", "--out", str(out), "--no-progress"]) == 2
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") and "HF_HUB_OFFLINE=1" in line for line in err), err
    assert "--data-file" in err[1] and not out.exists()
    _reachable.cache_clear()


def test_header_that_is_not_an_object(tmp_path, capsys):
    from ttc.cli.run import build_parser, config_from_args

    out = tmp_path / "runs"
    argv = ["--limit", "2", "--out", str(out), "--no-progress"]
    run = out / config_from_args(build_parser().parse_args(argv)).run_id
    run.mkdir(parents=True)
    (run / "header.json").write_text("[1, 2]")
    assert main(argv) == 2
    assert "a JSON object is expected" in one_error_line(capsys)
    assert (run / "header.json").read_text() == "[1, 2]"


def test_debug_reraises_with_the_cause(capsys, monkeypatch):
    def wrapped_bug():
        try:
            raise ZeroDivisionError("sampler bug")
        except ZeroDivisionError as e:
            raise TTCError("backend failed on t problem 1 (ZeroDivisionError: sampler bug)") from e

    assert cli_guard(wrapped_bug) == 2
    one_error_line(capsys)
    with pytest.raises(TTCError) as e:
        cli_guard(wrapped_bug, debug=True)
    assert isinstance(e.value.__cause__, ZeroDivisionError)
    assert cli_guard(lambda: 1 / 0) == 1 and "--debug" in one_error_line(capsys)
    monkeypatch.setenv("TTC_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main_with_bug()


def test_a_ctrl_c_wrapped_in_another_exception_is_still_an_interrupt(capsys):
    class Interrupting:  # Python 3.11 wraps what __set_name__ raises in a RuntimeError
        def __set_name__(self, owner, name):
            raise KeyboardInterrupt

    def body():
        class Owner:
            field = Interrupting()

    assert cli_guard(body) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted") and err.count("\n") == 1, err

    def chained():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise ValueError("cleanup failed") from e

    assert cli_guard(chained) == 130
    assert cli_guard(lambda: 1 / 0) == 1  # an ordinary bug stays one


def test_a_failure_after_a_swallowed_ctrl_c_is_still_an_interrupt(capsys):
    """As in ``import torch`` interrupted while it initialises numpy: the extension swallows the interrupt,
    and what fails next (the import of numpy again) is its consequence, not a bug."""
    def body():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs here
        except KeyboardInterrupt:
            pass  # what a C extension's initialisation may do
        raise ImportError("cannot load module more than once per process")

    assert cli_guard(body) == 130
    assert capsys.readouterr().err.startswith("interrupted")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    assert cli_guard(lambda: 1 / 0) == 1  # the note does not outlive the command
    check_interrupted()


def test_a_sweep_stops_at_its_next_step_after_a_swallowed_ctrl_c(tmp_path, capsys):
    """A Ctrl-C swallowed while the model loads (no failure follows) still stops the sweep, before it
    generates anything, with exit 130."""
    from conftest import scripted

    from ttc.backends.fake import FakeBackend
    from ttc.sweep.config import RunConfig, SweepConfig
    from ttc.sweep.runner import run_sweep

    def factory(model, config):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            pass
        return FakeBackend(scripted())

    config = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=("smollm2-135m",), budgets=(1, 2), limit=3),
                       out=str(tmp_path))
    assert cli_guard(lambda: run_sweep(config, backend_factory=factory, progress=False) and 0) == 130
    assert capsys.readouterr().err.startswith("interrupted")
    assert not list(tmp_path.glob("*/records/*/*.parquet"))


def main_with_bug():
    from ttc.errors import debug_requested

    return cli_guard(lambda: 1 / 0, debug=debug_requested())


def test_cli_debug_flag_shows_the_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ttc.run", "--seed", "-1", "--debug", "--out", str(tmp_path)],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "--seed must be" in proc.stderr


@pytest.mark.parametrize("after", [0.0, 0.05, 0.2])
def test_early_ctrl_c_exits_130_without_traceback(tmp_path, after):
    """Ctrl-C from the moment ttc's code runs (the interpreter's own start-up, before it, is Python's)."""
    # A shell that starts a job in the background hands it SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler: give the run the terminal's default, as an interactive Ctrl-C meets it.
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "ttc.run", "--out", str(tmp_path / "runs"),
                             "--no-progress"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stderr:  # -X importtime reports each import when it is done
        if line.rstrip().endswith("| ttc"):
            break
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]


# -- refused before the run directory exists --------------------------------------------------------------

def refused(capsys, argv, out, fragment):
    """``ttc run argv`` exits 2 with one line holding ``fragment`` and leaves no directory under ``out``."""
    assert main(argv + ["--out", str(out), "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert fragment in line, line
    assert not out.exists(), sorted(out.rglob("*"))
    return line


def test_backend_refusals_come_before_the_run_directory(tmp_path, capsys, monkeypatch, tiny_model_dir):
    out = tmp_path / "runs"
    monkeypatch.delenv("TTC_NO_SUCH_KEY", raising=False)
    server = ["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", tiny_model_dir]
    refused(capsys, server + ["--api-key-env", "TTC_NO_SUCH_KEY"], out, "TTC_NO_SUCH_KEY: that environment variable")
    for _ in range(2):  # the second time too: no run directory was left to resume
        refused(capsys, server, out, "cannot reach the server at http://127.0.0.1:9/v1")
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(capsys, ["--model", str(empty)], out, "has no config.json")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama",')
    refused(capsys, ["--model", str(broken)], out, "config.json is not valid JSON")
    (broken / "config.json").write_text('{"model_type": "no_such_architecture"}')
    refused(capsys, ["--model", str(broken)], out, "model type `no_such_architecture`")
    (broken / "config.json").write_text('{"hidden_size": 8}')
    refused(capsys, ["--model", str(broken), "--backend", "vllm"], out, "names no model_type")


def test_a_new_run_that_fails_before_its_first_record_leaves_no_directory(tmp_path, capsys):
    from conftest import scripted

    from ttc.backends.fake import FakeBackend
    from ttc.sweep.config import RunConfig, SweepConfig
    from ttc.sweep.runner import run_sweep

    def cannot_load(model, config):
        raise TTCError("cannot load model 'org/typo': not found on the hub")

    out = tmp_path / "runs"
    config = RunConfig(sweep=SweepConfig(budgets=(1, 2), limit=2), out=str(out))
    assert cli_guard(lambda: run_sweep(config, backend_factory=cannot_load, progress=False) and 0) == 2
    assert "org/typo" in one_error_line(capsys) and not out.exists()
    run_sweep(config, backend_factory=lambda m, c: FakeBackend(scripted()), progress=False)
    before = sorted(p.name for p in (out / config.run_id).iterdir())
    assert cli_guard(lambda: run_sweep(config, backend_factory=cannot_load, progress=False) and 0) == 0  # all done
    bigger = RunConfig(sweep=SweepConfig(budgets=(1, 2), limit=3), out=str(out))  # a new run beside a used one
    assert cli_guard(lambda: run_sweep(bigger, backend_factory=cannot_load, progress=False) and 0) == 2
    assert sorted(p.name for p in out.iterdir()) == [config.run_id]
    assert sorted(p.name for p in (out / config.run_id).iterdir()) == before


def test_a_budget_that_cannot_fit_in_memory_is_refused_in_seconds(tmp_path, capsys):
    start = time.monotonic()
    line = refused(capsys, ["--limit", "1", "--budget", "1000000000", "--max-tokens", "1"], tmp_path / "runs",
                   "1,000,000,000 records per problem")
    assert "need at least 931.3 GiB" in line and "free; lower --budget" in line
    assert time.monotonic() - start < 60


def test_ten_thousand_samples_per_problem_run_in_bounded_rows(tmp_path, capsys, tiny_model_dir, monkeypatch):
    """A research-size budget is not refused where memory allows it, and the transformers backend decodes
    it 256 rows at a time (it used to repeat the prompt's cache 10,000 times in one batch)."""
    from transformers import LlamaForCausalLM

    from ttc.store.runstore import load_run

    rows = []
    forward = LlamaForCausalLM.forward

    @functools.wraps(forward)  # the backend reads forward's signature (the name of its cache argument)
    def counting(self, *args, **kwargs):
        rows.append(kwargs["input_ids"].shape[0])
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(LlamaForCausalLM, "forward", counting)
    out = tmp_path / "runs"
    argv = ["--model", tiny_model_dir, "--dtype", "float32", "--limit", "1", "--budget", "1,100,10000",
            "--max-tokens", "2", "--out", str(out), "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    assert rows and max(rows) <= 256
    run = next(out.iterdir())
    df = load_run(run, columns=["problem_id", "sample_index", "generated_tokens"])
    assert len(df) == 10_000 and df["sample_index"].tolist() == list(range(10_000))
    assert df["generated_tokens"].between(1, 2).all()
    summary = __import__("pandas").read_csv(run / "summary.csv")
    assert set(summary["budget"]) == {1, 100, 10_000}


def test_memory_estimate_both_sides():
    from ttc.sweep.config import BackendConfig, RunConfig, SamplingConfig, SweepConfig
    from ttc.sweep.memory import check_memory

    gib = 2**30

    def config(backend="hf", max_tokens=256, concurrency=None, **kw):
        return RunConfig(sweep=SweepConfig(budgets=(10_000,)), sampling=SamplingConfig(max_tokens=max_tokens),
                         backend=BackendConfig(name=backend, concurrency=concurrency, **kw))

    # 10,000 samples per problem, 20 problems, on a machine with 16 GiB free: never refused; hf and vllm not
    # even warned; openai is (16 responses of 10,000 x 256 tokens with log-probabilities may land at once)
    for backend, kw in (("hf", {}), ("vllm", {}), ("openai", {"base_url": "http://127.0.0.1:9/v1"})):
        est = check_memory(config(backend, **kw), 10_000, 20, "sample", available=16 * gib)
        assert (est.most < 16 * gib) == (backend != "openai"), (backend, est)
    with pytest.raises(TTCError, match="need at least 7.5 GiB"):  # 8 problems in flight x 1e6 records x 1,000 B
        check_memory(config(), 1_000_000, 20, "sample", available=4 * gib)
    est = check_memory(config(concurrency=1), 1_000_000, 20, "sample", available=2 * gib)
    assert est.least < 2 * gib < est.most  # one problem at a time fits, its texts may not: a warning


def test_memory_warning_is_one_line(capsys):
    from ttc.sweep.config import RunConfig, SweepConfig
    from ttc.sweep.memory import check_memory

    check_memory(RunConfig(sweep=SweepConfig(budgets=(1_000_000,))), 1_000_000, 1, "sample", available=2**31)
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and err.count("\n") == 1 and "may need up to" in err


@pytest.mark.parametrize("flags,fragment", [
    (["--think-budget", "8,16"], "--think-budget is read only by --sampler budget_forcing"),
    (["--num-wait", "2", "--chains", "2"], "--num-wait, --chains are read only by --sampler budget_forcing"),
    (["--think-end", "</think>"], "counted by </think> already"),
    (["--sampler", "sample,best_of_n", "--verifier", "oracle", "--answer-tokens", "8"], "(sample, best_of_n)"),
    (["--verifier", "oracle"], "--verifier is read only by --sampler best_of_n or beam or dvts"),
    (["--beam-width", "3", "--max-steps", "3"], "--beam-width, --max-steps are read only by --sampler beam or dvts"),
    (["--sampler", "dvts", "--lookahead", "1"], "--lookahead is read only by --sampler beam, which this sweep (dvts)"),
    (["--sampler", "best_of_n", "--beam-width", "3", "--num-wait", "1"],
     "--beam-width (read by beam, dvts), --num-wait (read by budget_forcing) are read only by other strategies"),
])
def test_strategy_flags_that_no_strategy_reads_are_refused(tmp_path, capsys, flags, fragment):
    refused(capsys, flags, tmp_path / "runs", fragment)


def test_strategy_flags_that_a_strategy_reads_pass():
    from ttc.sweep.config import RunConfig, StrategyConfig, SweepConfig
    from ttc.sweep.preflight import check_strategy_flags

    for sweep, strategy in [(SweepConfig(samplers=("budget_forcing",)), StrategyConfig(think_budgets=(8,), num_wait=2,
                                                                                        think_end="</think>")),
                            (SweepConfig(), StrategyConfig(think_end="<|end_of_thought|>")),  # counts thoughts by it
                            (SweepConfig(), StrategyConfig(think_budgets=(32, 64, 128))),  # the default
                            (SweepConfig(samplers=("sample", "beam")), StrategyConfig(verifier="oracle", lookahead=1,
                                                                                       beam_width=2))]:
        check_strategy_flags(RunConfig(sweep=sweep, strategy=strategy))


def test_chat_template_kwargs_that_the_template_ignores_are_refused(tmp_path, capsys, tiny_model_dir):
    from conftest import THINK_TEMPLATE, build_tiny_model

    from tasks import get_task, load_problems
    from ttc.sweep.config import BackendConfig, RunConfig, SweepConfig
    from ttc.sweep.preflight import check_template_kwargs

    kwargs = '{"enable_thinking": true}'
    refused(capsys, ["--model", tiny_model_dir, "--chat-template-kwargs", kwargs], tmp_path / "runs",
            "renders the prompts of chain_sum the same without them")
    thinking = str(build_tiny_model(tmp_path / "thinking", chat_template=THINK_TEMPLATE))
    task = get_task("chain_sum")
    problems = {"chain_sum": load_problems(task, 1, 0)}

    def check(*models):
        cfg = RunConfig(sweep=SweepConfig(models=models),
                        backend=BackendConfig(chat_template_kwargs={"enable_thinking": True}))
        check_template_kwargs(cfg, {"chain_sum": task}, problems)

    check(thinking)
    assert capsys.readouterr().err == ""
    check(thinking, tiny_model_dir)  # one model reads them: the other gets a warning line
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and err.count("\n") == 1 and tiny_model_dir in err


# -- refused before a resume changes anything -------------------------------------------------------------

def test_a_foreign_file_in_a_run_is_refused_and_kept(tmp_path, capsys):
    import pandas as pd
    from conftest import scripted

    from ttc.backends.fake import FakeBackend
    from ttc.sweep.config import RunConfig, SweepConfig
    from ttc.sweep.runner import run_sweep

    config = RunConfig(sweep=SweepConfig(budgets=(1, 2), limit=2), out=str(tmp_path))
    store = run_sweep(config, backend_factory=lambda m, c: FakeBackend(scripted()), progress=False)
    foreign = next((store.root / "records").iterdir()) / "results.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(foreign)
    before = {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()}
    assert cli_guard(lambda: run_sweep(config, backend_factory=lambda m, c: FakeBackend(scripted()),
                                       progress=False) and 0) == 2
    assert "results.parquet is not a record file written by ttc" in one_error_line(capsys)
    assert {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()} == before


def test_summary_refuses_a_file_and_a_run_without_records(tmp_path, capsys):
    from ttc.cli.summary import main as summary
    from ttc.store.runstore import RunStore

    notes = write(tmp_path / "README.md", "# notes")
    assert summary([notes]) == 2
    line = one_error_line(capsys)
    assert "README.md is not a run directory (it is a file)" in line and "writing" not in line
    RunStore.open(tmp_path, "empty", {"schema_version": 2, "config_hash": "x", "config": {}})
    assert summary([str(tmp_path / "empty")]) == 2
    assert "has no records yet" in one_error_line(capsys)
    assert not (tmp_path / "empty" / "summary.csv").exists()


def test_an_os_error_names_its_file_without_calling_it_a_write(capsys):
    assert cli_guard(lambda: open("/nonexistent-dir/x.json").read(), sweep=False) == 2
    assert one_error_line(capsys) == "error: No such file or directory: /nonexistent-dir/x.json\n"

"""Bad input ends in one ``error:`` line and exit 2, before any generation and before the run directory is
created; interrupts and internal errors have no traceback unless ``--debug`` asks for one."""

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

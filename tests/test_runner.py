"""The sweep on a fake backend: records, summary, resume after a crash or kill -9, and CLI errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import scripted

from ttc import load_run
from ttc.backends.fake import FAKE_SPEC, FakeBackend
from ttc.cli.run import main
from ttc.errors import TTCError
from ttc.metrics.flops import decode_flops, prefill_flops
from ttc.sweep.config import RunConfig, SweepConfig
from ttc.sweep.runner import run_sweep

HERE = Path(__file__).parent


def config(out, **sweep):
    base = dict(tasks=("chain_sum",), models=("smollm2-135m",), budgets=(1, 2, 4), limit=8)
    return RunConfig(sweep=SweepConfig(**{**base, **sweep}), out=str(out))


def fake(**kw):
    return lambda model, cfg: FakeBackend(scripted(), **kw)


def test_sweep_writes_run_directory(tmp_path):
    store = run_sweep(config(tmp_path), backend_factory=fake(), progress=False)
    assert {p.name for p in store.root.iterdir()} >= {"header.json", "records", "summary.csv", "curve.png"}
    header = json.loads((store.root / "header.json").read_text())
    assert header["schema_version"] == 2 and header["seed"] == 0
    assert header["config"]["sweep"]["budgets"] == [1, 2, 4]
    assert header["versions"]["torch"] and "commit" in header["git"]
    assert header["models"]["smollm2-135m"]["spec"]["n_params_nonembed"] == FAKE_SPEC.n_params_nonembed

    df = load_run(store.root)
    assert len(df) == 8 * 4 and df["problem_id"].nunique() == 8
    r = df.iloc[0]
    assert r["prefill_flops"] == prefill_flops(FAKE_SPEC, r["prompt_tokens"])
    assert r["decode_flops"] == decode_flops(FAKE_SPEC, r["prompt_tokens"], r["generated_tokens"])

    s = pd.read_csv(store.root / "summary.csv")
    s = s[s["level"].astype(str) == "all"]
    assert set(s["metric"]) == {"pass@k", "maj@k", "mean@k"}
    assert sorted(s["budget"].unique()) == [1, 2, 4]
    pas = s[s.metric == "pass@k"].sort_values("budget")
    assert pas["value"].is_monotonic_increasing
    assert pas["flops_per_problem"].is_monotonic_increasing
    assert (s["ci_low"] <= s["value"] + 1e-12).all() and (s["value"] <= s["ci_high"] + 1e-12).all()
    # the summary's FLOPs at k: one shared prefill plus k mean decodes, averaged over problems
    k4 = pas[pas.budget == 4]["flops_per_problem"].item()
    per_problem = df.groupby("problem_id").apply(
        lambda g: g["prefill_flops"].iloc[0] + 4 * g["decode_flops"].mean(), include_groups=False)
    assert k4 == pytest.approx(per_problem.mean())


def test_gold_answers_grade_correct(tmp_path):
    """A backend that always answers the gold answer scores 1.0 everywhere."""
    from tasks import get_task

    task = get_task("chain_sum")
    gold = {p.question: p.gold for p in task.load(8, 0)}

    def oracle(prompt, rng):
        q = next(q for q in gold if q in prompt)
        return f"so the result is \\boxed{{{gold[q]}}}"

    store = run_sweep(config(tmp_path), backend_factory=lambda m, c: FakeBackend(oracle), progress=False)
    s = pd.read_csv(store.root / "summary.csv")
    assert (s["value"] == 1.0).all()


def test_resume_after_crash_matches_uninterrupted(tmp_path):
    ref = run_sweep(config(tmp_path / "a"), backend_factory=fake(), progress=False)
    with pytest.raises(TTCError, match="re-run to resume"):
        run_sweep(config(tmp_path / "b"), backend_factory=fake(fail_after=3), progress=False)
    partial = load_run(tmp_path / "b" / ref.root.name)
    assert partial["problem_id"].nunique() == 3
    calls = []

    def counting(model, cfg):
        b = FakeBackend(scripted())
        calls.append(b)
        return b

    resumed = run_sweep(config(tmp_path / "b"), backend_factory=counting, progress=False)
    assert calls[0].calls == 5  # only the 5 missing problems were generated
    a, b = load_run(ref.root, texts=True), load_run(resumed.root, texts=True)
    assert a.drop(columns=[]).equals(b)
    assert (ref.root / "summary.csv").read_text() == (resumed.root / "summary.csv").read_text()
    assert json.loads((resumed.root / "header.json").read_text())["resumed"] == 1


def test_resume_with_other_weights_or_dtype_is_refused(tmp_path):
    def with_identity(**identity):
        def factory(model, cfg):
            b = FakeBackend(scripted(), fail_after=3)
            b.info.identity.update(identity)
            return b
        return factory

    with pytest.raises(TTCError, match="re-run to resume"):
        run_sweep(config(tmp_path), backend_factory=with_identity(dtype="bfloat16", gguf_sha256="ab"),
                  progress=False)
    for other, msg in (({"dtype": "float32", "gguf_sha256": "ab"}, "dtype=bfloat16, this machine gives "
                        "dtype=float32: resume it on hardware where --dtype auto gives that"),
                       ({"dtype": "bfloat16", "gguf_sha256": "cd"}, "gguf_sha256=ab")):
        with pytest.raises(TTCError, match=msg):
            run_sweep(config(tmp_path), backend_factory=with_identity(**other), progress=False)
    (run,) = tmp_path.iterdir()
    assert load_run(run)["problem_id"].nunique() == 3  # nothing lost, nothing mixed in
    with pytest.raises(TTCError, match="re-run to resume"):  # the same weights and dtype resume
        run_sweep(config(tmp_path), backend_factory=with_identity(dtype="bfloat16", gguf_sha256="ab"),
                  progress=False)
    assert load_run(run)["problem_id"].nunique() == 6


def test_complete_run_does_not_load_the_model(tmp_path):
    run_sweep(config(tmp_path), backend_factory=fake(), progress=False)

    def refuse(model, cfg):
        raise AssertionError("model loaded for a finished run")

    run_sweep(config(tmp_path), backend_factory=refuse, progress=False)


def test_kill_9_loses_at_most_the_problem_in_flight(tmp_path):
    out = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    proc = subprocess.Popen([sys.executable, str(HERE / "sweep_script.py"), str(out), "0.05"], env=env)
    run_dir = out / config(out).run_id
    shard = run_dir / "records" / "chain_sum__smollm2-135m__sample"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(shard.glob("*.parquet"))) < 3:  # a file per finished problem
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    survived = load_run(run_dir)["problem_id"].nunique()
    assert 3 <= survived < 8
    # resume in-process and compare with a clean run
    resumed = subprocess.run([sys.executable, str(HERE / "sweep_script.py"), str(out), "0"], env=env, timeout=300)
    assert resumed.returncode == 0
    clean = run_sweep(config(tmp_path / "clean"), backend_factory=fake(), progress=False)
    assert load_run(run_dir, texts=True).equals(load_run(clean.root, texts=True))
    assert (run_dir / "summary.csv").read_text() == (clean.root / "summary.csv").read_text()


def test_cli_errors_exit_2_with_one_line(tmp_path, capsys):
    cases = [
        ["--task", "nope"],
        ["--model", "no such model"],
        ["--sampler", "nope"],
        ["--budget", "1,two"],
        ["--budget", "0"],
        ["--limit", "0"],
        ["--dtype", "int3"],
        ["--backend", "nope"],
    ]
    for args in cases:
        assert main(args + ["--out", str(tmp_path), "--no-progress"]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, (args, err)


def test_unwritable_output_dir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["--out", str(blocker / "runs"), "--no-progress"]) == 2
    assert "cannot write to output directory" in capsys.readouterr().err


def test_corrupt_record_file_on_resume_keeps_data(tmp_path, capsys):
    store = run_sweep(config(tmp_path), backend_factory=fake(), progress=False)
    (part,) = (store.root / "records" / "chain_sum__smollm2-135m__sample").glob("*.parquet")
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])  # a disk that lost half a file
    before = part.read_bytes()
    with pytest.raises(TTCError, match="corrupt record file"):
        run_sweep(config(tmp_path), backend_factory=fake(), progress=False)
    assert part.read_bytes() == before

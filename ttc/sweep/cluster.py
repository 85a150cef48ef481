"""``python -m ttc.run ... --ray [ADDRESS]``: the sweep's problems handed out to backend replicas on a Ray cluster.

Each model of the sweep gets its own replicas (Ray actors, ``ttc.sweep.replica.Worker``); problems are handed
out one at a time from a queue per model as replicas free up, so large and small problems balance. Workers
generate, grade and cost; the driver (this process) writes each finished problem to the run store as it
arrives, several finished problems in one durable write. The run directory and run id are a local run's:
a sweep started locally resumes on a cluster and back, on any number of workers.

A replica that dies (its node lost, out of memory, ``kill -9``, ``ray.kill``) has its problems in flight put
back at the front of its model's queue and is replaced by a new one; a problem is stored only once, from the
one call that returned it. The header's ``cluster`` field counts the replicas, the problems handed out again
(``retries``) and the replicas lost, of the attempt that wrote the header last.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from ttc.errors import TTCError
from ttc.sweep.replica import Worker, actor_options, replica_gpus

MAX_TRIES = 3  # a problem whose replica died this many times is taken to be what kills it


def connect(address: str) -> bool:
    """Join (or, for ``local``, start) a Ray cluster; True when this call started Ray and must stop it."""
    import ray

    if ray.is_initialized():  # a cluster the caller already joined (tests, notebooks)
        return False
    kwargs = dict(include_dashboard=False, log_to_driver=True, logging_level="WARNING")
    try:
        if address == "local":
            ray.init(**kwargs)
        else:
            ray.init(address=address, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as e:
        if address == "auto":
            raise TTCError("--ray: no running Ray cluster on this machine; start one with `ray start --head` "
                           "(or join one with `ray start --address HEAD:6379`), or use --ray local") from None
        raise TTCError(f"--ray {address}: cannot join that Ray cluster ({str(e).splitlines()[0]})") from None
    return True


def replica_counts(config, models: list[str], gpus_each: int) -> dict[str, int]:
    """``--replicas`` where given; otherwise the cluster's GPUs (or CPUs) shared evenly between the models."""
    import ray

    res = ray.cluster_resources()
    if gpus_each:
        fit = int(res.get("GPU", 0) // gpus_each)
    else:
        fit = int(res.get("CPU", 1) // config.cluster.cpus_per_replica)
    even = max(1, fit // max(len(models), 1))
    return {m: config.cluster.replicas_for(m) or even for m in models}


@dataclass
class Replica:
    """A replica's actor and what the driver knows of it."""

    model: str
    actor: object
    start_ref: object
    width: int = 0  # set once started
    in_flight: dict = field(default_factory=dict)  # ObjectRef -> item
    pid: int | None = None
    pg: object = None


class Pool:
    """The replicas of every model, a queue of problems per model, and the retry bookkeeping."""

    def __init__(self, config, store, todo, factory, started):
        import ray

        self.ray, self.config, self.store, self.factory, self.started = ray, config, store, factory, started
        self.queues = defaultdict(deque)
        for item in todo:
            self.queues[item[0]].append(item)
        self.gpus_each = replica_gpus(config, ray.cluster_resources().get("GPU", 0))
        self.target = replica_counts(config, list(self.queues), self.gpus_each)
        self.replicas: dict[object, Replica] = {}  # start_ref or actor id -> Replica
        self.tries = defaultdict(int)  # problem -> replicas that died with it in flight
        self.deaths_unstarted = defaultdict(int)  # model -> replicas that died while loading
        self.retries = self.lost = self.spawned = 0
        self.error: BaseException | None = None
        self.worker_cls = ray.remote(Worker)
        for model, n in self.target.items():
            for _ in range(n):
                self.spawn(model)

    def spawn(self, model: str) -> None:
        config = self.config
        if self.gpus_each > 1:  # the engine's own Ray workers take the placement group's GPU bundles
            args = {"distributed_executor_backend": "ray", **config.backend.engine_args}
            config = dataclasses.replace(config, backend=dataclasses.replace(config.backend, engine_args=args))
        opts = actor_options(config, self.gpus_each)
        pg = opts.pop("_placement_group", None)
        self.spawned += 1  # a name to find it by (`ray list actors`, ray.get_actor)
        opts["name"] = f"ttc-{self.store.root.name}-{self.spawned}"
        actor = self.worker_cls.options(**opts).remote(model, config, self.factory, config.cluster.cpus_per_replica)
        r = Replica(model, actor, actor.start.remote(), pg=pg)
        self.replicas[id(r)] = r

    def alive(self) -> int:
        return sum(1 for r in self.replicas.values() if r.width)

    def refs(self) -> dict:
        out = {}
        for r in self.replicas.values():
            if not r.width:
                out[r.start_ref] = (r, None)
            for ref, item in r.in_flight.items():
                out[ref] = (r, item)
        return out

    def top_up(self) -> None:
        """Hand out problems: each started replica holds its width plus one queued problem. A replica whose
        model has nothing left to hand out is let go, so its GPUs or CPUs go to the next model's replicas."""
        if self.error is not None:
            return
        for r in list(self.replicas.values()):
            q = self.queues[r.model]
            while r.width and q and len(r.in_flight) < r.width + 1:
                item = q.popleft()
                _, tname, sname, problem = item
                r.in_flight[r.actor.solve.remote(tname, sname, problem, self.store.root)] = item
            if not q and not r.in_flight:
                self.retire(r)

    def retire(self, r: Replica) -> None:
        from ray.util import remove_placement_group

        self.replicas.pop(id(r), None)
        self.ray.kill(r.actor, no_restart=True)  # its process, engine and engine workers go with it
        if r.pg is not None:
            remove_placement_group(r.pg)

    def busy(self) -> bool:
        work = any(self.queues.values()) if self.error is None else False
        return work or any(r.in_flight for r in self.replicas.values())

    def lose(self, r: Replica, why: BaseException) -> None:
        """``r`` died: its problems go back to the front of the queue and a new replica takes its place.
        A problem that was in flight on ``MAX_TRIES`` dead replicas, or a model whose replicas keep dying
        while loading, stops the hand-out instead (the error is raised once the running problems are in)."""
        from ray.util import remove_placement_group

        self.replicas.pop(id(r), None)
        self.lost += 1
        why = str(why).splitlines()[0] if str(why) else type(why).__name__
        if not r.width:
            self.deaths_unstarted[r.model] += 1
            if self.deaths_unstarted[r.model] >= MAX_TRIES and self.error is None:
                self.error = TTCError(f"{MAX_TRIES} replicas of {r.model} died while loading (last: {why}); "
                                      f"check the nodes' memory and the model")
        for item in reversed(list(r.in_flight.values())):
            key = (item[0], item[1], item[2], item[3].id)
            self.tries[key] += 1
            if self.tries[key] >= MAX_TRIES and self.error is None:
                self.error = TTCError(f"{item[1]} problem {item[3].id} ({item[0]}, {item[2]}) was in flight on "
                                      f"{MAX_TRIES} replicas that died (last: {why}); finished problems are "
                                      f"saved in {self.store.root}, re-run to resume")
            self.queues[r.model].appendleft(item)
            self.retries += 1
        self.ray.kill(r.actor, no_restart=True)
        if r.pg is not None:
            remove_placement_group(r.pg)
        if self.queues[r.model] and self.error is None:
            self.spawn(r.model)

    def shutdown(self) -> None:
        from ray.util import remove_placement_group

        for r in self.replicas.values():
            try:
                self.ray.kill(r.actor, no_restart=True)
                if r.pg is not None:
                    remove_placement_group(r.pg)
            except Exception:  # already gone
                pass


def collect(pool: Pool, timeout: float = 1.0):
    """Wait for finished calls; start the replicas that came up; return ``[(item, records)]`` of solved
    problems. A replica that died is replaced; a problem's own error stops the hand-out (kept in pool.error)."""
    ray = pool.ray
    from ray.exceptions import RayActorError, RayTaskError

    pending = pool.refs()
    if not pending:
        return []
    ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
    if ready:  # everything else that is finished too, so one durable write takes them all
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
    try:
        values = ray.get(ready)
    except Exception:  # one of them failed: take them one by one
        values = None
    solved = []
    for i, ref in enumerate(ready):
        r, item = pending[ref]
        if id(r) not in pool.replicas:  # lost while this batch was read; its items are queued again
            continue
        try:
            value = values[i] if values is not None else ray.get(ref)
        except RayActorError as e:  # the replica died (ActorDiedError) or cannot be reached
            pool.lose(r, e)
            continue
        except RayTaskError as e:  # the backend raised: what a local run would raise
            cause = getattr(e, "cause", None)
            if pool.error is None:
                pool.error = cause if isinstance(cause, TTCError) else TTCError(
                    f"a replica of {r.model} failed: {str(cause or e).splitlines()[0]}")
            if item is None:  # the replica never started (its backend failed to load)
                pool.replicas.pop(id(r), None)
            else:
                del r.in_flight[ref]
            continue
        if item is None:
            r.width, info, r.pid = value
            pool.started(r.model, info)
        else:
            del r.in_flight[ref]
            solved.append((item, value))
    return solved


def write(store, solved) -> int:
    """Append solved problems to their shards, one durable write per shard; return the tokens generated."""
    by_shard = defaultdict(list)
    for (model, tname, sname, _), records in solved:
        by_shard[(tname, model, sname)].append(records)
    for key, problems in by_shard.items():
        shard = store.shard(*key)
        if hasattr(shard, "append_problems"):
            shard.append_problems(problems)
        else:
            for records in problems:
                shard.append_problem(records)
    return sum(r.generated_tokens for _, records in solved for r in records)


def run_on_cluster(config, store, todo: list, per_model: int, factory=None, progress: bool = True) -> None:
    """Solve ``todo`` (``(model, task, sampler, problem)`` items) on Ray replicas and store every record."""
    from ttc.sweep.problem import register_model

    if config.backend.serve:
        raise TTCError("--serve starts one server on this machine; with --ray give each replica a --base-url "
                       "server, or use --backend vllm (one engine per replica)")
    unknown = {m for m, _ in config.cluster.replicas if m} - set(config.sweep.models)
    if unknown:
        raise TTCError(f"--replicas names {', '.join(sorted(unknown))}, not a --model of this sweep")
    if not todo:
        return
    owned = connect(config.cluster.address)
    counts = defaultdict(int)
    for item in todo:
        counts[item[0]] += 1
    pool = None
    bar = tqdm(total=len(todo), desc="problems", unit="problem", disable=not progress, dynamic_ncols=True)
    try:
        pool = Pool(config, store, todo, factory,
                    started=lambda model, info: register_model(store, model, info,
                                                               resuming=counts[model] < per_model))
        total_replicas = sum(pool.target.values())
        warn_if_short(pool, total_replicas)
        tokens, t0 = 0, None  # tokens/s from the moment the first replica is up
        while pool.busy():
            pool.top_up()
            solved = collect(pool)
            if t0 is None and pool.alive():
                t0 = time.perf_counter()
            if solved:
                tokens += write(store, solved)
                bar.update(len(solved))
            rate = tokens / max(time.perf_counter() - t0, 1e-9) if t0 is not None else 0.0
            bar.set_postfix(tok_s=f"{rate:.0f}", workers=f"{pool.alive()}/{total_replicas}", refresh=bool(solved))
            if pool.error is not None and not any(r.in_flight for r in pool.replicas.values()):
                break
    finally:
        bar.close()
        if pool is not None:
            store.update_header(cluster={"replicas": pool.target, "retries": pool.retries,
                                         "workers_lost": pool.lost})
            pool.shutdown()
        if owned:
            import ray

            ray.shutdown()
    if pool.error is not None:
        raise pool.error


def warn_if_short(pool: Pool, total: int) -> None:
    """Say so when the cluster cannot hold every replica at once (they wait for resources, or autoscaling)."""
    res = pool.ray.cluster_resources()
    need_gpu = pool.gpus_each * total
    need_cpu = pool.config.cluster.cpus_per_replica * total
    if need_gpu > res.get("GPU", 0) or need_cpu > res.get("CPU", 0):
        print(f"note: {total} replicas need {need_cpu} CPUs and {need_gpu} GPUs, the cluster has "
              f"{res.get('CPU', 0):g} and {res.get('GPU', 0):g}: some wait until resources free up",
              file=sys.stderr)

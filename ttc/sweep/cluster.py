"""``python -m ttc.run ... --ray [ADDRESS]``: the sweep's problems handed out to backend replicas on a Ray cluster.

Each model of the sweep gets its own replicas (Ray actors, ``ttc.sweep.replica.Worker``); problems are handed
out one at a time from a queue per model as replicas free up, so large and small problems balance. Workers
generate, grade and cost; the driver (this process) writes each finished problem to the run store as it
arrives, several finished problems in one durable write. The run directory and run id are a local run's:
a sweep started locally resumes on a cluster and back, on any number of workers. How the cluster is reached
(``--ray local`` is private) is ``ttc.sweep.connect``.

Every exception from a remote call is taken for a possible replica death (``ttc.sweep.deaths``): one that
proves a death (out of memory, node lost, killed, crashed, preempted) loses the replica at once; any other
one loses it unless the replica answers a ping. A replica that holds problems and returns none for
``--replica-timeout`` seconds is taken to be hung and killed. A lost replica's problems in flight go back
to its model's queue and a new replica takes its place; a problem is stored only once, from the one call
that returned it. A problem that was in flight on a replica that died is handed out again alone (on a
replica holding nothing else), so a second and third death are its own: after ``MAX_TRIES`` deaths it is
recorded as failed with their causes, the sweep goes on, and the failure is raised at the end (after the
summary of what is stored). An error the backend raised in a live replica stops the sweep, as in a local
run. The header's ``cluster`` field counts the replicas, the problems handed out again (``retries``) and
the replicas lost, each also by cause, and lists the failed problems, of the attempt that wrote it last.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import Counter, defaultdict, deque
from contextlib import contextmanager
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from ttc.errors import TTCError
from ttc.sweep.connect import SigtermStops, connect, disconnect
from ttc.sweep.deaths import death_cause, detail
from ttc.sweep.replica import Worker, actor_options, replica_gpus

MAX_TRIES = 3  # a problem in flight on this many replicas that died is taken to be what kills them
PING_TIMEOUT = 30.0  # seconds a replica has to answer before a failed call counts as its death


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


def item_key(item) -> tuple:
    model, tname, sname, problem = item
    return model, tname, sname, problem.id


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
    alone: bool = False  # holds a problem that was in flight on a replica that died, and nothing else
    since: float = 0.0  # when it last returned a problem, or was given one while holding none


class Pool:
    """The replicas of every model, a queue of problems per model, and the retry bookkeeping."""

    def __init__(self, config, store, todo, factory, started):
        import ray

        self.ray, self.config, self.store, self.factory, self.started = ray, config, store, factory, started
        self.queues = defaultdict(deque)  # model -> problems not handed out yet
        self.suspects = defaultdict(deque)  # model -> problems that were in flight on a replica that died
        for item in todo:
            self.queues[item[0]].append(item)
        self.target = replica_counts(config, list(self.queues), self.gpus_each())
        self.replicas: dict[int, Replica] = {}
        self.deaths = defaultdict(list)  # problem -> causes of the replica deaths it was in flight for
        self.failed: dict[tuple, tuple] = {}  # problem -> (item, last death's detail)
        self.start_deaths = defaultdict(int)  # model -> replicas lost while loading since one started
        self.lost, self.retried = Counter(), Counter()
        self.spawned = 0
        self.error: BaseException | None = None
        self.worker_cls = ray.remote(Worker)
        for model, n in self.target.items():
            for _ in range(n):
                self.spawn(model)

    def gpus_each(self) -> int:
        """GPUs of the next replica, read from the cluster now: one that scaled up its GPUs gives them."""
        return replica_gpus(self.config, self.ray.cluster_resources().get("GPU", 0))

    def spawn(self, model: str) -> None:
        config, gpus = self.config, self.gpus_each()
        if gpus > 1 and config.backend.name == "vllm":  # the engine's own Ray workers take the group's bundles
            args = {"distributed_executor_backend": "ray", **config.backend.engine_args}
            config = dataclasses.replace(config, backend=dataclasses.replace(config.backend, engine_args=args))
        opts = actor_options(config, gpus)
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
        """Hand out problems: each started replica holds its width plus one queued problem. A problem that was
        in flight on a replica that died goes alone to a replica holding nothing (the others drain first). A
        replica whose model has nothing left to hand out is let go, so its GPUs or CPUs go to the next
        model's replicas."""
        if self.error is not None:
            return
        for r in list(self.replicas.values()):
            queue, suspects = self.queues[r.model], self.suspects[r.model]
            if r.width and not r.alone:
                if suspects:
                    if not r.in_flight:
                        self.hand(r, suspects.popleft())
                        r.alone = True
                else:
                    while queue and len(r.in_flight) < r.width + 1:
                        self.hand(r, queue.popleft())
            if not queue and not suspects and not r.in_flight:
                self.retire(r)

    def hand(self, r: Replica, item) -> None:
        if not r.in_flight:
            r.since = time.monotonic()
        _, tname, sname, problem = item
        r.in_flight[r.actor.solve.remote(tname, sname, problem, self.store.root)] = item

    def retire(self, r: Replica) -> None:
        self.replicas.pop(id(r), None)
        self.kill(r)  # its process, engine and engine workers go with it

    def kill(self, r: Replica) -> None:
        from ray.util import remove_placement_group

        try:
            self.ray.kill(r.actor, no_restart=True)
            if r.pg is not None:
                remove_placement_group(r.pg)
        except Exception:  # noqa: BLE001 - already gone with its node
            pass

    def busy(self) -> bool:
        work = self.error is None and (any(self.queues.values()) or any(self.suspects.values()))
        return work or any(r.in_flight for r in self.replicas.values())

    def returned(self, r: Replica, ref, item, value) -> list:
        """A call came back: a started replica, or ``[(item, records)]`` of a solved problem."""
        if item is None:
            r.width, info, r.pid = value
            self.start_deaths[r.model] = 0
            self.started(r.model, info)
            return []
        del r.in_flight[ref]
        r.since = time.monotonic()
        r.alone = r.alone and bool(r.in_flight)
        return [(item, value)]

    def failure(self, r: Replica, ref, item, e: BaseException) -> None:
        """A call raised ``e``. A death it proves, or a replica that does not answer a ping, loses the
        replica; a live replica's own error (the backend raised) stops the hand-out as in a local run."""
        cause, why = death_cause(e), detail(e)
        if cause is None:
            gone = self.ping(r)
            if gone is not None:
                cause = death_cause(gone) or ("unreachable" if isinstance(gone, TimeoutError) else "crashed")
                why = f"{why}; then {detail(gone)}"
        if cause is not None:
            self.lose(r, cause, why)
            return
        from ray.exceptions import RayTaskError

        if item is not None:
            del r.in_flight[ref]
        if isinstance(e, RayTaskError):
            inner = getattr(e, "cause", None)
            if self.error is None:
                self.error = inner if isinstance(inner, TTCError) else TTCError(
                    f"a replica of {r.model} failed: {detail(inner or e)}")
            if item is None:  # its backend failed to load
                self.retire(r)
        elif item is None:  # the replica answers but its start result was lost: start another
            self.lose(r, "unreachable", why)
        else:  # the result was lost on its way: the problem is handed out again
            self.queues[r.model].appendleft(item)
            self.retried["result lost"] += 1

    def ping(self, r: Replica) -> BaseException | None:
        """None when the replica answers within ``PING_TIMEOUT``; else what the ping raised."""
        try:
            self.ray.get(r.actor.pid.remote(), timeout=PING_TIMEOUT)
            return None
        except Exception as e:  # noqa: BLE001 - any failure to answer is the answer
            return e

    def lose(self, r: Replica, cause: str, why: str) -> None:
        """``r`` died of ``cause``: its problems go back to be handed out alone, or, after ``MAX_TRIES`` deaths,
        are recorded as failed; a new replica takes its place. A model whose replicas keep dying while loading
        stops the hand-out (the error is raised once the running problems are in)."""
        self.replicas.pop(id(r), None)
        self.lost[cause] += 1
        if not r.width:
            self.start_deaths[r.model] += 1
            if self.start_deaths[r.model] >= MAX_TRIES * self.target.get(r.model, 1) and self.error is None:
                self.error = TTCError(f"{self.start_deaths[r.model]} replicas of {r.model} died while loading "
                                      f"(last: {cause}: {why}); check the nodes' memory and the model")
        for item in reversed(list(r.in_flight.values())):
            key = item_key(item)
            self.deaths[key].append(cause)
            if len(self.deaths[key]) >= MAX_TRIES:
                self.failed[key] = (item, why)
            else:
                self.suspects[r.model].appendleft(item)
                self.retried[cause] += 1
        self.kill(r)
        if (self.queues[r.model] or self.suspects[r.model]) and self.error is None:
            self.spawn(r.model)

    def check_deadlines(self) -> None:
        """Lose the replicas that hold problems and returned none for ``--replica-timeout`` seconds."""
        limit = self.config.cluster.replica_timeout
        now = time.monotonic()
        for r in list(self.replicas.values()):
            if limit and r.in_flight and now - r.since > limit:
                self.lose(r, "hung", f"held {len(r.in_flight)} problem(s) and returned none for {limit:g} s")

    def header(self) -> dict:
        """The header's ``cluster`` field."""
        failed = [{"model": m, "task": t, "sampler": s, "problem_id": p, "deaths": self.deaths[(m, t, s, p)],
                   "last": why} for (m, t, s, p), (_, why) in self.failed.items()]
        return {"replicas": self.target, "retries": sum(self.retried.values()),
                "workers_lost": sum(self.lost.values()), "lost_by_cause": dict(self.lost),
                "retries_by_cause": dict(self.retried), "failed": failed}

    def failure_error(self) -> TTCError | None:
        """The error that reports the failed problems, raised once the sweep is stored and summarised."""
        if not self.failed:
            return None
        names = [f"{t} problem {p} of {m} ({s}): {', '.join(self.deaths[(m, t, s, p)])}"
                 for m, t, s, p in list(self.failed)[:5]]
        more = f" and {len(self.failed) - 5} more" if len(self.failed) > 5 else ""
        last = list(self.failed.values())[-1][1]
        return TTCError(f"{len(self.failed)} problem(s) failed, each in flight on {MAX_TRIES} replicas that died "
                        f"({'; '.join(names)}{more}; last: {last}); every other problem is stored in "
                        f"{self.store.root} and summarised (the header's cluster.failed lists them); re-run the "
                        f"same command to try them again")

    def shutdown(self) -> None:
        for r in list(self.replicas.values()):
            self.kill(r)


def collect(pool: Pool, timeout: float = 1.0):
    """Wait for finished calls; start the replicas that came up; return ``[(item, records)]`` of solved
    problems. Failed calls go to ``Pool.failure``; replicas past their deadline are lost."""
    ray = pool.ray
    pending = pool.refs()
    solved = []
    if pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
        if ready:  # everything else that is finished too, so one durable write takes them all
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
        try:
            values = ray.get(ready)
        except Exception:  # noqa: BLE001 - one of them failed: take them one by one
            values = None
        for i, ref in enumerate(ready):
            r, item = pending[ref]
            if id(r) not in pool.replicas:  # lost while this batch was read; its items are queued again
                continue
            try:
                value = values[i] if values is not None else ray.get(ref)
            except Exception as e:  # noqa: BLE001 - every failure is a possible replica death
                pool.failure(r, ref, item, e)
                continue
            solved += pool.returned(r, ref, item, value)
    pool.check_deadlines()
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


def check(config) -> None:
    """Refuse what a cluster sweep cannot run, before anything is joined or written."""
    if config.backend.serve:
        raise TTCError("--serve starts one server on this machine; with --ray give each replica a --base-url "
                       "server, or use --backend vllm (one engine per replica)")
    unknown = {m for m, _ in config.cluster.replicas if m} - set(config.sweep.models)
    if unknown:
        raise TTCError(f"--replicas names {', '.join(sorted(unknown))}, not a --model of this sweep")


@contextmanager
def joined(config):
    """The block runs joined to the cluster of ``--ray`` (a private one started for it), which is left (and
    stopped) after it; SIGTERM stops the block as Ctrl-C does. Within a joined block, joining is a no-op."""
    check(config)
    with SigtermStops() as stops:
        session = connect(config.cluster.address)
        stops.arm()  # starting a private cluster installed Ray's own handler
        try:
            yield
        finally:
            disconnect(session)


def run_on_cluster(config, store, todo: list, per_model: int, factory=None, progress: bool = True):
    """Solve ``todo`` (``(model, task, sampler, problem)`` items) on Ray replicas and store every record.
    Returns None, or the ``TTCError`` naming the problems that failed on every replica they met, for the
    caller to raise once what is stored is summarised; other errors are raised."""
    from ttc.sweep.problem import register_model

    if not todo:
        return None
    counts = defaultdict(int)
    for item in todo:
        counts[item[0]] += 1
    pool = None
    bar = tqdm(total=len(todo), desc="problems", unit="problem", disable=not progress, dynamic_ncols=True)
    with joined(config):  # the caller joined already (``run_sweep``, before the run directory is written)
        try:
            pool = Pool(config, store, todo, factory,
                        started=lambda model, info: register_model(store, model, info,
                                                                   resuming=counts[model] < per_model))
            total_replicas = sum(pool.target.values())
            warn_if_short(pool, total_replicas)
            tokens, t0, counted = 0, None, 0  # tokens/s from the moment the first replica is up
            while pool.busy():
                pool.top_up()
                solved = collect(pool)
                if t0 is None and pool.alive():
                    t0 = time.perf_counter()
                if solved:
                    tokens += write(store, solved)
                    bar.update(len(solved))
                if len(pool.failed) > counted:  # failed problems count as done for the ETA
                    bar.update(len(pool.failed) - counted)
                    counted = len(pool.failed)
                rate = tokens / max(time.perf_counter() - t0, 1e-9) if t0 is not None else 0.0
                lost = sum(pool.lost.values())
                bar.set_postfix(tok_s=f"{rate:.0f}", workers=f"{pool.alive()}/{total_replicas}",
                                **({"lost": lost} if lost else {}), refresh=bool(solved))
                if pool.error is not None and not any(r.in_flight for r in pool.replicas.values()):
                    break
        finally:
            bar.close()
            if pool is not None:
                store.update_header(cluster=pool.header())
                pool.shutdown()
    if pool.error is not None:
        raise pool.error
    return pool.failure_error()


def warn_if_short(pool: Pool, total: int) -> None:
    """Say so when the cluster cannot hold every replica at once (they wait for resources, or autoscaling)."""
    res = pool.ray.cluster_resources()
    need_gpu = pool.gpus_each() * total
    need_cpu = pool.config.cluster.cpus_per_replica * total
    if need_gpu > res.get("GPU", 0) or need_cpu > res.get("CPU", 0):
        print(f"note: {total} replicas need {need_cpu} CPUs and {need_gpu} GPUs, the cluster has "
              f"{res.get('CPU', 0):g} and {res.get('GPU', 0):g}: some wait until resources free up",
              file=sys.stderr)

"""Sweeps on a private local Ray cluster: worker scaling and the driver's ingest ceiling.

    python benchmarks/bench_cluster.py [--part scaling,ingest,alone] [--workers 1,2] [--ingest-workers 8]

Times leave out the final summary and curve (the same work for every executor, not run here).
(a) scaling: the same hf sweep (the embedded model, or --model DIR) in one process and on 1 and 2 Ray
    workers, one torch thread each. Wall time includes each worker starting and loading its model;
    tokens/s counts generated tokens. Scaling efficiency = (time on 1 worker / time on N) / N.
(b) ingest: the scripted backend with many workers and many samples per problem (--samples, default 256),
    so per-problem overhead is amortised. Workers generate, grade and cost; the driver receives each
    problem's records, writes them to the run store and keeps the progress bar. "driver CPU" per record
    is the whole run's CPU time (fixed costs included: the header, loading problems, waiting for workers
    to start) of the driver's main thread (the hand-out loop: receiving and decoding records, writing
    them) and of the whole driver process (Ray's own threads too), divided by the records: records per
    driver CPU second is a lower bound on the ingest ceiling, whatever the workers' speed. On a machine
    with few cores the workers compete with the driver, so end-to-end records/s there is a floor too.
    "alone": the driver's work with every result already in Ray's object store (no waiting, no workers
    competing): one ray.get of all problems, then the run store's writes. Its records per CPU second is
    the ceiling measured most directly.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def scripted(prompt, rng):
    return f"Adding step by step we get {rng.randint(0, 50)}, so the answer is \\boxed{{{rng.randint(0, 3)}}}"


def fake_factory(model, cfg):
    from ttc.backends.fake import FakeBackend

    return FakeBackend(scripted)


def private_cluster(ray, cpus: int, tmp: Path) -> None:
    """A private cluster of ``cpus`` CPUs (never the one RAY_ADDRESS names), shipping this checkout's code;
    its sessions go under ``tmp``, removed at the end."""
    from ttc.sweep.replica import project_env

    ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level="WARNING",
             runtime_env=project_env(), _temp_dir=tempfile.mkdtemp(prefix="ray-", dir=tmp))


def timed_sweep(config, factory=None):
    """Run a sweep without its final summary and curve; return wall, driver process and main-thread CPU
    seconds, records and generated tokens."""
    import ttc.sweep.runner
    from ttc import load_run

    def clocks():
        return time.perf_counter(), time.process_time(), time.thread_time()

    finish, ttc.sweep.runner.finish = ttc.sweep.runner.finish, lambda store, config: None
    try:
        before = clocks()
        store = ttc.sweep.runner.run_sweep(config, backend_factory=factory, progress=False)
        wall, cpu, main_cpu = (b - a for a, b in zip(before, clocks()))
    finally:
        ttc.sweep.runner.finish = finish
    df = load_run(store.root)
    return wall, cpu, main_cpu, len(df), int(df["generated_tokens"].sum())


def warm_up(tmp, model, factory=None):
    """Import what a sweep imports (torch, the task library) before anything is timed."""
    timed_sweep(config(tmp / "warm-up", model, 1, (1,), 8), factory)


def config(out, model, limit, budgets, max_tokens, address=None, replicas=()):
    from ttc.sweep.config import ClusterConfig, RunConfig, SamplingConfig, SweepConfig

    return RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=(model,), budgets=budgets, limit=limit),
                     sampling=SamplingConfig(max_tokens=max_tokens), out=str(out),
                     cluster=ClusterConfig(address=address, replicas=replicas))


def scaling(args, tmp):
    import ray
    import torch

    torch.set_num_threads(1)
    budgets = (args.samples_hf,)
    rows = []
    warm_up(tmp, args.model)
    wall, _, _, n, tok = timed_sweep(config(tmp / "local", args.model, args.limit, budgets, args.max_tokens))
    rows.append(("one process", wall, tok / wall, None))
    base = None
    for w in args.workers:
        private_cluster(ray, w, tmp)
        try:
            cfg = config(tmp / f"ray{w}", args.model, args.limit, budgets, args.max_tokens, "auto", (("", w),))
            wall, _, _, n, tok = timed_sweep(cfg)
        finally:
            ray.shutdown()
        base = base or wall * w
        rows.append((f"ray, {w} worker{'s' * (w > 1)}", wall, tok / wall, base / wall / w))
    print(f"\n(a) hf backend, {args.model}, {args.limit} problems x {args.samples_hf} samples, "
          f"max {args.max_tokens} tokens, one thread per worker")
    print(f"{'executor':<18} {'wall s':>8} {'tokens/s':>9} {'scaling eff.':>13}")
    for name, wall, tps, eff in rows:
        print(f"{name:<18} {wall:>8.1f} {tps:>9.1f} {'' if eff is None else f'{eff:.2f}':>13}")


def ingest(args, tmp):
    import ray

    budgets = (args.samples,)
    warm_up(tmp, "org/scripted", fake_factory)
    print(f"\n(b) scripted backend, {args.ingest_limit} problems x {args.samples} samples per problem")
    print(f"{'executor':<16} {'records':>8} {'wall s':>7} {'records/s':>10} | driver CPU us/record: "
          f"{'main thread':>11} {'process':>8} | ceiling rec/s: {'main thread':>11} {'process':>8}")

    def measure(name, address, workers):
        if address:
            private_cluster(ray, workers, tmp)
        try:
            cfg = config(tmp / name.replace(" ", "-").replace(",", ""), "org/scripted", args.ingest_limit, budgets,
                         64, address, (("", workers),) if address else ())
            wall, cpu, main_cpu, n, _ = timed_sweep(cfg, fake_factory)
        finally:
            if address:
                ray.shutdown()
        print(f"{name:<16} {n:>8} {wall:>7.2f} {n / wall:>10.0f} | {'':>21} {main_cpu / n * 1e6:>11.1f} "
              f"{cpu / n * 1e6:>8.1f} | {'':>14} {n / main_cpu:>11.0f} {n / cpu:>8.0f}")

    measure("one process", None, 1)
    for w in args.ingest_workers:
        measure(f"ray, {w} workers", "auto", w)


def driver_alone(args, tmp):
    """The driver's work with nothing to wait for: every problem's records already in Ray's object store,
    then one ``ray.get`` and the run store's writes, as the hand-out loop does them."""
    import ray

    from tasks import get_task, load_problems
    from ttc.store.runstore import RunStore
    from ttc.sweep.cluster import write
    from ttc.sweep.replica import Worker
    from ttc.sweep.runner import build_header

    private_cluster(ray, 1, tmp)
    try:
        cfg = config(tmp / "alone", "org/scripted", args.ingest_limit, (args.samples,), 64, "auto", (("", 1),))
        store = RunStore.open(cfg.out, cfg.run_id, build_header(cfg))
        worker = ray.remote(Worker).options(num_cpus=1, max_concurrency=2).remote("org/scripted", cfg,
                                                                                  fake_factory, 1)
        ray.get(worker.start.remote())
        items = [("org/scripted", "chain_sum", "sample", p)
                 for p in load_problems(get_task("chain_sum"), args.ingest_limit, 0, None)]
        refs = [worker.solve.remote(t, s, p, store.root) for _, t, s, p in items]
        ray.wait(refs, num_returns=len(refs), fetch_local=True)
        t0, c0 = time.perf_counter(), time.thread_time()
        values = ray.get(refs)
        t1, c1 = time.perf_counter(), time.thread_time()
        write(store, list(zip(items, values)))
        t2, c2 = time.perf_counter(), time.thread_time()
    finally:
        ray.shutdown()
    n = sum(len(v) for v in values)
    print(f"\ndriver alone, {n} records ready in the object store: ray.get {(c1 - c0) / n * 1e6:.1f} us/record "
          f"CPU ({(t1 - t0) / n * 1e6:.1f} wall), run store writes {(c2 - c1) / n * 1e6:.1f} us/record CPU "
          f"({(t2 - t1) / n * 1e6:.1f} wall): {n / (c2 - c0):.0f} records per driver CPU second, "
          f"{n / (t2 - t0):.0f} per wall second")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", default="scaling,ingest,alone")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--limit", type=int, default=8, help="(a) problems")
    ap.add_argument("--samples-hf", type=int, default=4, help="(a) samples per problem")
    ap.add_argument("--max-tokens", type=int, default=48, help="(a) tokens per completion at most")
    ap.add_argument("--workers", default="1,2", help="(a) worker counts")
    ap.add_argument("--ingest-limit", type=int, default=200, help="(b) problems")
    ap.add_argument("--samples", type=int, default=256, help="(b) samples per problem")
    ap.add_argument("--ingest-workers", default="8", help="(b) worker counts")
    args = ap.parse_args()
    args.workers = [int(x) for x in args.workers.split(",")]
    args.ingest_workers = [int(x) for x in args.ingest_workers.split(",")]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    # every model here is local (the embedded one; "org/scripted" names the scripted backend's records): the
    # hub is never needed, so a machine without network runs this as it is
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    tmp = Path(tempfile.mkdtemp(prefix="bench-cluster-", dir="/tmp" if len(tempfile.gettempdir()) > 40 else None))
    try:
        if "scaling" in args.part:
            scaling(args, tmp)
        if "ingest" in args.part:
            ingest(args, tmp)
        if "alone" in args.part:
            driver_alone(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

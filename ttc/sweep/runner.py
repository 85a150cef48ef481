"""The sweep: every task x model x sampler, each problem generated once at the largest budget and stored.

Resuming is the default: problems already complete in the run's shards are skipped, so re-running the
same command after a crash or ``kill -9`` continues where it stopped and ends with the same records as an
uninterrupted run (each problem's sampling seed depends only on the run seed and the problem).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

from samplers import SAMPLERS, configure_sampler, get_sampler
from tasks import get_task, load_problems
from ttc.backends import BACKENDS, Backend, make_backend
from ttc.backends.models import check_model_name
from ttc.errors import TTCError, check_interrupted
from ttc.metrics.flops import FLOPS_CONVENTION
from ttc.metrics.summary import needed_columns, write_summary
from ttc.store.lock import run_lock
from ttc.store.provenance import git_state, host_info, library_versions
from ttc.store.records import SCHEMA_VERSION
from ttc.store.runstore import RunStore, discard_unused
from ttc.sweep.config import RunConfig
from ttc.sweep.preflight import preflight
from ttc.sweep.problem import close_backend, register_model, solve_problem
from ttc.sweep.progress import SweepProgress, lockstep_units
from ttc.sweep.rounds import Rounds

BackendFactory = Callable[[str, RunConfig], Backend]


def build_header(config: RunConfig) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": config.run_id,
        "config_hash": config.config_hash(),
        "config": config.to_dict(),
        "seed": config.sampling.seed,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(),
        "versions": library_versions(),
        "host": host_info(),
        "flops_convention": FLOPS_CONVENTION,
        "models": {},
        **sandbox_field(config),
    }


def sandbox_field(config: RunConfig) -> dict:
    """For runs whose tasks execute generated code: how it is isolated ("bwrap", or "fallback: why")."""
    if not any(getattr(get_task(t), "runs_code", False) for t in config.sweep.tasks):
        return {}
    from tasks.sandbox import sandbox_mode

    return {"sandbox": sandbox_mode()}


def validate(config: RunConfig) -> None:
    """Fail on unknown names before anything is loaded or written."""
    for t in config.sweep.tasks:
        get_task(t)
    data_file = config.sweep.data_file
    if data_file is not None:
        if not Path(data_file).is_file():
            raise TTCError(f"--data-file {data_file}: no such file")
        if not any(get_task(t).takes_data_file for t in config.sweep.tasks):
            raise TTCError("--data-file is read by the hub benchmarks, humaneval, champ and custom:<grader> "
                           "tasks, not by " + ", ".join(config.sweep.tasks))
    for s in config.sweep.samplers:  # configured here too: a strategy refuses settings it cannot honour
        configure_sampler(get_sampler(s), config)
    if config.backend.name not in BACKENDS:
        raise TTCError(f"unknown backend {config.backend.name!r}; known: {', '.join(sorted(BACKENDS))}")
    remote = config.backend.name == "openai" and not config.backend.serve
    for m in config.sweep.models:  # a remote server names its own models; it checks them when asked
        if not remote:
            check_model_name(m)


def in_flight(items: list, fn: Callable, width: int):
    """Yield ``(item, fn(item))`` for every item. With ``width`` > 1, up to ``width`` calls run at once
    in threads and results come in completion order; after a failure no new call starts, the running
    ones finish and are yielded (their work is kept), then the first error is raised."""
    if width <= 1:
        for item in items:
            yield item, fn(item)
        return
    pool = ThreadPoolExecutor(min(width, len(items)) or 1, thread_name_prefix="ttc-problem")
    futures = {pool.submit(fn, item): item for item in items}
    error = None
    try:
        for fut in as_completed(futures):
            if fut.cancelled():
                continue
            if fut.exception() is not None:
                if error is None:
                    error = fut.exception()
                    for f in futures:
                        f.cancel()
                continue
            yield futures[fut], fut.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if error is not None:
        raise error


def item_key(item) -> tuple:
    """(model, task, sampler, problem id) of a sweep item."""
    model, tname, sname, problem = item
    return model, tname, sname, problem.id


def in_groups(items: list, pending: set, fn: Callable, backend, width: int):
    """Yield ``(item, fn(item, submit))`` for every item whose ``item_key`` is in ``pending``, the items run in
    lock-step groups of ``width`` on a backend that decodes one batch at a time (``ttc.sweep.rounds``): each group's
    model calls of a round are merged into one batch. Groups are consecutive runs of ``items`` (all of a model's
    items, done or not), so a resumed run forms the same groups as an uninterrupted one and, where a backend's
    outputs depend on what shares a batch, gives the same records: a group with some items done runs them again
    and their records are dropped. After a failure the group finishes (its other items are yielded) and no new
    group starts."""
    rounds = Rounds(backend.generate_requests)
    for start in range(0, len(items), width):
        group = items[start:start + width]
        if not any(item_key(item) in pending for item in group):
            continue
        for item, result in rounds.run(group, fn):
            if item_key(item) in pending:
                yield item, result


def run_sweep(config: RunConfig, backend_factory: BackendFactory | None = None,
              progress: bool = True) -> RunStore:
    """Run (or resume) the sweep described by ``config``; return its store with summary and curve written.
    Names, data, memory and the backend are checked before the run directory is touched
    (``ttc.sweep.preflight``), and a new run that fails before its first record is removed again; one process
    at a time writes a run."""
    validate(config)
    sweep = config.sweep
    tasks = {name: get_task(name) for name in sweep.tasks}
    problems = {name: load_problems(t, sweep.limit, config.sampling.seed, sweep.data_file)
                for name, t in tasks.items()}
    preflight(config, tasks, problems, backend_factory)  # memory, backend, options that change nothing
    root = Path(config.out) / config.run_id
    created = [d for d in (Path(config.out), root) if not d.exists()]
    with ExitStack() as joined:
        if config.cluster.address is not None:  # joined before the run directory exists: a refusal writes nothing
            from ttc.sweep.cluster import joined as cluster

            joined.enter_context(cluster(config))
        with run_lock(root):
            try:
                return _sweep(config, backend_factory, progress, tasks, problems)
            except BaseException:
                discard_unused(root, created)  # a run that failed before its first record leaves no directory
                raise


def _sweep(config: RunConfig, backend_factory: BackendFactory | None, progress: bool, tasks: dict,
           problems: dict) -> RunStore:
    check_interrupted()  # the imports so far (datasets, torch) may have swallowed a Ctrl-C
    store = RunStore.open(config.out, config.run_id, build_header(config))
    from ttc.sweep.sweepfile import write_sweep_file  # `ttc run --config runs/<id>/sweep.toml` reproduces it

    write_sweep_file(store.root, config)
    sweep = config.sweep

    planned, todo = [], []  # every (model, task, sampler, problem) of the sweep; those still to generate
    for model in sweep.models:
        for tname in sweep.tasks:
            for sname in sweep.samplers:
                done = store.shard(tname, model, sname).done()
                items = [(model, tname, sname, p) for p in problems[tname]]
                planned += items
                todo += [item for item in items if item[3].id not in done]
    per_model = len(sweep.samplers) * sum(len(p) for p in problems.values())  # problems x samplers of a model
    if not todo:  # a resume of a finished run: no model, no bar, one line
        return complete(store, config, len(planned))

    if config.cluster.address is not None:  # the same items, handed to backend replicas on a Ray cluster
        from ttc.sweep.cluster import run_on_cluster

        failed = run_on_cluster(config, store, todo, per_model, backend_factory, progress)
        finish(store, config)
        if failed is not None:  # problems that killed every replica they met: the rest is stored and summarised
            raise failed
        return store
    samplers = {name: configure_sampler(get_sampler(name), config) for name in sweep.samplers}
    factory = backend_factory or (lambda m, c: make_backend(c.backend.name, m, c))
    bar = SweepProgress(len(planned), len(planned) - len(todo), enabled=progress)
    backend = None
    model_of = [None]  # the model being swept, read by the problem threads

    def generate(item, submit=None):
        _, tname, sname, problem = item
        return solve_problem(backend, tasks[tname], sname, samplers[sname], problem, model_of[0], config,
                             store.root, submit)

    try:
        for model in sweep.models:
            items = [item for item in todo if item[0] == model]
            if not items:
                continue
            bar.loading()  # closed while the model loads: its loading bars never nest under it
            close_backend(backend)  # free the previous model before loading the next
            backend = None
            backend = factory(model, config)
            check_interrupted()  # loading a model imports extensions that may swallow a Ctrl-C
            register_model(store, model, backend.info, resuming=len(items) < per_model)
            # A backend that decodes one batch at a time (hf) runs groups of problems in lock-step rounds that
            # share batches; one that batches continuously (vllm) has this thread step its engine for up to
            # ``concurrency`` problems at once (ttc.sweep.rounds); one that serves (openai) takes concurrent calls.
            width = backend.concurrency
            model_of[0] = model
            if backend.lockstep and width > 1:
                everything = [item for item in planned if item[0] == model]
                pending = set(map(item_key, items))
                stream = in_groups(everything, pending, generate, backend, width)
                bar.ready(lockstep_units([item_key(item) in pending for item in everything], width))
            else:
                if backend.engine is not None and width > 1:
                    stream = Rounds(engine=backend.engine).run(items, generate, width)
                else:
                    stream = in_flight(items, generate, width)
                bar.ready([(1, 1)] * len(items))  # problems flow through one by one
            for (_, tname, sname, problem), records in stream:
                store.shard(tname, model, sname).append_problem(records)
                check_interrupted()
                bar.stored(sum(r.generated_tokens for r in records))
    finally:
        bar.close()
        close_backend(backend)
    check_interrupted()
    finish(store, config)
    return store


FINISH_OUTPUTS = ("summary.csv", "per_problem.parquet", "problems.csv", "curve.png", "report.html")


def complete(store: RunStore, config: RunConfig, planned: int) -> RunStore:
    """Every problem of the run is stored: say so in one line, and write the summary and the page again only if
    one of them is missing or older than the newest record file (the run stopped before its finish, or a
    crash was cut off on resume); ``ttc summary`` and ``ttc report`` rewrite them on demand."""
    newest = max((p.stat().st_mtime for p in (store.root / "records").rglob("*") if p.is_file()), default=0.0)
    current = all((store.root / name).is_file() and (store.root / name).stat().st_mtime >= newest
                  for name in FINISH_OUTPUTS)
    if not current:
        finish(store, config)
    what = "summary rewritten" if not current else \
        f"its summary is up to date (ttc summary {store.root} recomputes it)"
    print(f"run {config.run_id} is complete ({planned}/{planned} problems stored); {what}", file=sys.stderr)
    return store


def finish(store: RunStore, config: RunConfig) -> None:
    """Fold the run's record files together, then write ``summary.csv``, ``problems.csv``, ``curve.png`` and
    ``report.html``, all from one read of the columns they need (the page reads the few texts it shows apart)."""
    from ttc.report.browse import LIGHT_COLUMNS

    store.compact()
    columns = list(dict.fromkeys([*LIGHT_COLUMNS, *needed_columns(SAMPLERS, config.sweep.samplers)]))
    records = store.records(columns)
    summary = write_summary(store.root, SAMPLERS, budgets=config.sweep.budgets, seed=config.sampling.seed,
                            records=records)
    try:  # the page is a view of what is stored: failing to draw it never costs the run
        from ttc.report.html import write_report

        write_report(store.root, records=records, summary=summary)
    except Exception as e:  # noqa: BLE001
        print(f"warning: report.html not written ({type(e).__name__}: {e}); "
              f"ttc report {store.root} retries", file=sys.stderr)

"""How long ttc takes to store, reopen and summarize research-size runs, and how much memory it needs.

Synthesizes runs through ttc's own writer (``RunStore``, one durable write per problem) with realistic answer
distributions: each problem has a difficulty, its correct answer, a Zipf-like tail of 20-300 wrong answers and
about 8% unparsed samples; texts of ~500 characters. Then times, each phase in a fresh process (peak memory
is that process's maximum resident set):

* write      synthesizing and storing every record
* resume     opening the run as a resumed ``ttc run`` does (header check, ids of finished problems)
* load       ``ttc.load_run(run, columns=<the metric columns>)``
* summary    ``ttc summary``: every metric at every power-of-two budget, bootstrap CIs, curve.png
* finish     what a sweep does as it ends (``ttc.sweep.runner.finish``): the summary, curve.png and report.html
* fit        ``ttc fit`` on the run

    python benchmarks/bench_analysis.py                       # 20x1024, 500x1024, 500x10000
    python benchmarks/bench_analysis.py --scales 20x1024 --before /path/to/older/checkout

``--before`` runs the same phases with another checkout of ttc (e.g. ``git worktree add /tmp/old <commit>``)
for a before/after table; a phase that exceeds ``--timeout`` is reported as such.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PHASES = ("write", "resume", "load", "summary", "finish", "fit")
METRIC_COLUMNS = ["task", "model", "sampler", "problem_id", "sample_index", "answer", "correct",
                  "generated_tokens", "prefill_flops", "decode_flops", "prefill_shared"]


def budgets(n: int) -> tuple[int, ...]:
    out, k = [], 1
    while k <= n:
        out.append(k)
        k *= 2
    return tuple(out)


def header(n_problems: int, n: int) -> dict:
    from ttc.sweep.config import RunConfig, SweepConfig

    cfg = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), budgets=budgets(n), limit=n_problems))
    from ttc.store.records import SCHEMA_VERSION

    return {"schema_version": SCHEMA_VERSION, "run_id": f"bench-{n_problems}x{n}", "config_hash": "bench",
            "config": cfg.to_dict(), "seed": 0, "models": {}}


def write(run_dir: Path, n_problems: int, n: int) -> None:
    import numpy as np

    from ttc.store.records import SampleRecord
    from ttc.store.runstore import RunStore

    rng = np.random.default_rng(0)
    store = RunStore.open(run_dir.parent, run_dir.name, header(n_problems, n))
    shard = store.shard("chain_sum", "smollm2-135m", "sample")
    corpus = "".join(rng.choice(list("abcdefghij klmnopqrstuvwxyz0123456789+-=\n"), size=200_000))
    for p in range(n_problems):
        gold = str(1000 + p)
        q = rng.beta(0.6, 1.2)  # the model's chance of the right answer on this problem
        r = int(rng.integers(20, 300))
        tail = 1.0 / np.arange(1, r + 1) ** rng.uniform(0.8, 2.0)
        tail /= tail.sum()
        u = rng.random(n)
        wrong = rng.choice(r, size=n, p=tail)
        starts = rng.integers(0, len(corpus) - 600, size=n)
        lengths = rng.integers(350, 650, size=n)
        tokens = rng.integers(40, 200, size=n)
        recs = []
        for i in range(n):
            if u[i] < 0.08:
                answer = None
            elif u[i] < 0.08 + 0.92 * q:
                answer = gold
            else:
                answer = str(2000 + int(wrong[i]))
            text = corpus[starts[i]: starts[i] + lengths[i]] + (f" \\boxed{{{answer}}}" if answer else "")
            recs.append(SampleRecord(
                task="chain_sum", model="smollm2-135m", sampler="sample", problem_id=f"p{p:05d}",
                sample_index=i, n_samples=n, text=text, answer=answer, answer_strict=answer, gold=gold,
                correct=answer == gold, prompt_tokens=120, generated_tokens=int(tokens[i]),
                finish_reason="stop", prefill_flops=3.2e10, decode_flops=2.7e8 * float(tokens[i]),
                prefill_shared=True, seed=p))
        shard.append_problem(recs)
    if hasattr(store, "compact"):
        store.compact()


def phase(name: str, run_dir: Path) -> None:
    """One phase, in this process; prints its seconds and peak resident memory as JSON."""

    t0 = time.perf_counter()
    if name == "resume":
        from ttc.store.runstore import RunStore

        h = json.loads((run_dir / "header.json").read_text())
        store = RunStore.open(run_dir.parent, run_dir.name, h)
        shard = store.shard("chain_sum", "smollm2-135m", "sample")
        done = shard.done() if hasattr(shard, "done") else set(shard.scan(repair=True))
        assert len(done) > 0
    elif name == "load":
        import inspect

        import ttc

        if "columns" in inspect.signature(ttc.load_run).parameters:
            df = ttc.load_run(run_dir, columns=METRIC_COLUMNS)
        else:  # an older ttc reads every column
            df = ttc.load_run(run_dir)[METRIC_COLUMNS]
        assert len(df) > 0
    elif name == "summary":
        if _is_pkg("ttc.summary"):
            rc = subprocess.call([sys.executable, "-m", "ttc.summary", str(run_dir)], stdout=subprocess.DEVNULL)
            assert rc == 0
        else:  # an older ttc: the runner's finish step
            _finish(run_dir)
    elif name == "finish":
        _finish(run_dir)
        assert (run_dir / "report.html").exists()
    elif name == "fit":
        rc = subprocess.call([sys.executable, "-m", "ttc.fit", str(run_dir)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        if rc not in (0, 2):
            raise SystemExit(f"ttc fit exited {rc}")
    print(json.dumps(usage(time.perf_counter() - t0)))


def _finish(run_dir: Path) -> None:
    from ttc.store.runstore import RunStore
    from ttc.sweep.runner import finish

    finish(RunStore(run_dir), _config(json.loads((run_dir / "header.json").read_text())))


def usage(seconds: float) -> dict:
    """Wall seconds, CPU seconds (this process and its children: robust to a busy machine) and peak memory
    (the larger of this process's and its largest child's resident set)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"seconds": seconds, "cpu": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
            "peak_mb": max(me.ru_maxrss, kids.ru_maxrss) / 1024}


def _is_pkg(name: str) -> bool:
    import importlib.util

    spec = importlib.util.find_spec(name)
    return spec is not None and spec.submodule_search_locations is not None


def _config(h: dict):
    from ttc.sweep.config import RunConfig, SamplingConfig, SweepConfig

    sw = h["config"]["sweep"]
    return RunConfig(sweep=SweepConfig(tasks=tuple(sw["tasks"]), budgets=tuple(sw["budgets"]), limit=sw["limit"]),
                     sampling=SamplingConfig(seed=h.get("seed", 0)))


def run_phase(code: Path, name: str, run_dir: Path, args: list[str], timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", name, "--run", str(run_dir), *args]
    try:
        out = subprocess.run(cmd, env=env, cwd=code, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"seconds": float("inf"), "cpu": float("nan"), "peak_mb": float("nan"),
                "note": f"> {timeout:.0f} s, stopped"}
    if out.returncode != 0:
        return {"seconds": float("nan"), "cpu": float("nan"), "peak_mb": float("nan"),
                "note": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scales", default="20x1024,500x1024,500x10000", help="PROBLEMSxSAMPLES, comma-separated")
    p.add_argument("--before", default=None, help="another checkout of ttc to measure the same way")
    p.add_argument("--timeout", type=float, default=1800, help="seconds a phase may take")
    p.add_argument("--dir", default=None, help="where to write the runs (default: a temporary directory)")
    p.add_argument("--phase", help=argparse.SUPPRESS)
    p.add_argument("--run", help=argparse.SUPPRESS)
    p.add_argument("--size", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.phase:
        if args.phase == "write":
            t0 = time.perf_counter()
            n_problems, n = map(int, args.size.split("x"))
            write(Path(args.run), n_problems, n)
            print(json.dumps(usage(time.perf_counter() - t0)))
        else:
            phase(args.phase, Path(args.run))
        return 0

    base = Path(args.dir or tempfile.mkdtemp(prefix="ttc-bench-"))
    codes = [("after", HERE.parent)] + ([("before", Path(args.before).resolve())] if args.before else [])
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores; compare rows measured together)")
    print("each phase: wall seconds / CPU seconds (own and children's) / peak resident MB")
    print(f"{'scale':>10} {'code':>6} " + " ".join(f"{ph:>20}" for ph in PHASES))
    for scale in args.scales.split(","):
        for label, code in codes:
            run_dir = base / f"{label}-{scale}"
            shutil.rmtree(run_dir, ignore_errors=True)
            cells, notes = [], []
            for ph in PHASES:
                extra = ["--size", scale] if ph == "write" else []
                r = run_phase(code, ph, run_dir, extra, args.timeout)
                cells.append(f"{r['seconds']:>7.1f}/{r['cpu']:>6.1f}/{r['peak_mb']:>5.0f}")
                if "note" in r:
                    notes.append(f"{ph}: {r['note']}")
                if ph == "write" and "note" in r:
                    break
            print(f"{scale:>10} {label:>6} " + " ".join(cells) + ("   " + "; ".join(notes) if notes else ""),
                  flush=True)
            shutil.rmtree(run_dir, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

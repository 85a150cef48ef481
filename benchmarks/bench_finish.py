"""What a sweep costs beyond generation, on runs the size of ``bench_vllm.py``'s default and larger.

A scripted backend answers at once (chain_sum problems, replies of ~300 characters, answers right, wrong or
missing), so a timed ``run_sweep`` is ttc's own work: the run header, grading, storing each problem, and the
finish (folding the record files, ``summary.csv``, ``problems.csv``, ``curve.png``, ``report.html``). The
finish's parts are then timed alone on the finished run, as their public functions do them (each reading
what it needs). Everything runs warm in one process per checkout, after one untimed sweep; each cell is the
fastest of ``--repeats`` passes / their median (on a shared machine the others carry other processes' load).

    python benchmarks/bench_finish.py [--sizes 8x32,100x256] [--repeats 15] [--before /path/to/other/checkout]

``--before`` runs the same passes with another checkout of ttc (``git worktree add /tmp/old <commit>``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = ("sweep beyond generation", "finish", "summary tables", "curve.png", "report.html")


def reply(prompt: str, rng: random.Random) -> str:
    steps = " ".join(f"{rng.randint(1, 99)} + {rng.randint(1, 99)} = {rng.randint(2, 198)}."
                     for _ in range(rng.randint(8, 20)))
    end = rng.choice([f"The answer is \\boxed{{{rng.randint(100, 104)}}}", f"so {rng.randint(100, 104)}", ""])
    return f"Let me add the numbers step by step. {steps} {end}"


def worker(sizes: list[tuple[int, int]], repeats: int) -> dict:
    import pandas as pd

    import ttc
    from samplers import SAMPLERS
    from ttc.backends.fake import FakeBackend
    from ttc.metrics.summary import write_summary
    from ttc.report.curve import save_curve
    from ttc.report.html import write_report
    from ttc.store.runstore import RunStore
    from ttc.sweep.config import RunConfig, SamplingConfig, SweepConfig
    from ttc.sweep.runner import finish, run_sweep

    out = {"ttc": str(Path(ttc.__file__).resolve().parent.parent)}
    tmp = Path(tempfile.mkdtemp(prefix="bench-finish-"))
    try:
        for problems, n in sizes:
            budgets = tuple(2 ** i for i in range(n.bit_length()) if 2 ** i <= n)
            cfg = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), budgets=budgets, limit=problems),
                            sampling=SamplingConfig(max_tokens=96, seed=0), out=str(tmp / "runs"))
            times = {p: [] for p in PARTS}
            for rep in range(repeats + 1):  # the first pass is untimed: imports, caches
                shutil.rmtree(tmp / "runs", ignore_errors=True)
                start = time.perf_counter()
                store = run_sweep(cfg, backend_factory=lambda m, c: FakeBackend(reply), progress=False)
                sweep = time.perf_counter() - start
                parts = {"sweep beyond generation": sweep}
                summary = pd.read_csv(store.root / "summary.csv")
                # the page embeds curve.png only while it is newer than summary.csv: it goes first
                for name, fn in [("finish", lambda: finish(RunStore(store.root), cfg)),
                                 ("report.html", lambda: write_report(store.root)),
                                 ("summary tables", lambda: write_summary(store.root, SAMPLERS, plot=False)),
                                 ("curve.png", lambda: save_curve(summary, tmp / "curve.png", title=cfg.run_id))]:
                    start = time.perf_counter()
                    fn()
                    parts[name] = time.perf_counter() - start
                if rep:
                    for p, t in parts.items():
                        times[p].append(t)
            out[f"{problems}x{n}"] = {p: (min(t), statistics.median(t)) for p, t in times.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def run_checkout(root: Path, args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [sys.executable, str(HERE / "bench_finish.py"), "--worker", "--sizes", args.sizes,
           "--repeats", str(args.repeats)]
    done = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{root}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(result.pop("ttc")) != root.resolve():
        raise SystemExit(f"{root}: the worker imported another ttc; is one installed non-editable?")
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="8x32,100x256", help="problems x samples, comma-separated")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--before", default=None, help="another checkout of ttc, run the same way first")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    if args.worker:
        print(json.dumps(worker(sizes, args.repeats)))
        return
    checkouts = ([("before", Path(args.before).resolve())] if args.before else []) + [("this", HERE.parent)]
    results = {}
    for name, root in checkouts:
        results[name] = run_checkout(root, args)
    print(f"\n{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; seconds, fastest / median of {args.repeats}\n")
    print("| run | code | " + " | ".join(PARTS) + " |")
    print("|---|---|" + "---|" * len(PARTS))
    for size in results[checkouts[0][0]]:
        for name, _ in checkouts:
            cells = [f"{results[name][size][p][0]:.3f} / {results[name][size][p][1]:.3f}" for p in PARTS]
            print(f"| {size} | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

"""kill -9 campaign: start the fake-backend sweep of tests/sweep_script.py, SIGKILL it at a random moment,
restart, repeat; then let it finish and compare records and summary with an uninterrupted run.

    python benchmarks/chaos_kill.py --kills 20 --seed 0

Prints one row per kill (when, what was stored) and the verdict. CPU only, no model.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import scripted  # noqa: E402
from ttc import load_run  # noqa: E402
from ttc.backends.fake import FakeBackend  # noqa: E402
from ttc.config import RunConfig, SweepConfig  # noqa: E402
from ttc.runner import run_sweep  # noqa: E402

LIMIT = 8
KEYS = ["task", "model", "sampler", "problem_id", "sample_index"]


def config(out) -> RunConfig:
    return RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=("smollm2-135m",), budgets=(1, 2, 4),
                                       limit=LIMIT), out=str(out))


def start(out: Path, delay: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "tests" / "sweep_script.py"), str(out), str(delay), str(LIMIT)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def stored(run_dir: Path) -> tuple[int, int]:
    """(problems, records) readable in the run now."""
    try:
        df = load_run(run_dir)
    except Exception:
        return 0, 0
    return df["problem_id"].nunique(), len(df)


def sweeping(proc: subprocess.Popen, run_dir: Path) -> float:
    """Seconds from start until ``proc`` holds the run's lock (or has exited)."""
    t0 = time.perf_counter()
    lock = run_dir / ".lock"
    while proc.poll() is None:
        try:
            if lock.read_text().split()[:1] == [str(proc.pid)]:
                break
        except OSError:
            pass
        time.sleep(0.01)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-delay", type=float, default=1.5,
                    help="latest kill, seconds after the sweep took the run's lock (a fifth of kills hit start-up)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    failures, kills, episode = 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        clean = run_sweep(config(Path(tmp) / "clean"), progress=False,
                          backend_factory=lambda m, c: FakeBackend(scripted()))
        want = load_run(clean.root).sort_values(KEYS).reset_index(drop=True)
        want_summary = (clean.root / "summary.csv").read_text()
        print(f"{'run':>3} {'start':>5} {'kill_at_s':>9} {'outcome':>8} {'problems':>8} {'records':>7} {'summary':>7}")
        while kills < args.kills:
            out = Path(tmp) / f"runs{episode}"
            run_dir = out / config(out).run_id
            for n in range(100):
                proc = start(out, delay=0.1)
                at = None if kills >= args.kills else rng.uniform(0.0, args.max_delay)
                if at is not None and rng.random() < 0.2:
                    at = rng.uniform(0.05, 1.0)  # during start-up
                elif at is not None:
                    at += sweeping(proc, run_dir)  # after the lock is taken: inside the sweep
                try:
                    proc.wait(timeout=at)
                    outcome = f"exit {proc.returncode}"
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.communicate()
                    outcome, kills = "killed", kills + 1
                problems, records = stored(run_dir)
                summary = "yes" if (run_dir / "summary.csv").exists() else "no"
                print(f"{episode:>3} {n:>5} {at or 0:>9.2f} {outcome:>8} {problems:>8} {records:>7} {summary:>7}", flush=True)
                if outcome != "killed":
                    break
            got = load_run(run_dir)
            same = got.sort_values(KEYS).reset_index(drop=True).equals(want)
            same_summary = (run_dir / "summary.csv").read_text() == want_summary
            dups = int(got.duplicated(KEYS).sum())
            print(f"    run {episode} after {n} kills: {outcome}; records identical to an uninterrupted run: {same}; "
                  f"summary identical: {same_summary}; duplicates: {dups}", flush=True)
            failures += not (outcome == "exit 0" and same and same_summary and not dups)
            episode += 1
    print(f"{kills} kills over {episode} runs; runs that differ from the uninterrupted one: {failures}")
    return 1 if failures else 0

if __name__ == "__main__":
    sys.exit(main())

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
from ttc.sweep.config import RunConfig, SweepConfig  # noqa: E402
from ttc.sweep.runner import run_sweep  # noqa: E402

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
        df = load_run(run_dir, texts=True)
    except Exception:
        return 0, 0
    return df["problem_id"].nunique(), len(df)


def calibrate(out: Path) -> float:
    """Seconds an uninterrupted start of the sweep takes here, now (start-up to exit)."""
    t0 = time.perf_counter()
    proc = start(out, delay=0.5)
    proc.communicate(timeout=900)
    return time.perf_counter() - t0


def phase(run_dir: Path, records: int) -> str:
    """Where the sweep was when it died, from what it left (``rerun``: the run was already complete)."""
    if not (run_dir / "header.json").exists():
        return "start-up"
    if records == 0:
        return "setup"
    if records < LIMIT * 4:
        return "sampling"
    if not (run_dir / "curve.png").exists():
        return "summary"
    return "exit"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    failures, kills, episode = 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        clean = run_sweep(config(Path(tmp) / "clean"), progress=False,
                          backend_factory=lambda m, c: FakeBackend(scripted()))
        want = load_run(clean.root, texts=True).sort_values(KEYS).reset_index(drop=True)
        want_summary = (clean.root / "summary.csv").read_text()
        duration = calibrate(Path(tmp) / "calibration")
        print(f"an uninterrupted start takes {duration:.1f}s here; kills land uniformly in [0, that]")
        print(f"{'run':>3} {'start':>5} {'kill_at_s':>9} {'outcome':>8} {'phase':>9} {'problems':>8} {'records':>7}")
        while kills < args.kills:
            out = Path(tmp) / f"runs{episode}"
            run_dir = out / config(out).run_id
            for n in range(100):
                complete = (run_dir / "curve.png").exists()
                proc = start(out, delay=0.5)
                at = None if kills >= args.kills else rng.uniform(0.0, duration)
                try:
                    proc.wait(timeout=at)
                    outcome = f"exit {proc.returncode}"
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.communicate()
                    outcome, kills = "killed", kills + 1
                problems, records = stored(run_dir)
                where = "-" if outcome != "killed" else "rerun" if complete else phase(run_dir, records)
                print(f"{episode:>3} {n:>5} {at or 0:>9.2f} {outcome:>8} {where:>9} {problems:>8} {records:>7}",
                      flush=True)
                if outcome != "killed":
                    break
            got = load_run(run_dir, texts=True)
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

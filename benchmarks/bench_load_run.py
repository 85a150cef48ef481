"""What ``ttc.load_run`` costs with and without the completions' texts, in time and peak memory.

Each way of reading runs in a fresh process (peak memory is that process's maximum resident set):

* default      ``load_run(run)``: every column but ``text``
* texts        ``load_run(run, texts=True)``: every column
* metrics      ``load_run(run, columns=<what repeated sampling's metrics read>)``

The run is synthesized by ``bench_analysis.write`` (texts of ~500 characters, realistic answers), or given:

    python benchmarks/bench_load_run.py                        # 500 problems x 10,000 samples (5M records)
    python benchmarks/bench_load_run.py --scale 100x1000
    python benchmarks/bench_load_run.py --run /path/to/runs/<id>
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = ("default", "texts", "metrics")
METRIC_COLUMNS = ["task", "model", "sampler", "problem_id", "sample_index", "answer", "correct",
                  "generated_tokens", "prefill_flops", "decode_flops", "prefill_shared"]


def measure(mode: str, run: str) -> None:
    """One way of reading, in this process; prints rows, seconds and peak resident memory as JSON."""
    from ttc.store.runstore import load_run

    t0 = time.perf_counter()
    kwargs = {"default": {}, "texts": {"texts": True}, "metrics": {"columns": METRIC_COLUMNS}}[mode]
    df = load_run(run, **kwargs)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"rows": len(df), "columns": len(df.columns), "seconds": seconds, "peak": peak}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", default="500x10000", help="PROBLEMSxSAMPLES of the synthesized run")
    p.add_argument("--run", default=None, help="an existing run directory instead")
    p.add_argument("--measure", nargs=2, metavar=("MODE", "RUN"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        measure(*args.measure)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            sys.path.insert(0, str(HERE))
            from bench_analysis import write

            n_problems, n = map(int, args.scale.split("x"))
            run = str(Path(tmp) / f"bench-{n_problems}x{n}")
            write(Path(run), n_problems, n)
        load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"] * 3
        print(f"run: {run}  (load average {' '.join(load)})")
        print(f"{'read':<10} {'rows':>10} {'columns':>8} {'seconds':>9} {'peak GiB':>9}")
        for mode in MODES:
            out = subprocess.run([sys.executable, __file__, "--measure", mode, run], capture_output=True,
                                 text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{mode:<10} {r['rows']:>10,} {r['columns']:>8} {r['seconds']:>9.1f} {r['peak'] / 2**30:>9.2f}")


if __name__ == "__main__":
    main()

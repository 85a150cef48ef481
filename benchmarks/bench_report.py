"""How long ``write_report`` takes and how large the page gets as a run grows (synthetic runs written with the
store API: problems x samples records, short texts). Prints a table; numbers depend on the machine's load.

    python benchmarks/bench_report.py --sizes 200x256,2000x256
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ttc.report.html import write_report  # noqa: E402
from ttc.store.records import SCHEMA_VERSION, SampleRecord  # noqa: E402
from ttc.store.runstore import RunStore  # noqa: E402


def make_run(out: Path, problems: int, samples: int, seed: int = 0):
    header = {"schema_version": SCHEMA_VERSION, "run_id": "bench", "config_hash": "bench", "seed": seed,
              "config": {"sweep": {"budgets": [1, samples]}}, "models": {}}
    store = RunStore.open(out, "bench", header)
    shard = store.shard("synthetic", "m", "sample")
    rng = random.Random(seed)
    batch = []
    for p in range(problems):
        gold = str(p % 7)
        recs = []
        for i in range(samples):
            a = gold if rng.random() < 0.4 else (None if rng.random() < 0.1 else str(rng.randint(0, 9)))
            recs.append(SampleRecord("synthetic", "m", "sample", f"p{p:06d}", i, samples,
                                     f"sample {i}: " + "work " * rng.randint(5, 60) + str(a), a, a if i % 2 else None,
                                     gold, a == gold, 30, 40, "stop", 1e6, 3e6, True, seed))
        batch.append(recs)
        if len(batch) == 50:
            shard.append_problems(batch)
            batch = []
    if batch:
        shard.append_problems(batch)
    store.compact()
    return store.root


def make_run_columnar(out: Path, problems: int, samples: int, seed: int = 0):
    """The same kind of run written as one Parquet file with numpy and pyarrow (for millions of records)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ttc.store.runstore import ARROW_SCHEMA, RECORDS_DIR, shard_name

    header = {"schema_version": SCHEMA_VERSION, "run_id": "bench", "config_hash": "bench", "seed": seed,
              "config": {"sweep": {"budgets": [1, samples]}}, "models": {}}
    store = RunStore.open(out, "bench", header)
    rng = np.random.default_rng(seed)
    n = problems * samples
    pid = np.repeat(np.arange(problems), samples)
    idx = np.tile(np.arange(samples), problems)
    gold = (pid % 7).astype(str)
    r = rng.random(n)
    ans = np.where(r < 0.4, gold, rng.integers(0, 10, n).astype(str)).astype(object)
    ans[r > 0.95] = None
    words = rng.integers(5, 60, n)
    text = [f"sample {i}: " + "work " * w + str(a) for i, w, a in zip(idx, words, ans)]
    cols = {"task": ["synthetic"] * n, "model": ["m"] * n, "sampler": ["sample"] * n,
            "problem_id": [f"p{p:06d}" for p in pid], "sample_index": idx, "n_samples": np.full(n, samples),
            "text": text, "answer": ans, "answer_strict": np.where(idx % 2 == 1, ans, None), "gold": gold,
            "correct": ans == gold, "prompt_tokens": np.full(n, 30), "generated_tokens": words + 3,
            "finish_reason": ["stop"] * n, "prefill_flops": np.full(n, 1e6), "decode_flops": words * 1e5,
            "prefill_shared": np.ones(n, bool), "seed": np.zeros(n, int), "extra": ["{}"] * n,
            "verifier_flops": np.zeros(n)}
    table = pa.table({f.name: pa.array(cols[f.name], type=f.type) for f in ARROW_SCHEMA}, schema=ARROW_SCHEMA)
    d = store.root / RECORDS_DIR / shard_name("synthetic", "m", "sample")
    d.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, d / "c-0-bench.parquet")
    return store.root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="200x256,2000x256")
    args = ap.parse_args()
    print(f"{'problems':>9} {'samples':>8} {'records':>10} {'write_report s':>15} {'page MB':>8}")
    for size in args.sizes.split(","):
        problems, samples = map(int, size.split("x"))
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            make = make_run_columnar if problems * samples > 1_000_000 else make_run
            root = make(Path(tmp), problems, samples)
            print(f"  (run written in {time.perf_counter() - t:.1f} s)", file=sys.stderr)
            t = time.perf_counter()
            path = write_report(root)
            dt = time.perf_counter() - t
            print(f"{problems:>9} {samples:>8} {problems * samples:>10} {dt:>15.1f} {path.stat().st_size / 1e6:>8.2f}")


if __name__ == "__main__":
    main()

"""Peak memory and wall time of converting big logs: ``ttc import lm-eval`` of an lm-eval ``--log_samples``
file, and the conversion of a schema-1 run (JSONL shards) to Parquet when it is resumed.

The logs are generated in each format's layout (lm-eval 0.4.13's samples and results files; ttc's schema-1
records), ``--records`` completions in all (documents x ``--repeats``), completions of ~120 characters.
Each conversion runs in a child process; its peak RSS is ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (each case
runs in its own measuring process, so the maximum is that child's alone). The import is timed twice: records
and header only (``--no-summary``: reading, grading, the Parquet file), and whole (the summary too, computed as
``ttc summary`` computes any run's; above 1M records the import leaves report.html to ``ttc report``).

    python benchmarks/bench_import.py [--records 5000000] [--repeats 16] [--work DIR] [--code CHECKOUT]

``--code`` runs the conversions with another checkout of ttc (``git archive <commit> | tar -x -C DIR``), for
the figure before a change (an older ttc has no ``--no-summary``); ``--cases`` picks ``lm-eval``, ``schema-1``
or both.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATE = "2026-01-02T03-04-05.678901"
FILTER = {"name": "flex-first", "filter": [{"function": "regex", "group_select": -1,
                                           "regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)"},
                                          {"function": "take_first"}]}
METRIC = {"metric": "exact_match", "aggregation": "mean", "higher_is_better": True, "ignore_case": True,
          "regexes_to_ignore": [",", "\\$", "(?s).*#### ", "\\.$"]}


def completion(rng: random.Random) -> str:
    a, b = rng.randint(1, 99), rng.randint(1, 99)
    return f"We add {a} and {b} step by step: {a} + {b} = {a + b}. Checking again, the sum is {a + b + rng.choice([0, 0, 1])}."


def write_lm_eval(out: Path, docs: int, repeats: int) -> Path:
    rng = random.Random(0)
    d = out / "org__model"
    d.mkdir(parents=True)
    gen = {"until": ["\n\n"], "do_sample": True, "temperature": 0.8, "top_k": 50, "max_gen_toks": 64}
    with open(d / f"samples_bench_{DATE}.jsonl", "w") as f:
        for i in range(docs):
            resps = [completion(rng) for _ in range(repeats)]
            target = str(rng.randint(2, 198))
            f.write(json.dumps({"doc_id": i, "doc": {"id": f"bench-{i}", "question": f"q{i}", "answer": target},
                                "target": target,
                                "arguments": {"gen_args_0": {"arg_0": f"Question {i}: add the numbers.", "arg_1": gen}},
                                "resps": [resps], "filtered_resps": ["0"], "filter": "flex-first",
                                "metrics": ["exact_match"], "exact_match": 0.0}) + "\n")
    (d / f"results_{DATE}.json").write_text(json.dumps({
        "results": {"bench": {"exact_match,flex-first": 0.0}},
        "configs": {"bench": {"task": "bench", "repeats": repeats, "output_type": "generate_until",
                              "generation_kwargs": gen, "filter_list": [FILTER], "metric_list": [METRIC]}},
        "config": {"model": "hf", "model_args": {"pretrained": "org/model"}}, "lm_eval_version": "0.4.13",
        "n-samples": {"bench": {"original": docs, "effective": docs}}}))
    return out


def write_schema1(out: Path, docs: int, repeats: int) -> Path:
    rng = random.Random(1)
    root = out / "v1run"
    (root / "samples").mkdir(parents=True)
    (root / "header.json").write_text(json.dumps({"schema_version": 1, "config_hash": "bench", "models": {}}))
    with open(root / "samples" / "chain_sum__m__sample.jsonl", "w") as f:
        for i in range(docs):
            for j in range(repeats):
                text = completion(rng)
                f.write(json.dumps({"task": "chain_sum", "model": "m", "sampler": "sample", "problem_id": f"p{i}",
                                    "sample_index": j, "n_samples": repeats, "text": text, "answer": text[-4:-1],
                                    "answer_strict": None, "gold": "100", "correct": j % 3 == 0,
                                    "prompt_tokens": 40, "generated_tokens": 30, "finish_reason": "stop",
                                    "prefill_flops": 1e9, "decode_flops": 2e9, "prefill_shared": True, "seed": 0,
                                    "extra": {}}) + "\n")
    return root


CONVERT_V1 = ("import sys; from ttc.store.runstore import RunStore; "
              "RunStore.open(sys.argv[1], sys.argv[2], {'config_hash': 'bench', 'schema_version': 2})")


def measure(cmd: list[str], code: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (GiB) and exit status of ``cmd`` in a child process; run from a fresh measuring
    process so that RUSAGE_CHILDREN's maximum is this child's alone."""
    probe = ("import resource, subprocess, sys, time, json; t = time.perf_counter(); "
             "r = subprocess.run(sys.argv[1:]); "
             "print(json.dumps([time.perf_counter() - t, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode]))")
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, env=env, cwd=code)
    wall, kib, rc = json.loads(out.stdout.strip().splitlines()[-1])
    if rc != 0:
        print(out.stderr[-2000:], file=sys.stderr)
    return wall, kib / 2**20, rc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=5_000_000, help="completions in each log")
    p.add_argument("--repeats", type=int, default=16, help="completions per document")
    p.add_argument("--work", default=None, help="where the logs are written (default: a temporary directory)")
    p.add_argument("--code", default=str(ROOT), help="the ttc checkout that converts them")
    p.add_argument("--cases", default="lm-eval,schema-1", help="comma-separated: lm-eval, schema-1")
    args = p.parse_args()
    docs = args.records // args.repeats
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-import-"))
    work.mkdir(parents=True, exist_ok=True)
    code = Path(args.code).resolve()
    cases = args.cases.split(",")
    print(f"{docs * args.repeats:,} records ({docs:,} documents x {args.repeats}); ttc from {code}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rows = []
    if "lm-eval" in cases:
        t = time.perf_counter()
        log = write_lm_eval(work / "lm", docs, args.repeats)
        size = sum(f.stat().st_size for f in log.rglob("*")) / 2**30
        print(f"lm-eval log written ({size:.2f} GiB, {time.perf_counter() - t:.0f} s)")
        for name, flags, out in (("import, records only", ["--no-summary"], "runs-bare"),
                                 ("import with summary", [], "runs")):
            rows.append((name, size, *measure([sys.executable, "-m", "ttc", "import", "lm_eval", str(log), "--out",
                                               str(work / out), *flags], code)))
    if "schema-1" in cases:
        t = time.perf_counter()
        root = write_schema1(work / "v1", docs, args.repeats)
        size = sum(f.stat().st_size for f in root.rglob("*")) / 2**30
        print(f"schema-1 run written ({size:.2f} GiB, {time.perf_counter() - t:.0f} s)")
        rows.append(("schema-1 run -> Parquet", size, *measure([sys.executable, "-c", CONVERT_V1, str(root.parent),
                                                                root.name], code)))
    print(f"\n{'conversion':<26} {'log GiB':>8} {'wall s':>8} {'peak RSS GiB':>13} {'exit':>5}")
    for name, size, wall, rss, rc in rows:
        print(f"{name:<26} {size:>8.2f} {wall:>8.0f} {rss:>13.2f} {rc:>5}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""lm-eval's reported numbers beside ttc's, for the same real lm-evaluation-harness log: the table of
docs/importing.md.

With ``--make`` the log is made here: lm-eval 0.4.13 (in ``.venv-harness``, or ``--harness``) runs the
self-consistency task tests/data/lm_eval/chain_sum_sc.yaml (16 samples of each problem; four filters: the boxed
answer or the last number, of the first sample or by majority vote; GSM8K's exact_match options) on ttc's own
chain_sum problems (their ids, so the import lines up with ``ttc run --task chain_sum``) with ``--model``
(default: the embedded SmolLM2-135M-Instruct, with its chat template). Otherwise ``--log`` names an lm-eval
output directory made that way.

The log is imported (``ttc import lm-eval``) and re-scored (``ttc rescore --task chain_sum``); the table gives,
per filter, lm-eval's value, the summary's metric that reproduces it (``vote@k`` at k=1 for take_first, at
k=16 for majority_vote) and its difference (it must be within 1/(2 x problems)), then ttc's estimators on the
same answers (mean@k, maj@k: exact expectations over every k-subset rather than the first sample or one vote)
and ttc's own grading of the texts.

    python benchmarks/import_fidelity.py --make [--problems 20] [--model PATH] [--work DIR]
    python benchmarks/import_fidelity.py --log DIR
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

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
YAML = ROOT / "tests" / "data" / "lm_eval" / "chain_sum_sc.yaml"


def make_log(work: Path, problems: int, model: str, harness: Path, timeout: int) -> Path:
    from tasks import get_task

    tasks = work / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    shutil.copy(YAML, tasks / YAML.name)
    with open(work / "chain_sum_sc.jsonl", "w") as f:
        for p in get_task("chain_sum").load(problems, 0):
            f.write(json.dumps({"id": p.id, "question": p.question, "answer": p.gold}) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=str(ROOT))
    cmd = [str(harness / "lm_eval"), "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
           "--tasks", "chain_sum_sc", "--include_path", str(tasks), "--device", "cpu", "--batch_size", "32",
           "--log_samples", "--output_path", str(work / "out"), "--seed", "0", "--apply_chat_template"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=work, timeout=timeout)
    print(f"lm-eval ran in {time.perf_counter() - t:.0f} s")
    return work / "out"


def ttc(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "ttc", *args], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    sys.stderr.write(r.stderr)
    return r.stdout


def summary(run: Path) -> pd.Series:
    s = pd.read_csv(run / "summary.csv")
    return s[s["level"].astype(str) == "all"].set_index(["sampler", "metric", "budget"])["value"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--log", default=None, help="an lm-eval --output_path directory of chain_sum_sc")
    p.add_argument("--make", action="store_true", help="make the log here with lm-eval")
    p.add_argument("--problems", type=int, default=20, help="chain_sum problems (with --make)")
    p.add_argument("--model", default=None, help="a local checkpoint (with --make; default: the embedded SmolLM2)")
    p.add_argument("--harness", default=str(ROOT / ".venv-harness" / "bin"), help="bin/ of the lm-eval venv")
    p.add_argument("--work", default=None, help="working directory (default: a temporary one, kept)")
    p.add_argument("--timeout", type=int, default=4 * 3600, help="seconds lm-eval may run")
    args = p.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="import-fidelity-"))
    if args.make:
        model = args.model
        if model is None:
            from ttc.backends.models import resolve_model

            model = resolve_model("smollm2-135m").path
        log = make_log(work, args.problems, model, Path(args.harness), args.timeout)
    elif args.log:
        log = Path(args.log)
    else:
        raise SystemExit("give --make or --log DIR")
    runs = work / "runs"
    out = ttc("import", "lm-eval", str(log), "--out", str(runs), "--model", "smollm2-135m")
    run = Path(out.split("-> ")[1].split()[0])
    rescored = Path(ttc("rescore", str(run), "--task", "chain_sum").split("-> ")[1].strip())
    header = json.loads((run / "header.json").read_text())
    reported = header["source"]["reported"]
    s, r = summary(run), summary(rescored)
    n = header["config"]["sweep"]["limit"]
    k = max(header["config"]["sweep"]["budgets"])
    print(f"\n{n} problems x {k} samples; {header['source']['grading']}")
    print(f"| lm-eval filter | lm-eval | ttc metric | ttc | difference | ttc mean@1 | ttc maj@{k} |")
    print("|---|---:|---|---:|---:|---:|---:|")
    worst = 0.0
    for x in reported:
        mine = s[(x["label"], x["metric"], x["budget"])]
        worst = max(worst, abs(mine - x["value"]))
        print(f"| {x['name'].split(',', 1)[1]} | {x['value']:.4f} | {x['metric']} k={x['budget']} | {mine:.4f} | "
              f"{mine - x['value']:+.4f} | {s[(x['label'], 'mean@k', 1)]:.4f} | {s[(x['label'], 'maj@k', k)]:.4f} |")
    print(f"| ttc rescore --task chain_sum | | mean@1 / maj@{k} / pass@{k} | {r[('sample', 'mean@k', 1)]:.4f} / "
          f"{r[('sample', 'maj@k', k)]:.4f} / {r[('sample', 'pass@k', k)]:.4f} | | | |")
    print(f"\nlargest difference {worst:.4f} (bound 1/(2 x {n}) = {1 / (2 * n):.4f}); import {run}; rescore {rescored}")
    for note in header["source"].get("notes") or []:
        print(f"note: {note}")


if __name__ == "__main__":
    main()

"""``python -m ttc.run``: run (or resume) a test-time compute sweep and write ``runs/<run_id>/``.

Exit codes: 0 done; 2 an error (one line on stderr; everything already stored is kept, and re-running
the same command resumes); 130 interrupted (likewise resumable).
"""

from __future__ import annotations

import argparse
import sys

from ttc.config import RunConfig, SamplingConfig, SweepConfig, parse_budgets, parse_names
from ttc.errors import TTCError

DEFAULTS = RunConfig()


def build_parser() -> argparse.ArgumentParser:
    d, s = DEFAULTS.sweep, DEFAULTS.sampling
    p = argparse.ArgumentParser(
        prog="python -m ttc.run",
        description="Sample every problem of each task once at the largest budget, grade and cost each "
                    "completion in FLOPs, and derive accuracy, pass@k and maj@k at every budget. "
                    "Re-running the same command resumes the run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--task", default=",".join(d.tasks),
                   help="comma-separated task names (see `python -m ttc.tasks`), or rg:<family>")
    p.add_argument("--model", default=",".join(d.models),
                   help="comma-separated models: an embedded alias (smollm2-135m), a local HF checkpoint "
                        "directory, or a Hugging Face hub id")
    p.add_argument("--sampler", default=",".join(d.samplers), help="comma-separated test-time strategies")
    p.add_argument("--budget", default=",".join(map(str, d.budgets)),
                   help="comma-separated sample budgets k; generation happens once at the largest")
    p.add_argument("--limit", type=int, default=d.limit, help="number of problems per task")
    p.add_argument("--seed", type=int, default=s.seed, help="seed for problem generation and sampling")
    p.add_argument("--temperature", type=float, default=s.temperature, help="sampling temperature (0 = greedy)")
    p.add_argument("--top-p", type=float, default=s.top_p, help="nucleus sampling threshold")
    p.add_argument("--max-tokens", type=int, default=s.max_tokens, help="maximum generated tokens per completion")
    p.add_argument("--backend", default=DEFAULTS.backend, help="inference backend: hf (transformers)")
    p.add_argument("--dtype", default=DEFAULTS.dtype,
                   help="weights dtype: auto (float32 on CPU, bfloat16 on GPU), bfloat16, float16, float32")
    p.add_argument("--out", default=DEFAULTS.out, help="directory that holds run directories")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> RunConfig:
    return RunConfig(
        sweep=SweepConfig(tasks=parse_names(args.task), models=parse_names(args.model),
                          samplers=parse_names(args.sampler), budgets=parse_budgets(args.budget),
                          limit=args.limit),
        sampling=SamplingConfig(temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                                seed=args.seed),
        backend=args.backend, dtype=args.dtype, out=args.out)


def print_summary(summary_path) -> None:
    import pandas as pd

    s = pd.read_csv(summary_path)
    if s.empty:
        return
    table = s.pivot_table(index=["task", "model", "sampler", "budget"], columns="metric", values="value")
    flops = s.groupby(["task", "model", "sampler", "budget"])["flops_per_problem"].first()
    table["GFLOPs/problem"] = flops / 1e9
    print(table.round(3).to_string())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        from ttc.runner import run_sweep

        store = run_sweep(config, progress=not args.no_progress)
    except TTCError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished problems are saved; re-run the same command to resume", file=sys.stderr)
        return 130
    print_summary(store.root / "summary.csv")
    print(f"run directory: {store.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

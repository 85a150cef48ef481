"""``ttc import FORMAT PATH --out runs/``: another harness's per-sample logs as a ttc run.

Formats (one module each in ``ttc.importers``, listed in ``FORMATS``; ``lm-eval`` and ``lm_eval`` are the same):
``lm-eval`` (lm-evaluation-harness ``--log_samples`` output with ``repeats``) and ``inspect`` (inspect_ai eval logs
with ``epochs``). The result is a run directory like ``ttc run`` writes (header, records, summary, curve,
report), faithful to the harness: its answers, graded as it graded them, so the summary holds the numbers it
reported (printed beside ttc's at the end). ``ttc rescore`` grades the same texts with a ttc task. What a
format does not hold (token counts, FLOPs, seeds) is listed in the header's ``assumptions``.
Exit codes: 0 written (or found, already imported), 2 an error (one line on stderr).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

from ttc.errors import HelpFormatter, OneLineParser, TTCError, cli_guard, debug_requested


def _lm_eval(path, args):
    from ttc.importers.lm_eval import read_lm_eval

    filters = [f for f in args.filter.split(",") if f] if args.filter else None
    return read_lm_eval(path, filters=filters, id_field=args.id_field)


def _inspect(path, args):
    from ttc.importers.inspect_log import read_inspect

    return read_inspect(path, scorer=args.scorer, allow_errors=args.allow_errors)


FORMATS = {"lm-eval": _lm_eval, "inspect": _inspect}
ALIASES = {"lm_eval": "lm-eval", "lm-evaluation-harness": "lm-eval", "lmeval": "lm-eval", "inspect_ai": "inspect",
           "inspect-ai": "inspect"}


def format_name(name: str) -> str:
    """The format a name means (``lm_eval`` and ``lm-eval`` alike), or a ``TTCError``."""
    fmt = ALIASES.get(name.lower(), name.lower())
    if fmt not in FORMATS:
        raise TTCError(f"unknown format {name!r}; known: {', '.join(FORMATS)} (also spelled lm_eval, inspect_ai)")
    return fmt


def add_source_flags(p: argparse.ArgumentParser) -> None:
    """The flags that say how a log is read (shared with ``ttc rescore``)."""
    p.add_argument("--id-field", default="auto", metavar="NAME",
                   help="lm-eval: the doc field that holds each problem's id ('doc_id': lm-eval's row number; auto: "
                        "the doc's 'id' when it has one, else doc_id)")
    p.add_argument("--allow-errors", action="store_true",
                   help="inspect: import the good samples of a log whose eval errored or was cancelled (the others "
                        "are listed in the header)")


def build_parser(prog: str = "ttc import") -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("format", help=f"one of {', '.join(FORMATS)} (lm_eval and inspect_ai also work)")
    p.add_argument("path", help="lm-eval: an --output_path directory or one samples_<task>_<date>.jsonl; "
                                "inspect: a .json or .eval log")
    p.add_argument("--out", default="runs", help="directory that holds run directories")
    p.add_argument("--model", default=None, help="model name in the records (default: the log's)")
    p.add_argument("--model-config", default=None, metavar="PATH",
                   help="the model's Hugging Face config.json (or its directory), for FLOPs (default: the local "
                        "checkpoint the log names, if any)")
    p.add_argument("--tokenizer", default=None, metavar="PATH",
                   help="a Hugging Face tokenizer directory to count tokens where the log has no counts (default: "
                        "the local checkpoint the log names, if any)")
    p.add_argument("--filter", default=None, metavar="NAME[,NAME]",
                   help="lm-eval: the filters to import (default: every filter, each as the sampler label "
                        "imported:<filter>)")
    p.add_argument("--scorer", default=None, help="inspect: the scorer that decides `correct` (default: the "
                                                  "first; every scorer's value is kept in extra)")
    p.add_argument("--no-summary", action="store_true",
                   help="write the records and the header only (a huge log: `ttc summary RUN` and `ttc report RUN` "
                        "then write the numbers and the page)")
    add_source_flags(p)
    return p


def main(argv: list[str] | None = None, prog: str = "ttc import") -> int:
    args = build_parser(prog).parse_args(argv)
    return cli_guard(lambda: _import(args), debug=debug_requested(), sweep=False)


def read_log(fmt: str, path: Path, args):
    if not path.exists():
        raise TTCError(f"{path}: no such file or directory")
    runs = FORMATS[fmt](path, args)
    if not runs:
        raise TTCError(f"{path}: no samples found in the {fmt} format")
    return runs


def compare_rows(run_dir: Path) -> list[tuple[str, str, float, str, float | None]]:
    """``(label, harness's name, harness's value, ttc's metric, ttc's value)`` for every number the harness
    reported, ttc's read from the run's summary.csv."""
    import pandas as pd

    from ttc.store.runstore import read_header

    reported = (read_header(run_dir).get("source") or {}).get("reported") or []
    if not reported:
        return []
    s = pd.read_csv(run_dir / "summary.csv")
    s = s[s["level"].astype(str) == "all"]
    rows = []
    for r in reported:
        hit = s[(s["sampler"] == r["label"]) & (s["metric"] == r["metric"]) & (s["budget"] == r["budget"])]
        rows.append((r["label"], r["name"], r["value"], f"{r['metric']} k={r['budget']}",
                     float(hit["value"].iloc[0]) if len(hit) else None))
    return rows


def print_comparison(run_dir: Path) -> None:
    if not (run_dir / "summary.csv").exists():
        print(f"  no summary.csv yet: `ttc summary {run_dir}` writes it")
        return
    rows = compare_rows(run_dir)
    if not rows:
        return
    print(f"  {'label':<28} {'harness reported':<34} {'value':>7}   {'ttc':<14} {'value':>7}")
    for label, name, value, metric, mine in rows:
        shown = "missing" if mine is None or math.isnan(mine) else f"{mine:.4f}"
        print(f"  {label:<28} {name:<34} {value:>7.4f}   {metric:<14} {shown:>7}")


def _import(args) -> int:
    from ttc.importers.write import FLOPS_UNKNOWN, write_run
    from ttc.store.runstore import read_header

    fmt = format_name(args.format)
    path = Path(args.path)
    runs = read_log(fmt, path, args)
    opts = {"format": fmt, "model": args.model, "filter": args.filter, "scorer": args.scorer,
            "model_config": args.model_config, "tokenizer": args.tokenizer, "id_field": args.id_field,
            "allow_errors": args.allow_errors}
    for imp in runs:
        digest = hashlib.sha256(json.dumps([imp.digest, opts], sort_keys=True).encode()).hexdigest()
        root, written = write_run(imp, Path(args.out), digest, model=args.model, model_config=args.model_config,
                                  tokenizer=args.tokenizer, summarize=not args.no_summary)
        header = read_header(root)
        print(f"{imp.task}: {header.get('config', {}).get('sweep', {}).get('limit')} problems -> {root}"
              + ("" if written else " (already imported: nothing rewritten)"))
        for note in (header.get("source") or {}).get("notes") or []:
            print(f"note: {note}", file=sys.stderr)
        if str(header.get("flops_convention", "")).startswith(FLOPS_UNKNOWN):
            print("note: FLOPs unknown (the log has no token counts and no --tokenizer, or no --model-config): the "
                  "FLOPs columns are NaN and curve.png plots accuracy against samples per problem", file=sys.stderr)
        print_comparison(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())

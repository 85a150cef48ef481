"""``ttc import FORMAT PATH --out runs/``: another harness's per-sample logs as a ttc run.

Formats (one module each in ``ttc.importers``, listed in ``FORMATS``): ``lm_eval`` (lm-evaluation-harness
``--log_samples`` output with ``repeats``) and ``inspect`` (inspect_ai eval logs with ``epochs``). The result is a
run directory like ``ttc run`` writes (header, records, summary, curve, report), so ``ttc summary``, ``ttc fit``,
``ttc report`` and the estimators read it. What a format does not hold (a gold answer, token counts, FLOPs,
sampling seeds) is listed in the header's ``assumptions`` with what was assumed instead.
Exit codes: 0 written, 2 an error (one line on stderr).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from ttc.errors import OneLineParser, TTCError, cli_guard, debug_requested
from ttc.importers.common import Imported, write_run


def _lm_eval(path, args) -> list[Imported]:
    from ttc.importers.lm_eval import read_lm_eval

    return read_lm_eval(path, filter_name=args.filter, strict_filter=args.strict_filter)


def _inspect(path, args) -> list[Imported]:
    from ttc.importers.inspect_log import read_inspect

    return read_inspect(path, scorer=args.scorer)


FORMATS = {"lm_eval": _lm_eval, "inspect": _inspect}


def build_parser(prog: str = "ttc import") -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("format", help=f"one of {', '.join(FORMATS)}")
    p.add_argument("path", help="lm_eval: an --output_path directory or one samples_<task>_<date>.jsonl; "
                                "inspect: a .json or .eval log")
    p.add_argument("--out", default="runs", help="directory that holds run directories")
    p.add_argument("--model", default=None, help="model name in the records (default: the log's)")
    p.add_argument("--model-config", default=None, metavar="PATH",
                   help="the model's Hugging Face config.json (or its directory), for FLOPs")
    p.add_argument("--tokenizer", default=None, metavar="PATH",
                   help="a Hugging Face tokenizer directory to count tokens where the log has no counts")
    p.add_argument("--filter", default=None, help="lm_eval: the filter whose answers are graded (default: the "
                                                  "first in the file)")
    p.add_argument("--strict-filter", default="strict-match",
                   help="lm_eval: the filter whose answers fill answer_strict, when the file has it")
    p.add_argument("--scorer", default=None, help="inspect: the scorer whose answers are graded (default: first)")
    return p


def main(argv: list[str] | None = None, prog: str = "ttc import") -> int:
    args = build_parser(prog).parse_args(argv)
    return cli_guard(lambda: _import(args), debug=debug_requested(), sweep=False)


def _import(args) -> int:
    if args.format not in FORMATS:
        raise TTCError(f"unknown format {args.format!r}; known: {', '.join(FORMATS)}")
    path = Path(args.path)
    if not path.exists():
        raise TTCError(f"{path}: no such file or directory")
    runs = FORMATS[args.format](path, args)
    if not runs:
        raise TTCError(f"{path}: no samples found in the {args.format} format")
    opts = {"format": args.format, "model": args.model, "filter": args.filter, "scorer": args.scorer,
            "strict_filter": args.strict_filter, "model_config": args.model_config, "tokenizer": args.tokenizer}
    for imp in runs:
        digest = hashlib.sha256(json.dumps([imp.digest, opts], sort_keys=True).encode()).hexdigest()
        store = write_run(imp, Path(args.out), digest, model=args.model, model_config=args.model_config,
                          tokenizer=args.tokenizer)
        print(f"{imp.task}: {len(imp.problems)} problems -> {store.root}")
    return 0



if __name__ == "__main__":
    sys.exit(main())

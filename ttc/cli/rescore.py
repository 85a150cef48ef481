"""``ttc rescore RUN_OR_LOG --task TASK``: grade the stored texts of a run or a log with a ttc task, as a new run.

Like ``inspect score``: every text is re-extracted and re-graded by TASK's own extractor and grader and the
result is written as a NEW run under ``--out`` (a new id; its header names the source), so an imported lm-eval
or inspect log can be compared with ttc's grading side by side, and a ttc run re-scored after a grader changes.
The source is never modified. RUN_OR_LOG is a run directory (``ttc run``'s or ``ttc import``'s), an lm-eval
output directory or samples file, or an inspect ``.eval``/``.json`` log.
Exit codes: 0 written, 2 an error (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ttc.errors import HelpFormatter, OneLineParser, TTCError, cli_guard, debug_requested


def build_parser(prog: str) -> argparse.ArgumentParser:
    from ttc.cli.importers import add_source_flags

    p = OneLineParser(prog=prog, description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("source", metavar="RUN_OR_LOG", help="a run directory, an lm-eval output directory or "
                                                        "samples_*.jsonl, or an inspect .eval/.json log")
    p.add_argument("--task", required=True, help="the ttc task whose extractor and grader score the texts "
                                                 "(`ttc tasks` lists them; custom:<grader> grades against the "
                                                 "source's gold answers)")
    p.add_argument("--out", default=None, help="directory for the new run (default: the source run's parent, "
                                               "or runs/ for a log)")
    p.add_argument("--format", default=None, help="the log's format, lm-eval or inspect (default: from the path)")
    p.add_argument("--limit", type=int, default=None,
                   help="how many of the task's problems to match ids against (default: the source's count)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed the task's problems are generated with (default: the source run's, else 0)")
    p.add_argument("--data-file", default=None, help="a local data file for tasks that read one")
    p.add_argument("--model", default=None, help="a log: model name in the records (default: the log's)")
    p.add_argument("--model-config", default=None, metavar="PATH", help="a log: config.json for FLOPs")
    p.add_argument("--tokenizer", default=None, metavar="PATH", help="a log: tokenizer to count tokens it lacks")
    add_source_flags(p)
    return p


def main(argv: list[str] | None = None, prog: str = "ttc rescore") -> int:
    args = build_parser(prog).parse_args(argv)
    return cli_guard(lambda: _rescore(args), debug=debug_requested(), sweep=False)


def guess_format(path: Path) -> str:
    if path.is_dir() or path.suffix == ".jsonl":
        return "lm-eval"
    if path.suffix in (".eval", ".json"):
        return "inspect"
    raise TTCError(f"{path}: neither a run directory nor a log ttc reads; give --format lm-eval or inspect")


def _rescore(args) -> int:
    from ttc.importers.rescore import Grader, rescore_log, rescore_run

    source = Path(args.source)
    if not source.exists():
        raise TTCError(f"{source}: no such file or directory")
    if (source / "header.json").is_file():
        from ttc.store.runstore import read_header

        header = read_header(source)
        sweep = (header.get("config") or {}).get("sweep") or {}
        limit = args.limit or sweep.get("limit")
        seed = args.seed if args.seed is not None else int(header.get("seed") or 0)
        grader = Grader(args.task, limit, seed, args.data_file or sweep.get("data_file"), str(source))
        root = rescore_run(source, grader, Path(args.out) if args.out else source.parent)
        print(f"{grader.task.name}: re-scored {source} -> {root}")
        return 0
    from ttc.cli.importers import FORMATS, format_name

    fmt = format_name(args.format) if args.format else guess_format(source)
    if fmt == "lm-eval":
        from ttc.importers.lm_eval import read_lm_eval

        runs = read_lm_eval(source, id_field=args.id_field, grade=False)
    else:
        args.scorer = None
        runs = FORMATS[fmt](source, args)
    if not runs:
        raise TTCError(f"{source}: no samples found in the {fmt} format")
    for imp in runs:
        limit = args.limit or _count(imp)
        grader = Grader(args.task, limit, args.seed or 0, args.data_file, str(source))
        opts = {"task": args.task, "limit": limit, "seed": args.seed, "data_file": args.data_file, "model": args.model,
                "model_config": args.model_config, "tokenizer": args.tokenizer, "id_field": args.id_field}
        root = rescore_log(imp, grader, Path(args.out or "runs"), opts, model=args.model,
                           model_config=args.model_config, tokenizer=args.tokenizer)
        print(f"{grader.task.name}: re-scored {source} -> {root}")
    return 0


def _count(imp) -> int | None:
    """The number of documents a log says it holds (lm-eval's n-samples, inspect's dataset size)."""
    n = imp.source.get("dataset_samples")
    return n if isinstance(n, int) else None


if __name__ == "__main__":
    sys.exit(main())

"""``ttc <verb>``: every command of ttc, one console script with verbs (like ``inspect eval`` or ``vllm serve``).

Each verb is a module of this package with a ``main(argv, prog)`` that parses its own flags; ``VERBS`` is
the plain table from verb to that function. Nothing outside this package imports it: library code never
depends on a command line. The ``python -m ttc.<name>`` forms of earlier releases run the same functions
(``run_verb``).
"""

from __future__ import annotations

import importlib
import os
import sys

# verb -> (module, function, one line of help); the order is the order of ``ttc --help``.
VERBS = {
    "run": ("ttc.cli.run", "main", "run or resume a sweep (task x model x strategy x budgets) into runs/<id>/"),
    "tasks": ("ttc.cli.tasks", "main", "list the tasks with their source, licence, split and size"),
    "summary": ("ttc.cli.summary", "main", "recompute a run's summary.csv, problems.csv and curve.png"),
    "show": ("ttc.cli.show", "main", "a run's problems and samples in the terminal"),
    "report": ("ttc.cli.report", "main", "write a run's report.html (self-contained, opens from disk)"),
    "fit": ("ttc.cli.analysis", "fit_main", "fit curves with CIs and price them in pretraining compute"),
    "plot": ("ttc.cli.analysis", "plot_main", "draw the exchange and frontier figures of runs"),
    "import": ("ttc.cli.importers", "main", "turn another harness's sample log (lm-eval, inspect) into a run"),
    "compare": ("ttc.cli.compare", "main", "several runs on their shared problems: one figure, paired differences"),
    "serve": ("ttc.cli.serve", "main", "start vLLM's OpenAI-compatible server for a model, until Ctrl-C"),
    "completion": ("ttc.cli.completion", "main", "print a bash completion script for ttc's verbs and flags"),
    "rescore": ("ttc.cli.rescore", "main", "grade a run's or a log's texts with a ttc task, as a new run"),
}


def exit_with(rc: int):
    """``sys.exit(rc)``, except after a Ctrl-C (130): CPython was seen to end such a process with SIGINT
    (status -2) despite ``sys.exit(130)`` when the Ctrl-C came while modules were loading; everything is
    flushed to disk by then, so leave at once."""
    if rc == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(rc)


def run_verb(verb: str, argv: list[str] | None = None, prog: str | None = None) -> int:
    module, function, _ = VERBS[verb]
    main = getattr(importlib.import_module(module), function)
    return main(sys.argv[1:] if argv is None else argv, prog=prog or f"ttc {verb}")


def usage() -> str:
    from ttc import __version__

    width = max(map(len, VERBS))
    lines = [f"usage: ttc <verb> [flags]    (ttc {__version__}; test-time compute scaling, measured in FLOPs)",
             "", "verbs:"]
    lines += [f"  {verb.ljust(width)}  {text}" for verb, (_, _, text) in VERBS.items()]
    lines += ["", "`ttc <verb> --help` lists a verb's flags. `python -m ttc.run` is `ttc run`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The ``ttc`` console script."""
    from ttc import install_interrupt_hook

    install_interrupt_hook()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from ttc import __version__

        print(f"ttc {__version__}")
        return 0
    verb = argv[0]
    if verb not in VERBS:
        hint = (f"; a sweep is `ttc run {' '.join(argv)}`" if verb.startswith("-")
                else f"; known: {', '.join(VERBS)}")
        print(f"error: ttc has no verb {verb!r}{hint} (see ttc --help)", file=sys.stderr)
        return 2
    return run_verb(verb, argv[1:])


def console() -> None:
    exit_with(main())

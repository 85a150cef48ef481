"""ttc: measure how test-time compute turns into accuracy, in FLOPs.

The pipeline, one subpackage per stage: ``tasks`` (top level) -> ``samplers`` (top level, the strategies) ->
``ttc.backends`` -> ``ttc.sweep`` (config, runner) -> ``ttc.store`` (run directories) -> ``ttc.metrics``
(estimators, summary) -> ``ttc.analysis`` (fits) -> ``ttc.report`` (page, terminal, curve); ``ttc.importers``
brings other harnesses' logs in, and ``ttc.cli`` holds every command. The names below are the public API,
imported on first use so that ``ttc run`` starts (and answers Ctrl-C) before pandas loads.
"""

import importlib
import os
import sys

__version__ = "0.1.0"

_PUBLIC = {
    "load_run": "ttc.store.runstore",
    "read_header": "ttc.store.runstore",
    "RunStore": "ttc.store.runstore",
    "SampleRecord": "ttc.store.records",
    "Completion": "ttc.store.records",
    "RunConfig": "ttc.sweep.config",
    "SweepConfig": "ttc.sweep.config",
    "SamplingConfig": "ttc.sweep.config",
    "StrategyConfig": "ttc.sweep.config",
    "BackendConfig": "ttc.sweep.config",
    "ClusterConfig": "ttc.sweep.config",
    "run_sweep": "ttc.sweep.runner",
    "write_summary": "ttc.metrics.summary",
    "load_summary": "ttc.analysis.runs",
    "write_report": "ttc.report.html",
    "TTCError": "ttc.errors",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'ttc' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_PUBLIC])


def _interrupted(kind, value, tb, previous=sys.excepthook):
    """A Ctrl-C that nothing handled (while a command starts up) exits 130 with one line, not a traceback."""
    if issubclass(kind, KeyboardInterrupt):
        sys.stdout.flush()
        print("interrupted", file=sys.stderr, flush=True)
        os._exit(130)
    previous(kind, value, tb)


def install_interrupt_hook() -> None:
    sys.excepthook = _interrupted


if sys.argv[:1] == ["-m"]:  # set so while ``python -m`` locates the module it runs
    install_interrupt_hook()

"""ttc: measure how test-time compute turns into accuracy, in FLOPs."""

import os
import sys

__all__ = ["load_run"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported on first use, so ``python -m ttc.run`` starts (and answers Ctrl-C) before pandas loads.
    if name == "load_run":
        from ttc.store import load_run

        return load_run
    raise AttributeError(f"module 'ttc' has no attribute {name!r}")


def _interrupted(kind, value, tb, previous=sys.excepthook):
    """``python -m ttc.<command>``: a Ctrl-C that nothing handled (while the command starts up) exits 130
    with one line, not a traceback."""
    if issubclass(kind, KeyboardInterrupt):
        sys.stdout.flush()
        print("interrupted", file=sys.stderr, flush=True)
        os._exit(130)
    previous(kind, value, tb)


if sys.argv[:1] == ["-m"]:  # set so while ``python -m`` locates the module it runs
    sys.excepthook = _interrupted

"""ttc: measure how test-time compute turns into accuracy, in FLOPs."""

__all__ = ["load_run"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported on first use, so ``python -m ttc.run`` starts (and answers Ctrl-C) before pandas loads.
    if name == "load_run":
        from ttc.store import load_run

        return load_run
    raise AttributeError(f"module 'ttc' has no attribute {name!r}")

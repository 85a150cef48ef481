"""ttc: measure how test-time compute turns into accuracy, in FLOPs."""

from ttc.store import load_run

__all__ = ["load_run"]
__version__ = "0.1.0"

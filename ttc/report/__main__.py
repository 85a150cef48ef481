"""``python -m ttc.report``: kept for one release; the command is ``ttc report``."""

from ttc.cli import exit_with, run_verb

exit_with(run_verb("report", prog="python -m ttc.report"))

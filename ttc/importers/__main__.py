"""``python -m ttc.importers``: kept for one release; the command is ``ttc import``."""

from ttc.cli import exit_with, run_verb

exit_with(run_verb("import", prog="python -m ttc.importers"))

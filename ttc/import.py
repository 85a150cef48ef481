"""``python -m ttc.import``: kept for one release; the command is ``ttc import``."""

if __name__ == "__main__":
    from ttc.cli import exit_with, run_verb

    exit_with(run_verb("import", prog="python -m ttc.import"))

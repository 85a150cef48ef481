"""``python -m ttc.plot``: kept for one release; the command is ``ttc plot``."""

if __name__ == "__main__":
    from ttc.cli import exit_with, run_verb

    exit_with(run_verb("plot", prog="python -m ttc.plot"))

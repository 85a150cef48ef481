"""``python -m ttc.summary``: kept for one release; the command is ``ttc summary``."""

if __name__ == "__main__":
    from ttc.cli import exit_with, run_verb

    exit_with(run_verb("summary", prog="python -m ttc.summary"))

"""``python -m ttc.show``: kept for one release; the command is ``ttc show``."""

if __name__ == "__main__":
    from ttc.cli import exit_with, run_verb

    exit_with(run_verb("show", prog="python -m ttc.show"))

"""``python -m ttc.fit``: kept for one release; the command is ``ttc fit``."""

if __name__ == "__main__":
    from ttc.cli import exit_with, run_verb

    exit_with(run_verb("fit", prog="python -m ttc.fit"))

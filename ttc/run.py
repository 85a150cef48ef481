"""``python -m ttc.run``: the documented entry point of a sweep; the same command as ``ttc run``."""

if __name__ == "__main__":
    from ttc.cli import exit_with, run_verb

    exit_with(run_verb("run", prog="python -m ttc.run"))

"""``python -m ttc.rescore``: the same command as ``ttc rescore``."""

if __name__ == "__main__":
    from ttc.cli import exit_with, run_verb

    exit_with(run_verb("rescore", prog="python -m ttc.rescore"))

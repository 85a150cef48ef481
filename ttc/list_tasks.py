"""``python -m ttc.list_tasks``: kept for one release; the command is ``ttc tasks``."""

if __name__ == "__main__":
    from ttc.cli import exit_with, run_verb

    exit_with(run_verb("tasks", prog="python -m ttc.list_tasks"))

"""Runs a sweep on the fake backend in its own process, so tests can kill it with SIGKILL."""

import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])

from conftest import scripted  # noqa: E402

from ttc.backends.fake import FakeBackend  # noqa: E402
from ttc.errors import cli_guard  # noqa: E402
from ttc.sweep.config import RunConfig, SweepConfig  # noqa: E402
from ttc.sweep.runner import run_sweep  # noqa: E402


def slow(script, delay):
    def wrapped(prompt, rng):
        time.sleep(delay)
        return script(prompt, rng)
    return wrapped


class LockstepFake(FakeBackend):
    """Decodes one batch at a time, as the transformers backend: problems run in lock-step groups of 3."""

    lockstep = True
    concurrency = 3


if __name__ == "__main__":
    out, delay = sys.argv[1], float(sys.argv[2])
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    kind = LockstepFake if sys.argv[4:] == ["lockstep"] else FakeBackend
    config = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=("smollm2-135m",), budgets=(1, 2, 4),
                                         limit=limit), out=out)
    # errors, a full disk and Ctrl-C end as they do in the CLI
    sys.exit(cli_guard(lambda: run_sweep(config, backend_factory=lambda m, c: kind(slow(scripted(), delay)),
                                         progress=False) and 0))

"""Runs a sweep on the fake backend in its own process, so tests can kill it with SIGKILL."""

import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])

from conftest import scripted  # noqa: E402
from ttc.backends.fake import FakeBackend  # noqa: E402
from ttc.config import RunConfig, SweepConfig  # noqa: E402
from ttc.runner import run_sweep  # noqa: E402


def slow(script, delay):
    def wrapped(prompt, rng):
        time.sleep(delay)
        return script(prompt, rng)
    return wrapped


if __name__ == "__main__":
    out, delay = sys.argv[1], float(sys.argv[2])
    config = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=("smollm2-135m",), budgets=(1, 2, 4),
                                         limit=8), out=out)
    run_sweep(config, backend_factory=lambda m, c: FakeBackend(slow(scripted(), delay)), progress=False)

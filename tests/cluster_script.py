"""A sweep on the fake backend on a Ray cluster, run in its own process (``python tests/cluster_script.py OUT
...``) so tests can give it its own environment (Ray's memory threshold, a dead RAY_ADDRESS), signal it, and
bound it with a timeout. It ends as ``python -m ttc.run`` does (``cli_guard``: exit 0, 2 on an error, 130 when
interrupted).

Modes (what the replicas' backend does, besides answering like ``conftest.scripted`` after ``--delay``):

* ``plain``: nothing else.
* ``oom``: the first call anywhere (a file in ``--marker`` tells) touches ``--gb`` GiB and holds them for
  up to a minute, so Ray's memory monitor kills its worker; calls after it allocate nothing.
* ``shipped``: the backend refuses to start unless ``ttc``, ``tasks`` and ``samplers`` were imported from
  the runtime env the driver shipped (a node without this checkout).
"""

import argparse
import os
import sys
import time


def answer(prompt, rng):
    return f"I think the answer is \\boxed{{{rng.randint(0, 3)}}}"


def make_factory(mode: str, delay: float, marker: str, gb: float):
    from ttc.backends.fake import FakeBackend

    def script(prompt, rng):
        time.sleep(delay)
        if mode == "oom":
            try:
                os.close(os.open(os.path.join(marker, "allocated"), os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return answer(prompt, rng)
            block = bytearray(int(gb * 2**30))
            for i in range(0, len(block), 4096):  # touch every page: resident memory, as a model's would be
                block[i] = 1
            time.sleep(60)
        return answer(prompt, rng)

    def factory(model, config):
        if mode == "shipped":
            import samplers
            import tasks
            import ttc

            where = [m.__file__ for m in (ttc, tasks, samplers)]
            if not all("runtime_resources" in w for w in where):
                raise RuntimeError(f"the replica imported this node's code, not the driver's: {where}")
        return FakeBackend(script)

    return factory


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--ray", default="local")
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--limit", type=int, default=6)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--mode", default="plain", choices=["plain", "oom", "shipped"])
    p.add_argument("--marker", default="")
    p.add_argument("--gb", type=float, default=1.0)
    args = p.parse_args()

    from ttc.errors import cli_guard
    from ttc.sweep.config import ClusterConfig, RunConfig, SweepConfig
    from ttc.sweep.runner import run_sweep

    config = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=("smollm2-135m",), budgets=(1, 2, 4),
                                         limit=args.limit), out=args.out,
                       cluster=ClusterConfig(address=args.ray, replicas=(("", args.replicas),)))
    factory = make_factory(args.mode, args.delay, args.marker, args.gb)
    return cli_guard(lambda: run_sweep(config, backend_factory=factory, progress=False) and 0)


if __name__ == "__main__":
    sys.exit(main())

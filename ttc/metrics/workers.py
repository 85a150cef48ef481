"""CPU-bound work split over fresh child interpreters, for the estimators that are too slow on one core.

``multiprocessing``'s spawn start method runs the parent's main script again in every child (as
``__mp_main__``): a researcher's script without an ``if __name__ == "__main__":`` guard then dies in a
``BrokenProcessPool``, or runs its own top level twice. Here each child is a ``python -c`` that imports only
the module of the function it runs (with the parent's ``sys.path``); its part of the work and its result
travel as pickles over its stdin and stdout, and this process computes a part of its own while the children
start and work. Children inherit stderr (warnings show as they would here); a child's stdout is its stderr,
so that nothing a library prints can corrupt the result stream. Using ``subprocess`` also keeps the
children out of the parent's threads (an engine, a progress bar), which a ``fork`` would copy mid-flight.
"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
import traceback

_BOOT = "import pickle, sys; sys.path[:] = pickle.load(sys.stdin.buffer); from ttc.metrics.workers import _serve; _serve()"


def cpus() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def map_parts(func, parts: list) -> list:
    """``[func(part) for part in parts]``: ``parts[1:]`` each in a child interpreter, ``parts[0]`` here.
    ``func`` is a module-level function (found in the child by module and name). An exception in a child is
    raised here as a ``RuntimeError`` with the child's traceback; Ctrl-C or an error here stops the children."""
    if len(parts) <= 1 or not sys.executable:
        return [func(part) for part in parts]
    target = (func.__module__, func.__qualname__)
    procs: list[subprocess.Popen] = []
    try:
        for _ in parts[1:]:
            procs.append(subprocess.Popen([sys.executable, "-c", _BOOT], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE))
        for proc, part in zip(procs, parts[1:]):
            pickle.dump(sys.path, proc.stdin)
            pickle.dump((target, part), proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            proc.stdin.close()
        results = [func(parts[0])]
        for proc in procs:
            data = proc.stdout.read()
            rc = proc.wait()
            if rc != 0 or not data:
                raise RuntimeError(f"a worker computing {target[0]}.{target[1]} exited with status {rc}")
            ok, value = pickle.loads(data)
            if not ok:
                raise RuntimeError(f"a worker computing {target[0]}.{target[1]} failed:\n{value}")
            results.append(value)
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for f in (proc.stdin, proc.stdout):
                if f and not f.closed:
                    f.close()


def _serve() -> None:
    """A child's side of ``map_parts``: read (function, part) from stdin, write (ok, result or traceback)."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # prints go to stderr, the result stream stays clean
    try:
        (module, name), part = pickle.load(sys.stdin.buffer)
        func = importlib.import_module(module)
        for attr in name.split("."):
            func = getattr(func, attr)
        reply = (True, func(part))
    except BaseException:  # noqa: BLE001 - everything goes back to the parent, which raises it
        reply = (False, traceback.format_exc())
    pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.close()

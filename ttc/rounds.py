"""Several problems' strategy runs in lock-step, their model calls of each round merged into one batch.

A backend that decodes one batch at a time (transformers) is fastest when its batches are full, but one
problem rarely fills one: a budget-forcing chain that thinks longer than its siblings, or a search's few
surviving paths, decode alone. ``Rounds.run`` runs a group of problems' strategies, each in its own thread,
and lets them share the batches: a strategy's ``generate`` call waits until every problem of the group is
either waiting in ``generate`` or finished; then the caller's thread (the runner's main thread) makes one
backend call with all waiting requests, in the problems' order, and hands each problem its completions.

The rounds are deterministic: which calls share a batch depends only on the group's problems and on what
their strategies ask for, never on thread timing, because a round starts only when no problem is running.
So a group of the same problems gives the same records every time, even on a backend whose outputs depend
on what shares a batch (bfloat16 matmuls round differently at other batch shapes). The runner keeps groups
fixed (``ttc.runner.in_groups``) so that a resumed run reproduces an uninterrupted one.

The backend is only ever called from the thread that runs ``Rounds.run``, so a Ctrl-C there interrupts the
decoding itself, as it does without rounds; the problems' threads are then told to stop and are abandoned
(daemon threads: they never hold a process open). A merged round is cut into chunks of at most ``max_rows``
samples (whole requests, in order; a single request larger than that is a chunk of its own), which bounds
the memory one backend call takes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator

from ttc.backends.base import Request
from ttc.records import Completion

Batch = Callable[[list[Request]], list[list[Completion]]]  # a backend's generate_requests
Submit = Batch  # what a problem's strategy calls instead of it


class Abandoned(Exception):
    """Raised in a problem's thread when the group it belongs to stops early (Ctrl-C, or a failure of the
    thread that drives the rounds)."""


class Rounds:
    """Lock-step groups of problems on one backend ``batch`` function (``Backend.generate_requests``)."""

    def __init__(self, batch: Batch, max_rows: int = 256):
        if max_rows < 1:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        self._batch = batch
        self._max_rows = max_rows
        self.calls = 0  # backend calls made (chunks of merged rounds)
        self.rounds = 0  # rounds run

    def run(self, items: list, fn: Callable[[object, Submit], object]) -> Iterator[tuple[object, object]]:
        """Run ``fn(item, submit)`` for every item at once, each in its own thread, where ``submit`` is the
        item's ``generate_requests``; yield ``(item, result)`` as each finishes (in the caller's thread, which
        also runs every round). A failed item does not stop the others: once all have finished, the first
        failure is raised."""
        group = _Group(len(items))
        for k, item in enumerate(items):
            threading.Thread(target=group.member, args=(k, fn, item, functools.partial(group.submit, k)),
                             name=f"ttc-problem-{k}", daemon=True).start()
        error = None
        try:
            while True:
                finished, calls = group.next_event()
                for k, ok, value in finished:
                    if ok:
                        yield items[k], value
                    elif error is None:
                        error = value
                if calls:
                    group.deliver(self._merged(calls))
                elif not finished:
                    break  # every item has finished
        finally:
            group.abandon()
        if error is not None:
            raise error

    def _merged(self, calls: list[tuple[int, list[Request]]]) -> dict:
        """Each caller's completions (or the exception its round raised), from the round's backend calls."""
        self.rounds += 1
        flat = [(k, r) for k, reqs in calls for r in reqs]
        out: dict = {k: [] for k, _ in calls}
        try:
            for chunk in self._chunks(flat):
                self.calls += 1
                for (k, _), comps in zip(chunk, self._batch([r for _, r in chunk])):
                    out[k].append(comps)
        except Exception as e:  # every caller of the round sees the backend's failure
            return {k: e for k, _ in calls}
        return out

    def _chunks(self, flat: list[tuple]) -> list[list[tuple]]:
        chunks, rows = [[]], 0
        for k, r in flat:
            if chunks[-1] and rows + r.n > self._max_rows:
                chunks.append([])
                rows = 0
            chunks[-1].append((k, r))
            rows += r.n
        return [c for c in chunks if c]


class _Group:
    """The shared state of one ``Rounds.run``: who is still running, who waits with which requests."""

    def __init__(self, size: int):
        self._cv = threading.Condition()
        self._live = set(range(size))
        self._waiting: dict[int, list[Request]] = {}
        self._results: dict[int, object] = {}
        self._finished: list[tuple[int, bool, object]] = []
        self._abandoned = False

    def member(self, k: int, fn, item, submit: Submit) -> None:
        try:
            value, ok = fn(item, submit), True
        except BaseException as e:  # noqa: BLE001 -- handed to the driving thread, which raises it
            value, ok = e, False
        with self._cv:
            self._live.discard(k)
            self._waiting.pop(k, None)
            self._finished.append((k, ok, value))
            self._cv.notify_all()

    def submit(self, k: int, requests: list[Request]) -> list[list[Completion]]:
        with self._cv:
            if self._abandoned:
                raise Abandoned("the run stopped")
            self._waiting[k] = requests
            self._cv.notify_all()
            while k not in self._results:
                if self._abandoned:
                    raise Abandoned("the run stopped")
                self._cv.wait()
            out = self._results.pop(k)
        if isinstance(out, BaseException):
            raise out
        return out

    def next_event(self) -> tuple[list, list]:
        """Wait until some item has finished, or a round is complete (every running item waits); return the
        finished items and the round's calls (in item order), either possibly empty; both empty when every
        item has finished."""
        with self._cv:
            while not self._finished and self._live and len(self._waiting) < len(self._live):
                self._cv.wait()
            finished, self._finished = self._finished, []
            calls = []
            if self._live and len(self._waiting) == len(self._live):
                calls = sorted(self._waiting.items())
                self._waiting = {}
            return finished, calls

    def deliver(self, results: dict) -> None:
        with self._cv:
            self._results.update(results)
            self._cv.notify_all()

    def abandon(self) -> None:
        with self._cv:
            self._abandoned = True
            self._cv.notify_all()

"""Several problems' strategies run together, their model calls merged so that they share the batches.

A problem rarely fills a batch on its own: a budget-forcing chain that thinks longer than its siblings, or
a search's few surviving paths, decode alone. ``Rounds.run`` runs problems' strategies, each in its own
thread, and merges their calls. A strategy's ``generate`` call waits; when no problem is running (every one
waits in ``generate`` or has finished) the caller's thread (the runner's main thread) hands all the new
calls to the backend at once, in the problems' order. How they are decoded depends on the backend:

* one batch at a time (transformers, ``Backend.lockstep``): the round's calls make one backend call, and
  every caller gets its completions when it returns. Problems run in fixed groups (``ttc.sweep.runner.in_groups``)
  so that a resumed run forms the same rounds as an uninterrupted one.
* continuous batching (vLLM, ``Backend.engine``): the calls (a verifier's ``continuation_logprobs`` too,
  through ``Submit.logprobs``) join the engine's running batch at its next step, and the caller's thread
  steps the engine until some problem's call is complete; that problem goes on (its next call joins the
  running batch, without waiting for the others') while the engine waits for it, and stepping resumes once
  no problem runs again. Up to ``width`` problems are in flight, a new one starting as one finishes.

Either way the composition is deterministic: requests join the batch only at points where no problem is
running, and in the problems' order, so what shares a batch (or an engine step) depends only on the
problems and on what their strategies ask for, never on thread timing. A run of the same problems gives the
same records every time, even where a backend's outputs depend on what shares a batch (bfloat16 and GPU
matmuls round differently at other batch shapes).

The backend is only ever called and stepped from the thread that runs ``Rounds.run``, so a Ctrl-C there
interrupts the decoding itself, as it does without rounds; the problems' threads are then told to stop and
are abandoned (daemon threads: they never hold a process open). A merged round of a lock-step backend is
cut into chunks of at most ``max_rows`` samples (whole requests, in order; a single request larger than that
is a chunk of its own), which bounds the memory one backend call takes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Union

from ttc.backends.base import Engine, Pending, Request
from ttc.store.records import Completion

Batch = Callable[[list[Request]], list[list[Completion]]]  # a backend's generate_requests


@dataclass(frozen=True)
class Logprobs:
    """A ``continuation_logprobs(prefix, continuations)`` call (engines only: a lock-step backend scores in
    the problem's own thread, in a forward pass of its own)."""

    prefix: str
    continuations: tuple[str, ...]


Call = Union[list[Request], Logprobs]
Calls = list[tuple[int, Call]]  # (problem, its call), in problem order


class Submit:
    """A problem's way to the backend inside ``Rounds.run``: call it as ``generate_requests``. On an
    engine, ``logprobs`` is its ``continuation_logprobs`` too (else None: the backend's own is used)."""

    def __init__(self, group: "_Group", k: int, engine: bool):
        self._group, self._k = group, k
        self.logprobs = self._logprobs if engine else None

    def __call__(self, requests: list[Request]) -> list[list[Completion]]:
        return self._group.submit(self._k, requests)

    def _logprobs(self, prefix: str, continuations: list[str]) -> tuple[int, list[list[float]]]:
        return self._group.submit(self._k, Logprobs(prefix, tuple(continuations)))


class Abandoned(Exception):
    """Raised in a problem's thread when the group it belongs to stops early (Ctrl-C, or a failure of the
    thread that drives the rounds)."""


class Rounds:
    """Problems' calls merged on one backend: ``Rounds(backend.generate_requests)`` for a backend that
    decodes one batch at a time, ``Rounds(engine=backend.engine)`` for one that batches continuously."""

    def __init__(self, batch: Batch | None = None, max_rows: int = 256, engine: Engine | None = None):
        if (batch is None) == (engine is None):
            raise ValueError("Rounds takes either a batch function or an engine")
        if max_rows < 1:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        self._batch, self._engine = batch, engine
        self._max_rows = max_rows
        self.calls = 0  # backend calls made (chunks of merged rounds; engine: calls started)
        self.rounds = 0  # times the backend ran for the waiting problems (a batch call, or engine steps)

    def run(self, items: list, fn: Callable[[object, Submit], object],
            width: int | None = None) -> Iterator[tuple[object, object]]:
        """Run ``fn(item, submit)`` for the items, each in its own thread, at most ``width`` at once (all by
        default; a new item starts as one finishes), where ``submit`` is the item's ``generate_requests``;
        yield ``(item, result)`` as each finishes (in the caller's thread, which also drives the backend).
        A failed item does not stop the running ones, but no new item starts: once all have finished, the
        first failure is raised."""
        group = _Group()
        driver = _Batches(self) if self._engine is None else _Steps(self, self._engine)
        upcoming = iter(enumerate(items))
        error = None

        def start_next() -> bool:
            for k, item in upcoming:
                group.join(k)
                submit = Submit(group, k, engine=self._engine is not None)
                threading.Thread(target=group.member, args=(k, fn, item, submit),
                                 name=f"ttc-problem-{k}", daemon=True).start()
                return True
            return False

        for _ in range(width or len(items)):
            start_next()
        try:
            while True:
                finished, calls, settled = group.next_event()
                driver.add(calls)
                started = False
                for k, ok, value in finished:
                    if ok:
                        yield items[k], value
                    elif error is None:
                        error = value
                    if error is None:
                        started |= start_next()
                if started:  # a new problem's first call joins before the backend runs again
                    continue
                if settled:
                    group.deliver(driver.advance())
                elif not finished:
                    break  # every item has finished
        finally:
            group.abandon()
        if error is not None:
            raise error


class _Batches:
    """A lock-step backend: all waiting calls in one backend call (cut into chunks of ``max_rows``)."""

    def __init__(self, rounds: Rounds):
        self.rounds, self.calls = rounds, []

    def add(self, calls: Calls) -> None:
        if any(isinstance(call, Logprobs) for _, call in calls):  # Submit.logprobs is None here
            raise TypeError("a lock-step backend takes only generate calls")
        self.calls += calls

    def advance(self) -> dict:
        """Every waiting caller's completions (or the exception its round raised)."""
        calls, self.calls = sorted(self.calls, key=lambda c: c[0]), []
        self.rounds.rounds += 1
        flat = [(k, r) for k, reqs in calls for r in reqs]
        out: dict = {k: [] for k, _ in calls}
        try:
            for chunk in self._chunks(flat):
                self.rounds.calls += 1
                for (k, _), comps in zip(chunk, self.rounds._batch([r for _, r in chunk])):
                    out[k].append(comps)
        except Exception as e:  # every caller of the round sees the backend's failure
            return {k: e for k, _ in calls}
        return out

    def _chunks(self, flat: list[tuple]) -> list[list[tuple]]:
        chunks, rows = [[]], 0
        for k, r in flat:
            if chunks[-1] and rows + r.n > self.rounds._max_rows:
                chunks.append([])
                rows = 0
            chunks[-1].append((k, r))
            rows += r.n
        return [c for c in chunks if c]


class _Steps:
    """A continuous-batching engine: each call joins the running batch; ``advance`` steps the engine until
    some caller's call is complete."""

    def __init__(self, rounds: Rounds, engine: Engine):
        self.rounds, self.engine = rounds, engine
        self.pending: dict[int, Pending | BaseException] = {}

    def add(self, calls: Calls) -> None:
        for k, call in sorted(calls, key=lambda c: c[0]):
            self.rounds.calls += 1
            try:
                if isinstance(call, Logprobs):
                    self.pending[k] = self.engine.start_logprobs(call.prefix, list(call.continuations))
                else:
                    self.pending[k] = self.engine.start(call)
            except Exception as e:  # a call the backend cannot take (an empty prompt) fails its caller
                self.pending[k] = e

    def advance(self) -> dict:
        def ready(p) -> bool:
            return isinstance(p, BaseException) or p.done()

        if not self.pending:  # every waiting problem has a call in the engine: cannot happen
            raise RuntimeError("problems wait for completions, but no call is in the engine")
        if not any(ready(p) for p in self.pending.values()):
            self.rounds.rounds += 1
            self.engine.drive(lambda: any(ready(p) for p in self.pending.values()))
        out = {}
        for k in [k for k, p in self.pending.items() if ready(p)]:
            p = self.pending.pop(k)
            try:
                out[k] = p if isinstance(p, BaseException) else p.result()
            except Exception as e:  # the engine failed this call (or stopped)
                out[k] = e
        return out


class _Group:
    """The shared state of one ``Rounds.run``: who is running, who waits, which calls are new."""

    def __init__(self):
        self._cv = threading.Condition()
        self._live: set[int] = set()
        self._blocked: set[int] = set()  # waiting in ``submit`` for completions
        self._calls: dict[int, Call] = {}  # calls not yet handed to the backend
        self._results: dict[int, object] = {}
        self._finished: list[tuple[int, bool, object]] = []
        self._abandoned = False

    def join(self, k: int) -> None:
        with self._cv:
            self._live.add(k)

    def member(self, k: int, fn, item, submit: Submit) -> None:
        try:
            value, ok = fn(item, submit), True
        except BaseException as e:  # noqa: BLE001 -- handed to the driving thread, which raises it
            value, ok = e, False
        with self._cv:
            self._live.discard(k)
            self._blocked.discard(k)
            self._calls.pop(k, None)
            self._finished.append((k, ok, value))
            self._cv.notify_all()

    def submit(self, k: int, call: Call):
        if isinstance(call, list) and not call:
            return []
        with self._cv:
            if self._abandoned:
                raise Abandoned("the run stopped")
            self._calls[k] = call
            self._blocked.add(k)
            self._cv.notify_all()
            while k not in self._results:
                if self._abandoned:
                    raise Abandoned("the run stopped")
                self._cv.wait()
            out = self._results.pop(k)
        if isinstance(out, BaseException):
            raise out
        return out

    def _settled(self) -> bool:
        return bool(self._live) and self._blocked == self._live

    def next_event(self) -> tuple[list, Calls, bool]:
        """Wait until some item has finished or no item is running (every running item waits). Return the
        finished items, the new calls (in item order; taken only when no item runs) and whether no item
        runs; when every item has finished, all three are empty."""
        with self._cv:
            while not self._finished and self._live and not self._settled():
                self._cv.wait()
            finished, self._finished = self._finished, []
            settled = self._settled()
            calls = sorted(self._calls.items()) if settled else []
            if settled:
                self._calls = {}
            return finished, calls, settled

    def deliver(self, results: dict) -> None:
        with self._cv:
            self._results.update(results)
            self._blocked -= results.keys()  # running again from now: the next round waits for them
            self._cv.notify_all()

    def abandon(self) -> None:
        with self._cv:
            self._abandoned = True
            self._cv.notify_all()

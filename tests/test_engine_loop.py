"""The vLLM backend's engine loop on a scripted engine (no vLLM needed): who steps the engine, and how
failures and Ctrl-C reach the threads that wait."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from ttc.backends.vllm import EngineLoop


class ScriptedEngine:
    """``add_request(rid, prompt, steps)``: the request finishes after ``steps`` engine steps. Records the
    thread of every step."""

    def __init__(self, fail_at: int | None = None, interrupt_at: int | None = None):
        self.left: dict[str, int] = {}
        self.threads: list[str] = []
        self.fail_at, self.interrupt_at = fail_at, interrupt_at
        self.active = self.overlaps = 0

    def add_request(self, rid, prompt, steps):
        self.left[rid] = steps

    def step(self):
        self.active += 1
        self.overlaps += self.active > 1
        try:
            return self._step()
        finally:
            self.active -= 1

    def _step(self):
        self.threads.append(threading.current_thread().name)
        if len(self.threads) == self.fail_at:
            raise RuntimeError("engine core died")
        if len(self.threads) == self.interrupt_at:
            raise KeyboardInterrupt
        out = []
        for rid in list(self.left):
            self.left[rid] -= 1
            out.append(SimpleNamespace(request_id=rid, finished=self.left[rid] == 0, prompt=rid))
            if self.left[rid] == 0:
                del self.left[rid]
        time.sleep(0.002)
        return out

    def has_unfinished_requests(self):
        return bool(self.left)


def loop_with(engine) -> EngineLoop:
    return EngineLoop(SimpleNamespace(llm_engine=engine))


def submit(loop, steps):
    return loop.submit_many([({"prompt_token_ids": [1]}, steps)])[0]


def result(loop, fut):
    """How a caller waits for its request: stepping the engine itself unless another thread does."""
    loop.drive(fut.done)
    return fut.result()


def ask(loop, steps):
    return result(loop, submit(loop, steps)).finished


def test_a_lone_caller_steps_its_own_request():
    engine = ScriptedEngine()
    loop = loop_with(engine)
    assert ask(loop, 3)
    assert engine.threads == [threading.current_thread().name] * 3


def test_concurrent_callers_without_a_host_take_turns_stepping():
    engine = ScriptedEngine()
    loop = loop_with(engine)
    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(lambda k: ask(loop, 2 + k % 5), range(32)))
    assert not engine.left and not loop.waiting


def test_one_thread_at_a_time_steps_the_engine_for_all_that_wait():
    """The main thread drives while eight threads wait for their requests: whoever steps, steps alone, and
    every waiter gets its result."""
    engine = ScriptedEngine()
    loop = loop_with(engine)
    with ThreadPoolExecutor(8, thread_name_prefix="problem") as pool:
        futures = [submit(loop, 5 + k % 4) for k in range(8)]
        waiters = [pool.submit(result, loop, f) for f in futures]
        loop.drive(lambda: all(f.done() for f in futures))
        assert all(w.result(timeout=30).finished for w in waiters)
    assert len(engine.threads) == 8 and engine.overlaps == 0


def test_an_engine_failure_fails_every_waiting_request_and_later_ones():
    engine = ScriptedEngine(fail_at=3)
    loop = loop_with(engine)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(ask, loop, 10) for _ in range(4)]
        for f in futures:
            with pytest.raises(RuntimeError, match="the vLLM engine stopped: engine core died"):
                f.result(timeout=30)
    with pytest.raises(RuntimeError, match="engine core died"):
        ask(loop, 1)


def test_ctrl_c_in_the_driving_thread_releases_the_waiting_threads():
    engine = ScriptedEngine(interrupt_at=4)
    loop = loop_with(engine)
    futures = [submit(loop, 50) for _ in range(4)]
    with pytest.raises(KeyboardInterrupt):
        loop.drive(lambda: all(f.done() for f in futures))
    assert len(engine.threads) == 4
    for f in futures:  # whoever waits for them gets an error instead of waiting forever
        with pytest.raises(RuntimeError, match="backend closed"):
            f.result(timeout=0)
    with pytest.raises(RuntimeError, match="backend closed"):  # and so does a later request
        ask(loop, 1)

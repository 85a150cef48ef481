"""Lock-step rounds (ttc.sweep.rounds): several problems' calls merged into one backend call per round, in a
deterministic composition, with failures and interrupts kept to the problems they belong to."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import scripted

from ttc import load_run
from ttc.backends.base import GenParams, Request, generate_each
from ttc.backends.fake import FakeBackend
from ttc.store.records import Completion
from ttc.sweep.config import RunConfig, SweepConfig
from ttc.sweep.rounds import Abandoned, Rounds, Submit
from ttc.sweep.runner import run_sweep


def req(tag: str, n: int = 1) -> Request:
    return Request(tag, n=n, params=GenParams())


class Recorder:
    """A backend batch function that records each call's request tags and answers ``tag@call``."""

    def __init__(self, fail_on: int | None = None, interrupt_on: int | None = None):
        self.calls: list[list[str]] = []
        self.fail_on, self.interrupt_on = fail_on, interrupt_on
        self.threads: set[str] = set()

    def __call__(self, requests):
        self.threads.add(threading.current_thread().name)
        self.calls.append([r.prompt for r in requests])
        if len(self.calls) == self.fail_on:
            raise RuntimeError("engine died")
        if len(self.calls) == self.interrupt_on:
            raise KeyboardInterrupt
        return [[Completion(f"{r.prompt}@{len(self.calls)}", 1, 1, "stop")] * r.n for r in requests]


def strategy(steps: int, jitter: bool = True):
    """A problem that makes ``steps`` calls of one request each, sleeping a random while between them, so
    threads arrive in a different order on every run."""

    def fn(item, submit):
        texts = []
        for s in range(steps):
            if jitter:
                time.sleep(random.random() * 0.01)
            texts.append(submit([req(f"{item}.{s}")])[0][0].text)
        return texts

    return fn


def test_each_round_merges_every_waiting_problem_in_item_order():
    rec = Recorder()
    rounds = Rounds(rec)
    items = ["a", "b", "c"]
    steps = {"a": 1, "b": 3, "c": 2}
    out = dict(rounds.run(items, lambda item, submit: strategy(steps[item])(item, submit)))
    # round 1: all three; round 2: b and c (a has finished); round 3: b alone
    assert rec.calls == [["a.0", "b.0", "c.0"], ["b.1", "c.1"], ["b.2"]]
    assert out == {"a": ["a.0@1"], "b": ["b.0@1", "b.1@2", "b.2@3"], "c": ["c.0@1", "c.1@2"]}
    assert rounds.rounds == rounds.calls == 3
    assert rec.threads == {threading.current_thread().name}  # the backend runs in the caller's thread only


def test_rounds_do_not_depend_on_thread_timing():
    runs = []
    for _ in range(5):
        rec = Recorder()
        steps = {"a": 2, "b": 4, "c": 1, "d": 3}
        dict(Rounds(rec).run(list(steps), lambda item, submit: strategy(steps[item])(item, submit)))
        runs.append(rec.calls)
    assert all(r == runs[0] for r in runs)


def test_a_round_is_cut_into_chunks_of_at_most_max_rows():
    rec = Recorder()

    def fn(item, submit):
        n = {"a": 3, "b": 2, "c": 5}[item]
        return [len(c) for c in submit([req(item, n)])]

    out = dict(Rounds(rec, max_rows=4).run(["a", "b", "c"], fn))
    assert rec.calls == [["a"], ["b"], ["c"]]  # 3 + 2 > 4, and 5 alone exceeds the cap: its own chunk
    assert out == {"a": [3], "b": [2], "c": [5]}
    with pytest.raises(ValueError):
        Rounds(rec, max_rows=0)


def test_a_failing_problem_does_not_stop_the_others_and_is_raised_after():
    rec = Recorder()

    def fn(item, submit):
        if item == "b":
            submit([req("b.0")])
            raise ValueError("grader bug")
        return strategy(3, jitter=False)(item, submit)

    got = []
    with pytest.raises(ValueError, match="grader bug"):
        for item, texts in Rounds(rec).run(["a", "b", "c"], fn):
            got.append(item)
    assert sorted(got) == ["a", "c"]
    assert rec.calls[0] == ["a.0", "b.0", "c.0"] and rec.calls[1:] == [["a.1", "c.1"], ["a.2", "c.2"]]


def test_a_backend_failure_reaches_every_caller_of_its_round():
    rec = Recorder(fail_on=2)
    errors = []

    def fn(item, submit):
        try:
            return strategy(3, jitter=False)(item, submit)
        except RuntimeError as e:
            errors.append((item, str(e)))
            raise

    with pytest.raises(RuntimeError, match="engine died"):
        list(Rounds(rec).run(["a", "b"], fn))
    assert sorted(errors) == [("a", "engine died"), ("b", "engine died")]


def test_an_interrupt_in_a_round_abandons_the_problems_threads():
    rec = Recorder(interrupt_on=2)
    ended = []

    def fn(item, submit):
        try:
            return strategy(5, jitter=False)(item, submit)
        except Abandoned:
            ended.append(item)
            raise

    with pytest.raises(KeyboardInterrupt):
        list(Rounds(rec).run(["a", "b", "c"], fn))
    deadline = time.time() + 5
    while len(ended) < 3 and time.time() < deadline:
        time.sleep(0.01)
    assert sorted(ended) == ["a", "b", "c"]
    assert not [t for t in threading.enumerate() if t.name.startswith("ttc-problem-")]


class StepEngine:
    """A scripted continuous-batching engine (``Engine``): a request finishes after ``max_tokens`` steps,
    and its completion says at which step it joined and how many requests that step ran, so outputs depend
    on what shares the engine's batch (as on a GPU). Records each step's requests and thread."""

    def __init__(self, fail_at: int | None = None, interrupt_at: int | None = None):
        self.queued, self.running = [], []  # [call, request index, steps left]
        self.steps: list[list[str]] = []
        self.threads: set[str] = set()
        self.fail_at, self.interrupt_at = fail_at, interrupt_at

    def start(self, requests):
        if any(not r.prompt for r in requests):
            raise ValueError("empty prompt")
        call = StepCall(requests)
        self.queued.append(call)
        return call

    def start_logprobs(self, prefix, continuations):
        """Scores as a one-step request each; the result says at which step and beside how many requests."""
        call = StepCall([step_req(f"{prefix}|{c}", 1) for c in continuations])
        call.scoring = True
        self.queued.append(call)
        return call

    def drive(self, done):
        while not done():
            self.threads.add(threading.current_thread().name)
            for call in self.queued:
                self.running += [[call, i, r.params.max_tokens] for i, r in enumerate(call.requests)]
            self.queued = []
            self.steps.append([c.requests[i].prompt for c, i, _ in self.running])
            if len(self.steps) == self.interrupt_at:
                raise KeyboardInterrupt
            if len(self.steps) == self.fail_at:
                for call in {id(c): c for c, _, _ in self.running}.values():
                    call.error = RuntimeError("engine died")
                self.running = []
                continue
            for entry in self.running:
                call, i, left = entry
                call.joined.setdefault(i, (len(self.steps), len(self.running)))
                entry[2] = left - 1
                if entry[2] == 0:
                    call.left -= 1
            self.running = [e for e in self.running if e[2] > 0]


class StepCall:
    def __init__(self, requests):
        self.requests, self.left, self.joined, self.error = requests, len(requests), {}, None
        self.scoring = False

    def done(self):
        return self.left == 0 or self.error is not None

    def result(self):
        if self.error is not None:
            raise self.error
        if self.scoring:
            return 1, [list(self.joined[i]) for i in range(len(self.requests))]
        return [[Completion(f"{r.prompt}@{self.joined[i][0]}/{self.joined[i][1]}", 1, r.params.max_tokens,
                            "length")] * r.n for i, r in enumerate(self.requests)]


def step_req(tag: str, steps: int) -> Request:
    return Request(tag, params=GenParams(max_tokens=steps))


def stepping(plan: dict, jitter: bool = True):
    """Each item makes the calls ``plan[item]`` lists (each a list of requests' step counts), sleeping a random
    while before each, so threads arrive in a different order on every run."""

    def fn(item, submit):
        texts = []
        for c, call in enumerate(plan[item]):
            if jitter:
                time.sleep(random.random() * 0.01)
            comps = submit([step_req(f"{item}.{c}.{j}", steps) for j, steps in enumerate(call)])
            texts += [cs[0].text for cs in comps]
        return texts

    return fn


def test_on_an_engine_a_problems_next_call_joins_the_running_batch():
    """Continuous batching: a's three one-step calls run while b's ten-step request decodes, so the whole
    group takes ten engine steps (rounds that waited for b would take twelve)."""
    engine = StepEngine()
    rounds = Rounds(engine=engine)
    out = dict(rounds.run(["a", "b"], stepping({"a": [[1], [1], [1]], "b": [[10]]}, jitter=False)))
    assert len(engine.steps) == 10
    assert engine.steps[:4] == [["a.0.0", "b.0.0"], ["b.0.0", "a.1.0"], ["b.0.0", "a.2.0"], ["b.0.0"]]
    assert out == {"a": ["a.0.0@1/2", "a.1.0@2/2", "a.2.0@3/2"], "b": ["b.0.0@1/2"]}
    assert engine.threads == {threading.current_thread().name}  # the engine is stepped by the caller only


def test_on_an_engine_every_step_is_the_same_whatever_the_thread_timing():
    plan = {"a": [[2, 3], [1]], "b": [[4], [2, 2], [1]], "c": [[1]], "d": [[3], [3]], "e": [[2]], "f": [[5]]}
    runs = []
    for _ in range(5):
        engine = StepEngine()
        out = dict(Rounds(engine=engine).run(list(plan), stepping(plan), width=3))
        runs.append((engine.steps, out))
    assert all(r == runs[0] for r in runs)
    steps, out = runs[0]
    # three problems in flight: d starts when c (one step) has finished, and joins at step 2
    assert steps[0] == ["a.0.0", "a.0.1", "b.0.0", "c.0.0"] and out["d"][0] == "d.0.0@2/4"
    assert max(len({t.split(".")[0] for t in step}) for step in steps) == 3


def test_on_an_engine_failures_reach_their_problems_only():
    engine = StepEngine(fail_at=3)
    errors = []

    def fn(item, submit):
        try:
            return stepping({"a": [[5]], "b": [[1], [1]], "c": [[1], [4]], "empty": [[1]]}, jitter=False)(
                item, submit) if item != "empty" else submit([step_req("", 1)])
        except (RuntimeError, ValueError) as e:
            errors.append((item, str(e)))
            raise

    got = []
    with pytest.raises(ValueError, match="empty prompt"):  # the first failure, raised after all finished
        for item, _ in Rounds(engine=engine).run(["empty", "a", "b", "c"], fn):
            got.append(item)
    # step 3 fails a (still decoding) and c's second call; b finished at step 2
    assert got == ["b"]
    assert sorted(errors) == [("a", "engine died"), ("c", "engine died"), ("empty", "empty prompt")]


def test_on_an_engine_log_probability_calls_join_the_batch_like_generate_calls():
    """A self-scoring verifier's continuation_logprobs goes through the rounds too: it joins the engine
    at a point where no problem runs, so it shares a deterministic step with the others' requests."""
    def fn(item, submit):
        time.sleep(random.random() * 0.01)
        (comps,) = submit([step_req(f"{item}.gen", 2 if item == "a" else 4)])
        time.sleep(random.random() * 0.01)
        return submit.logprobs(comps[0].text, ["Yes", "No"])

    runs = [dict(Rounds(engine=StepEngine()).run(["a", "b"], fn)) for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
    # a's scoring joins at step 3, beside b's generation and its own two continuations; b's at step 5, alone
    assert runs[0] == {"a": (1, [[3, 3], [3, 3]]), "b": (1, [[5, 2], [5, 2]])}
    assert Submit(None, 0, engine=False).logprobs is None  # a lock-step backend scores in the problem's thread


def test_an_interrupt_while_stepping_the_engine_abandons_the_problems_threads():
    engine = StepEngine(interrupt_at=2)
    ended = []

    def fn(item, submit):
        try:
            return stepping({k: [[3]] * 3 for k in "abc"}, jitter=False)(item, submit)
        except Abandoned:
            ended.append(item)
            raise

    with pytest.raises(KeyboardInterrupt):
        list(Rounds(engine=engine).run(["a", "b", "c"], fn))
    deadline = time.time() + 5
    while len(ended) < 3 and time.time() < deadline:
        time.sleep(0.01)
    assert sorted(ended) == ["a", "b", "c"]
    with pytest.raises(ValueError):
        Rounds(Recorder(), engine=engine)


class BatchShapeFake(FakeBackend):
    """A lock-step fake whose completions depend on what shares their batch, as bfloat16 decoding does:
    each reply carries the number of rows in its backend call."""

    lockstep = True

    def __init__(self, concurrency: int, fail_after: int | None = None):
        super().__init__(scripted(), fail_after=fail_after)
        self.concurrency = concurrency
        self.batches: list[int] = []

    def generate_requests(self, requests):
        rows = sum(r.n for r in requests)
        self.batches.append(len(requests))
        out = generate_each(self, requests)
        return [[Completion(f"{c.text} rows={rows}", c.prompt_tokens, c.generated_tokens, c.finish_reason)
                 for c in comps] for comps in out]


def sweep_config(out):
    return RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=("smollm2-135m",), budgets=(1, 2, 4),
                                       limit=7), out=str(out))


def test_a_sweep_runs_problems_in_lockstep_groups(tmp_path):
    backends = []

    def factory(model, cfg):
        backends.append(BatchShapeFake(concurrency=3))
        return backends[-1]

    store = run_sweep(sweep_config(tmp_path), backend_factory=factory, progress=False)
    df = load_run(store.root)
    assert sorted(df["problem_id"].unique()) == sorted(set(df["problem_id"]))
    assert df["problem_id"].nunique() == 7 and len(df) == 7 * 4
    # groups of 3, 3 and 1 problems: one backend call per group (each problem asks once)
    assert backends[0].batches == [3, 3, 1]


def test_a_resumed_lockstep_sweep_gives_the_uninterrupted_records(tmp_path, monkeypatch):
    """Outputs that depend on the batch's shape: a run that fails on one problem of the second group (its
    other two are stored), then a resume, still gives exactly the records of an uninterrupted run, because
    the resumed run forms the same groups: it runs the whole second group again and stores only the
    missing problem."""
    from tasks.rg import ReasoningGymTask

    ref = run_sweep(sweep_config(tmp_path / "a"), backend_factory=lambda m, c: BatchShapeFake(3), progress=False)
    ids = list(dict.fromkeys(load_run(ref.root)["problem_id"]))
    grade = ReasoningGymTask.grade

    def failing(self, answer, problem):
        if problem.id == ids[4]:
            raise RuntimeError("grader crashed")
        return grade(self, answer, problem)

    monkeypatch.setattr(ReasoningGymTask, "grade", failing)
    with pytest.raises(RuntimeError, match="grader crashed"):
        run_sweep(sweep_config(tmp_path / "b"), backend_factory=lambda m, c: BatchShapeFake(3), progress=False)
    partial = load_run(tmp_path / "b" / ref.root.name)
    assert set(partial["problem_id"]) == set(ids[:4] + ids[5:6])  # the failed group's others were kept
    monkeypatch.setattr(ReasoningGymTask, "grade", grade)
    backends = []

    def factory(model, cfg):
        backends.append(BatchShapeFake(3))
        return backends[-1]

    resumed = run_sweep(sweep_config(tmp_path / "b"), backend_factory=factory, progress=False)
    assert backends[0].batches == [3, 1]  # the second group again, whole; then the last
    a, b = load_run(ref.root, texts=True), load_run(resumed.root, texts=True)
    assert a.equals(b)
    assert set(a["text"].str.extract(r"rows=(\d+)")[0].astype(int)) == {3 * 4, 1 * 4}


def test_ctrl_c_in_a_lockstep_sweep_exits_130_and_resumes_to_the_uninterrupted_records(tmp_path):
    """A real process with problems in lock-step groups (its fake backend decodes 0.2 s a request): Ctrl-C
    once a problem is stored ends it at once with exit 130 and no traceback; the resume (which runs a partly
    stored group again whole) then gives the records of an uninterrupted run."""
    here = Path(__file__).parent
    script = [sys.executable, str(here / "sweep_script.py")]
    env = {**os.environ, "PYTHONPATH": str(here.parent)}
    subprocess.run(script + [str(tmp_path / "ref"), "0", "7", "lockstep"], env=env, check=True, timeout=120)
    out = tmp_path / "cut"
    proc = subprocess.Popen(script + [str(out), "0.2", "7", "lockstep"], env=env, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while not list(out.glob("*/records/*/*.parquet")) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    sent = time.time()
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert time.time() - sent < 5  # the round in decoding was cut, not waited for
    (run,) = out.iterdir()
    assert 1 <= load_run(run)["problem_id"].nunique() < 7  # a group's finished problems may be partly stored
    subprocess.run(script + [str(out), "0", "7", "lockstep"], env=env, check=True, timeout=120)
    (ref,) = (tmp_path / "ref").iterdir()
    assert load_run(ref, texts=True).equals(load_run(run, texts=True))

"""The sweep's progress: every stored problem counted as it is stored, an ETA within 2x of the truth halfway
through a sweep of lock-step groups (a scripted backend with known per-step costs on a fake clock), no
cursor escapes where the stream is not a terminal, and one line for the resume of a finished run."""

import io
import re
import time

import pytest
from conftest import scripted
from stepfake import StepFake
from tqdm import tqdm

import ttc.sweep.progress as progress
from ttc.backends.base import generate_each
from ttc.backends.fake import FakeBackend
from ttc.sweep.config import RunConfig, SamplingConfig, StrategyConfig, SweepConfig
from ttc.sweep.progress import Eta, SweepProgress, lockstep_units
from ttc.sweep.runner import run_sweep

LINE = re.compile(r"^problems: (\d+)/(\d+) stored \(\d+%\) \[([\d:]+)<([\d:?]+), ")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TimedLockstep(FakeBackend):
    """A backend that decodes one batch at a time, as the transformers backend does: each batch costs
    ``steps x (step + row x rows)`` seconds of a fake clock, ``steps`` being its longest completion's tokens
    plus one for the prefill and ``rows`` its samples, so a group of 4 problems takes about half as long as
    one of 8."""

    lockstep = True

    def __init__(self, script, clock: Clock, width: int, step: float = 0.2, row: float = 0.05):
        super().__init__(script)
        self.clock, self.concurrency, self.step, self.row = clock, width, step, row

    def generate_requests(self, requests):
        out = generate_each(self, requests)
        rows = sum(len(comps) for comps in out)
        steps = 1 + max(c.generated_tokens for comps in out for c in comps)
        self.clock.now += steps * (self.step + self.row * rows)
        return out


class TimedStepFake(StepFake):
    """``StepFake`` (stop strings, continuations of a turn) as a lock-step backend priced like ``TimedLockstep``."""

    lockstep, engine = True, None

    def __init__(self, solution, clock: Clock, width: int, step: float = 0.2, row: float = 0.05):
        super().__init__(solution, answer="3")
        self.clock, self.concurrency, self.step, self.row = clock, width, step, row

    def close(self):
        pass

    def generate_requests(self, requests):
        out = super().generate_requests(requests)
        rows = sum(len(comps) for comps in out)
        steps = 1 + max(c.generated_tokens for comps in out for c in comps)
        self.clock.now += steps * (self.step + self.row * rows)
        return out


def varied(prompt, rng):
    """Completions of 5 to 40 words."""
    return " ".join(["w"] * rng.randint(5, 40)) + f" \\boxed{{{rng.randint(0, 3)}}}"


def seconds(text: str) -> int:
    total = 0
    for part in text.split(":"):
        total = total * 60 + int(part)
    return total


def lines_of(err: str) -> list[tuple[int, int, int, int | None]]:
    """(stored, planned, elapsed s, ETA s or None) of every progress line."""
    out = []
    for line in err.splitlines():
        m = LINE.match(line)
        if m:
            out.append((int(m[1]), int(m[2]), seconds(m[3]), None if m[4] == "?" else seconds(m[4])))
    return out


@pytest.fixture
def fake_clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress, "clock", clock)
    monkeypatch.setattr(progress, "LINE_EVERY", 0.0)  # a line for every stored problem
    monkeypatch.setattr(progress, "HEARTBEAT", 3600.0)  # and none from the real clock's heartbeat
    return clock


def config(out, limit=20, sampler="sample", **strategy):
    return RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=("smollm2-135m",), samplers=(sampler,),
                                       budgets=(1, 2, 4, 8, 16), limit=limit),
                     sampling=SamplingConfig(max_tokens=64), strategy=StrategyConfig(**strategy), out=str(out))


def test_every_stored_problem_is_counted_and_the_eta_holds_halfway(tmp_path, fake_clock, capsys):
    """20 problems in lock-step groups of 8, 8 and 4: each group's problems are stored in a burst as it ends."""
    run_sweep(config(tmp_path), backend_factory=lambda m, c: TimedLockstep(varied, fake_clock, width=8))
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err  # plain lines: the stream is not a terminal
    lines = lines_of(err)
    assert [n for n, *_ in lines] == list(range(21))  # the opening line, then one per stored problem
    end = fake_clock.now
    assert lines[-1][2] == int(end)
    # no ETA before a group has finished; from then on one, and halfway it is within 2x of the time left
    assert all(eta is None for n, _, _, eta in lines if 0 < n < 8)
    n, _, at, eta = next(line for line in lines if line[0] >= 10)
    truth = end - at
    assert truth > 60 and truth / 2 <= eta <= 2 * truth, (eta, truth, lines)
    # every line once the first group has finished, up to the last group
    for n, _, at, eta in lines:
        if 8 <= n < 16:
            assert (end - at) / 2 <= eta <= 2 * (end - at), (n, eta, end - at)


def test_the_eta_holds_halfway_when_problems_finish_at_different_rounds(tmp_path, fake_clock, capsys):
    """Budget forcing: chains of one group stop thinking at different rounds, so a group's problems are stored
    over several rounds, not in one burst."""
    def thinker(rng):
        return ["hmm"] * rng.randint(4, 60) + ["</think>", "\\boxed{3}"]

    run_sweep(config(tmp_path, limit=12, sampler="budget_forcing", think_budgets=(16, 32, 48),
                     think_end=" </think>", chains=4),
              backend_factory=lambda m, c: TimedStepFake(thinker, fake_clock, width=4))
    lines = lines_of(capsys.readouterr().err)
    assert [n for n, *_ in lines] == list(range(13))
    end = fake_clock.now
    n, _, at, eta = next(line for line in lines if line[0] >= 6)
    assert (end - at) / 2 <= eta <= 2 * (end - at), (eta, end - at, lines)


def test_eta_of_groups():
    """Groups of 8, 8 and 4 problems, 100 s per group of 8: a group's problems are stored as it ends."""
    eta = Eta(20)
    eta.plan(lockstep_units([True] * 20, 8), now=0.0)
    assert lockstep_units([True] * 20, 8) == [(8, 8), (8, 8), (4, 4)]
    for _ in range(7):
        eta.stored(100.0)
    assert eta.remaining(100.0) is None  # no group has finished yet
    eta.stored(100.0)
    assert eta.remaining(100.0) == pytest.approx(150.0)  # 12.5 s per problem: 8 + 4 problems left
    assert eta.remaining(150.0) == pytest.approx(100.0)  # half of the second group has run
    eta.stored(200.0)
    # the second group's first problem is stored when it has run its expected time: at least a tenth of it is
    # left, then the last group's 4 problems (the rest of the group comes at once: the truth is 50 s)
    assert eta.remaining(200.0) == pytest.approx(60.0)
    assert eta.remaining(260.0) == pytest.approx(60.0)


def test_a_resumed_group_runs_its_stored_problems_again():
    """A lock-step group with stored problems generates them again (the records are dropped): its work counts
    them, the bar does not; groups with nothing to store are skipped."""
    pending = [False] * 8 + [False, False, True, True, True, True, True, True] + [True] * 4
    assert lockstep_units(pending, 8) == [(8, 6), (4, 4)]
    eta = Eta(10)
    eta.plan(lockstep_units(pending, 8), now=0.0)
    for _ in range(6):
        eta.stored(80.0)
    assert eta.per_problem() == pytest.approx(10.0) and eta.remaining(80.0) == pytest.approx(40.0)


def test_problems_of_models_not_loaded_yet_count_at_the_measured_cost():
    eta = Eta(30)  # 10 problems of this model, one by one, then 20 of another
    eta.plan([(1, 1)] * 10, now=0.0)
    for t in range(1, 11):
        eta.stored(5.0 * t)
    assert eta.remaining(50.0) == pytest.approx(100.0)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_the_bar_and_loading_bars_never_nest_under_it():
    """The bar opens after the model has loaded and closes while another loads: a loading bar drawn meanwhile
    (transformers' "Loading weights") is never nested, so no cursor-up escape is written."""
    out = Terminal()
    bar = SweepProgress(4, enabled=True, stream=out)
    for model in range(2):
        bar.loading()
        for _ in tqdm(range(3), desc="Loading weights", file=out):
            pass
        bar.ready([(1, 1)] * 2)
        bar.stored(10)
        bar.stored(10)
    bar.close()
    text = out.getvalue()
    assert "\x1b[A" not in text
    assert "4/4 stored" in text and "2/4 stored" in text


def test_progress_off_writes_nothing(capsys):
    bar = SweepProgress(2, enabled=False)
    bar.ready([(1, 1)] * 2)
    bar.stored(1)
    bar.stored(1)
    bar.close()
    assert capsys.readouterr().err == ""


def test_resume_of_a_finished_run_says_so_in_one_line(tmp_path, capsys):
    def fake(model, cfg):
        return FakeBackend(scripted())

    cfg = config(tmp_path, limit=5)
    store = run_sweep(cfg, backend_factory=fake, progress=False)
    capsys.readouterr()
    summary = (store.root / "summary.csv").stat().st_mtime_ns

    def refuse(model, cfg):
        raise AssertionError("model loaded for a finished run")

    run_sweep(cfg, backend_factory=refuse)
    err = capsys.readouterr().err
    assert err == (f"run {cfg.run_id} is complete (5/5 problems stored); its summary is up to date "
                   f"(ttc summary {store.root} recomputes it)\n")
    assert (store.root / "summary.csv").stat().st_mtime_ns == summary  # nothing rewritten
    # a run stopped before its finish (here: its summary removed) gets it on the resume
    (store.root / "summary.csv").unlink()
    run_sweep(cfg, backend_factory=refuse)
    assert capsys.readouterr().err == f"run {cfg.run_id} is complete (5/5 problems stored); summary rewritten\n"
    assert (store.root / "summary.csv").is_file()


def test_a_run_stopped_before_its_finish_is_finished_on_resume(tmp_path, capsys):
    """An output older than the newest record file (problems stored after the last finish) makes the resume
    finish the run again."""
    import os

    cfg = config(tmp_path, limit=5)
    store = run_sweep(cfg, backend_factory=lambda m, c: FakeBackend(scripted()), progress=False)
    page = store.root / "report.html"
    old = page.stat().st_mtime - 3600
    os.utime(page, (old, old))
    run_sweep(cfg, backend_factory=lambda m, c: FakeBackend(scripted()), progress=False)
    assert capsys.readouterr().err.endswith("; summary rewritten\n")
    assert page.stat().st_mtime > old + 1800


def test_plain_lines_keep_coming_while_nothing_is_stored(monkeypatch):
    """A log shows the sweep is alive during a long group: a line every HEARTBEAT seconds without a store."""
    monkeypatch.setattr(progress, "HEARTBEAT", 0.2)
    out = io.StringIO()
    bar = SweepProgress(3, enabled=True, stream=out)
    bar.ready([(3, 3)])
    time.sleep(1.5)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3 and all(line.startswith("problems: 0/3 stored (0%) [") for line in lines)


def test_a_burst_held_back_by_the_line_spacing_is_shown_once_it_has_passed(monkeypatch):
    monkeypatch.setattr(progress, "LINE_EVERY", 0.3)
    monkeypatch.setattr(progress, "HEARTBEAT", 100.0)
    out = io.StringIO()
    bar = SweepProgress(5, enabled=True, stream=out)
    bar.ready([(3, 3), (2, 2)])
    for _ in range(3):
        bar.stored(10)
    time.sleep(1.5)
    shown = out.getvalue()
    bar.close()
    assert [line.split(" stored")[0] for line in shown.splitlines()] == ["problems: 0/5", "problems: 3/5"]

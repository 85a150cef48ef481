"""The suite's guard against hanging tests (pyproject.toml's pytest settings and tests/conftest.py), run on small
test files in a pytest of their own, with the timeouts shortened."""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent

TESTS = '''
import signal
import time

import pytest


def test_sleeps():
    time.sleep(60)


@pytest.mark.timeout(3)
def test_marked_longer_with_its_signal_held_back():
    # the timeout's signal waits until the test lets it in: past the default faulthandler deadline (2 s),
    # within its own timeout's grace
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(4)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
    time.sleep(1)


def test_stuck_where_no_signal_reaches():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(60)


def test_after():
    pass
'''


def pytest_run(tmp_path, *args):
    (tmp_path / "test_hangs.py").write_text(TESTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir",
                           str(tmp_path), "-p", "no:cacheprovider", "-p", "conftest", "-o", "timeout=1",
                           "-o", "faulthandler_timeout=2", str(tmp_path / "test_hangs.py"), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return proc, time.monotonic() - start


def test_a_sleeping_test_fails_at_its_timeout_and_the_run_goes_on(tmp_path):
    proc, took = pytest_run(tmp_path, "-k", "sleeps or marked or after")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "Timeout (>1.0s) from pytest-timeout" in proc.stdout and "Timeout (>3.0s)" in proc.stdout
    assert "2 failed, 1 passed" in proc.stdout  # the marked test outlived the default deadline
    assert took < 60


def test_a_test_no_signal_can_stop_ends_the_run_with_every_stack(tmp_path):
    proc, took = pytest_run(tmp_path, "-k", "stuck or after")
    assert proc.returncode == 1
    assert "Timeout (0:00:02)!" in proc.stderr and "test_stuck_where_no_signal_reaches" in proc.stderr
    assert "passed" not in proc.stdout  # the run ended there: test_after never ran
    assert took < 60

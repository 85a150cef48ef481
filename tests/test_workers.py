"""Work split over child interpreters (``ttc.metrics.workers``): results in order, errors raised here, and a script
without a ``__main__`` guard runs once."""

import subprocess
import sys
import textwrap

import pytest

from ttc.metrics.workers import map_parts


def square_all(xs):
    print("noise on stdout")  # a child's prints must not corrupt its result
    return [x * x for x in xs]


def fail_on_three(xs):
    if 3 in xs:
        raise ValueError("three is not allowed")
    return xs


def test_parts_come_back_in_order():
    parts = [[0, 1], [2, 3, 4], [], [5]]
    assert map_parts(square_all, parts) == [[0, 1], [4, 9, 16], [], [25]]


def test_an_error_in_a_child_is_raised_here_with_its_traceback():
    with pytest.raises(RuntimeError, match="three is not allowed"):
        map_parts(fail_on_three, [[1], [2, 3]])


def test_a_script_without_a_main_guard_runs_its_top_level_once(tmp_path):
    """multiprocessing's spawn would run this script again in every worker and fail there; the vote's
    workers import only the module they need."""
    log = tmp_path / "ran.txt"
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(f"""
        import numpy as np
        import pandas as pd
        from ttc.metrics.tables import PARALLEL_VOTES, Problems, vote_values

        with open({str(log)!r}, "a") as f:
            f.write("ran\\n")
        rng = np.random.default_rng(0)
        n_problems, n = PARALLEL_VOTES // 4 + 1, 16  # 4 budgets each: over the threshold
        answers = rng.integers(0, 4, size=(n_problems, n)).astype(str)
        df = pd.DataFrame(dict(problem_id=np.repeat([f"p{{i:04d}}" for i in range(n_problems)], n),
                               sample_index=np.tile(np.arange(n), n_problems), answer=answers.ravel(),
                               correct=answers.ravel() == "1"))
        out = vote_values(Problems.of(df), (2, 4, 8, 16))
        print(float(np.nanmean(out[4])))
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 0.0 < float(done.stdout.strip().splitlines()[-1]) < 1.0
    assert log.read_text() == "ran\n"

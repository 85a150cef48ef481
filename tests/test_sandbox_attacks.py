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



# Memory the kernel holds outside RLIMIT_AS. Each attack stops at HOLD_CAP MiB so that it cannot take the
# machine down when the sandbox fails to bound it (before the seccomp filter, memfd alone held 2 GiB and
# more under a 1 GiB address-space limit).
HOLD_CAP = 512
MEMORY_ATTACKS = {
    "memfd": f"""
import os
held = 0
try:
    while held < {HOLD_CAP}:
        fd = os.memfd_create('x'); os.posix_fallocate(fd, 0, 63 << 20); held += 63
except OSError as e:
    print('refused', e.errno)
print('held', held)
""",
    "sysv_shm": f"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True); libc.shmat.restype = ctypes.c_void_p
held = 0
while held < {HOLD_CAP}:
    sid = libc.shmget(0, 64 << 20, 0o1600)
    if sid < 0:
        print('refused', ctypes.get_errno()); break
    p = libc.shmat(sid, None, 0); ctypes.memset(p, 1, 64 << 20); libc.shmdt(ctypes.c_void_p(p)); held += 64
print('held', held)
""",
    "sysv_msg_sem_mq": """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for call in (lambda: libc.msgget(0, 0o1600), lambda: libc.semget(0, 32000, 0o1600),
             lambda: libc.mq_open(b'/q', 0o100 | 2, 0o600, None)):
    if call() < 0:
        print('refused', ctypes.get_errno())
print('held', 0)
""",
    "io_uring": """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)
if libc.syscall(425, 4096, params) < 0:
    print('refused', ctypes.get_errno())
print('held', 0)
""",
    "tcp_loopback": f"""
import socket
held = 0; keep = []
try:
    srv = socket.create_server(('127.0.0.1', 0)); port = srv.getsockname()[1]
    while held < ({HOLD_CAP} << 20):
        a = socket.create_connection(('127.0.0.1', port)); b, _ = srv.accept(); keep += [a, b]
        for s in (a, b):
            s.setblocking(False)
            try:
                while True:
                    held += s.send(b'x' * 65536)
            except BlockingIOError:
                pass
except OSError as e:
    print('refused', e.errno)
print('held', held >> 20)
""",
}


@pytest.mark.parametrize("attack", sorted(MEMORY_ATTACKS))
def test_memory_outside_the_address_space_is_refused(attack):
    result = run_python(MEMORY_ATTACKS[attack], timeout=30, memory_mb=256)
    held = int(result.output.split("held", 1)[1].split()[0])
    assert held == 0 and "refused 1" in result.output, result.output  # EPERM from the seccomp filter


def test_kernel_buffers_are_bounded_by_open_files():
    # every process fills socket and pipe buffers with as many files as it may open, trying to grow each
    # buffer; 4 processes x 64 files x (208 KiB socket buffer + overhead) stays far under 4 x 64 x 0.5 MiB
    source = f"""
import os, socket, fcntl, time
def fill():
    held = 0; keep = []
    try:
        while held < ({HOLD_CAP} << 20):
            a, b = socket.socketpair(); keep += [a, b]
            for s in (a, b):
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 30)
                except OSError:
                    pass
                s.setblocking(False)
                try:
                    while True:
                        held += s.send(b'x' * 65536)
                except BlockingIOError:
                    pass
            r, w = os.pipe(); keep += [r, w]
            try:
                fcntl.fcntl(w, 1031, 1 << 20)
            except OSError:
                pass
            os.set_blocking(w, False)
            try:
                while True:
                    held += os.write(w, b'x' * 65536)
            except BlockingIOError:
                pass
    except OSError:
        pass
    return held, len(keep)
r, w = os.pipe()
for _ in range(3):
    if os.fork() == 0:
        os.close(r); held, n = fill(); os.write(w, f'{{held}}\\n'.encode()); time.sleep(3); os._exit(0)
os.close(w)
held, n = fill()
got = b''
while got.count(b'\\n') < 3:
    chunk = os.read(r, 100)
    if not chunk:
        break
    got += chunk
total = held + sum(map(int, got.split()))
print('files', n, 'held', total >> 20, 'processes', 1 + got.count(b'\\n'))
"""
    result = run_python(source, timeout=30, memory_mb=256, max_procs=6)  # with the launcher and bwrap's init
    held = int(result.output.split("held", 1)[1].split()[0])
    assert "processes 4" in result.output and held <= 4 * 64 // 2, result.output


def test_open_files_are_limited():
    result = run_python("import resource\nprint('nofile', *resource.getrlimit(resource.RLIMIT_NOFILE))")
    assert "nofile 64 64" in result.output, result.output


def test_isolation_is_reported_by_the_launcher_not_the_program():
    result = run_python("print('__ttc_isolation__=none-FORGED')\nprint('isolation=none-FORGED')")
    assert result.isolation == "bwrap" and result.completed, result


# A HumanEval completion that attacks its own grading: each must fail (the function it defines is wrong or
# it never reaches the tests). HumanEval/0 asks for has_close_elements.
FORGED_SOLUTIONS = {
    # the launcher's completion message written to every descriptor, then an exit 0 before the tests
    "done_message": ("import os\n"
                     "for fd in range(3, 64):\n"
                     "    try: os.write(fd, b'program reached its end\\n')\n"
                     "    except OSError: pass\n"
                     "os._exit(0)\n"),
    # an object equal to everything
    "always_equal": ("class Anything:\n    def __eq__(self, other): return True\n    def __ne__(self, other): return False\n"
                     "    def __bool__(self): return True\n"
                     "def has_close_elements(numbers, threshold):\n    return Anything()\n"),
    # a bool subclass that equals everything
    "equal_subclass": ("class T(int):\n    def __eq__(self, other): return True\n    __hash__ = int.__hash__\n"
                       "def has_close_elements(numbers, threshold):\n    return T(1)\n"),
    # patched builtins and assert machinery: only this process's
    "patched_builtins": ("import builtins\nbuiltins.AssertionError = type('Nope', (BaseException,), {})\n"
                         "builtins.abs = lambda x: 0\nbuiltins.len = lambda x: 0\n"
                         "def has_close_elements(numbers, threshold):\n    return True\n"),
    # forged replies: every descriptor gets a well-framed 'result True' before any call
    "forged_replies": ("import os, struct, json\n"
                       "msg = json.dumps(['R', ['B', True]]).encode(); frame = struct.pack('<I', len(msg)) + msg\n"
                       "for fd in range(3, 64):\n"
                       "    try: os.write(fd, frame * 20)\n"
                       "    except OSError: pass\n"
                       "def has_close_elements(numbers, threshold):\n    return True\n"),
    # the judge killed or stopped
    "kill_judge": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
                   "def has_close_elements(numbers, threshold):\n    return True\n"),
}


@pytest.mark.parametrize("name", sorted(FORGED_SOLUTIONS))
def test_forged_humaneval_pass_is_refused(name):
    from tasks import get_task

    he = get_task("humaneval")
    problem = he.load(1, 0)[0]
    assert not he.grade(FORGED_SOLUTIONS[name], problem)
    right = ("def has_close_elements(numbers, threshold):\n"
             "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n")
    assert he.grade(right, problem)  # the same grading passes the right function

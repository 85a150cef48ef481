"""Running untrusted Python (model-written code) in a separate, limited process.

``run_python(source, timeout=...)`` writes ``source`` into a fresh temporary directory and runs it with
``python -I`` through a small launcher (``tasks/sandbox_child.py``) that, before the program starts:

* caps resources with ``setrlimit``: address space (``memory_mb``), CPU seconds, size of any file written
  (which also bounds the captured output, since stdout/stderr go to a file), no core dumps;
* moves into a new, empty network namespace (``unshare(CLONE_NEWNET)``, directly as root or inside a
  new user namespace otherwise) so there is no interface but a down loopback; where the kernel refuses
  both, it disables the ``socket`` module instead: that stops accidental network use, not a determined
  program (it is recorded as ``isolation="socket-guard"``).

The parent starts it in a new session (``start_new_session``) with stdin closed, a minimal environment
and the temp dir as cwd, waits ``timeout`` seconds of wall time, then kills the whole process group;
the temp dir is removed afterwards. Limits are applied by the launcher rather than a ``preexec_fn``
because ``preexec_fn`` is unsafe in a multi-threaded parent (the ttc process runs torch threads).

Not isolated: the file system (the program runs as the same user and can read, or write where that user
may, outside its temp dir), other processes of that user, and a child that escapes the process group
with its own ``setsid`` before the kill. Run untrusted code on a machine or container you can lose.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHILD = Path(__file__).with_name("sandbox_child.py")
OUTPUT_LIMIT = 1 << 20  # bytes of stdout+stderr kept (and the largest file the program may write)


@dataclass(frozen=True)
class SandboxResult:
    status: str  # "ok" (exit 0), "error" (non-zero exit or killed by a signal), "timeout"
    returncode: int | None
    output: str  # the last 4 KiB of stdout and stderr
    isolation: str  # "netns", "userns+netns" or "socket-guard" (from the launcher), "" if unknown


def run_python(source: str, timeout: float = 10.0, memory_mb: int = 1024, cpu_s: int | None = None
               ) -> SandboxResult:
    cpu_s = cpu_s if cpu_s is not None else int(timeout) + 1
    with tempfile.TemporaryDirectory(prefix="ttc-sandbox-") as tmp:
        prog = Path(tmp) / "program.py"
        prog.write_text(source, encoding="utf-8", errors="surrogatepass")
        out_path = Path(tmp) / "output.txt"
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-I", str(CHILD), str(memory_mb << 20), str(cpu_s), str(OUTPUT_LIMIT), str(prog)]
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
            try:
                rc = proc.wait(timeout=timeout)
                status = "ok" if rc == 0 else "error"
            except subprocess.TimeoutExpired:
                rc, status = None, "timeout"
            finally:
                _kill_group(proc)
        raw = out_path.read_bytes()[-OUTPUT_LIMIT:]
    text = raw.decode("utf-8", errors="replace")
    isolation = ""
    for line in text.splitlines()[:3]:
        if line.startswith("__ttc_isolation__="):
            isolation = line.split("=", 1)[1].strip()
    return SandboxResult(status, rc, text[-4096:], isolation)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the program and everything it started in its session, then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def run_tests(program: str, timeout: float = 10.0, memory_mb: int = 1024) -> tuple[bool, SandboxResult]:
    """Run ``program`` (code followed by its tests) and pass only if it reaches its end: a random marker
    printed after the tests, so a program that calls ``exit(0)`` early does not pass."""
    marker = f"__ttc_passed_{secrets.token_hex(8)}__"
    result = run_python(f"{program}\n\nprint({marker!r}, flush=True)\n", timeout=timeout, memory_mb=memory_mb)
    return result.status == "ok" and marker in result.output, result

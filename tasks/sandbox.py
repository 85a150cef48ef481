"""Running untrusted Python (model-written code) isolated from the machine, with a verdict it cannot forge.

``run_python(source, ...)`` runs ``source`` through the launcher of ``tasks/sandbox_child.py`` inside
bubblewrap (``bwrap``), which gives it:

* its own user, PID, network, IPC, UTS (and cgroup) namespaces, no capabilities, no further user
  namespaces (``--disable-userns``), a new session (``--new-session``) and ``--die-with-parent``;
* as file system only ``/usr`` (and the ``/bin``, ``/lib*`` links), the interpreter's prefix, a fresh
  ``/proc`` and minimal ``/dev``, all read-only, and a private ``/tmp`` tmpfs of ``disk_mb`` (its cwd),
  the one place it can write;
* when ttc runs as root, the unprivileged uid 65534 (nobody) outside, so file permissions hold as for
  that user; otherwise the user running ttc, who sees only the mounts above;
* rlimits set inside the namespace: ``memory_mb`` of address space per process, ``max_procs`` processes
  (counted in the sandbox's own user namespace), ``max_files`` open files per process, CPU seconds, the
  largest file, no core dumps;
* a seccomp filter (``tasks/sandbox_seccomp.py``) that refuses the calls that hold memory outside the
  address space: memfd, System V and POSIX IPC, io_uring, sockets other than AF_UNIX, larger socket and
  pipe buffers.

So the program has no network (not even by ``setns``: it holds no capability over the host's network
namespace), cannot write outside its tmpfs, sees no file outside the mounts above, cannot see or signal
any process outside, and nothing it starts survives: when the launcher exits or ttc dies, the PID
namespace is torn down. Its memory is at most ``max_procs x (memory_mb + max_files x one socket's
buffer)`` plus the tmpfs, a bound that holds without a cgroup (see SECURITY.md for the measured numbers).
Output (stdout and stderr) is read from a pipe and the program is killed once it passes ``OUTPUT_LIMIT``
bytes.

The verdict: a pass needs a random nonce, handed to the launcher on a pipe the program's process does
not hold and copied to a separate verdict pipe by the launcher's judge process; nothing the program
prints, and no file or environment variable, holds it. The launcher's own report (``isolation``) comes on
that verdict pipe too, never from the program's output. ``run_tests`` passes a program that ran to its end
and exited 0; ``run_judged`` (HumanEval) runs the tests in the judge process against the solution's
function in another, so the solution cannot forge its end or return an object that equals anything.

Where bwrap is missing or cannot create its namespaces (``TTC_SANDBOX=fallback`` forces it), the launcher
runs as a plain process with the same rlimits (except the process count) and no seccomp filter, a new
network namespace where the kernel allows one, and no file system or process isolation;
``sandbox_mode()`` says so and it is printed once on stderr and recorded in the run header. See
SECURITY.md.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tasks.sandbox_seccomp import seccomp_program

CHILD = Path(__file__).with_name("sandbox_child.py")
OUTPUT_LIMIT = 1 << 20  # bytes of stdout+stderr read at most; the program is killed past it
MAX_FILES = 64  # open files per process (RLIMIT_NOFILE): bounds the kernel buffers the program can hold
NOBODY = 65534
SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}


@dataclass(frozen=True)
class SandboxResult:
    status: str  # "ok" (exit 0), "error" (non-zero exit, killed by a signal, output too long), "timeout"
    returncode: int | None
    output: str  # the last 4 KiB of stdout and stderr
    isolation: str  # "bwrap", or the fallback's "netns", "userns+netns", "socket-guard"; "" if unknown
    completed: bool = False  # the judge confirmed the program ran to its end (the nonce came back)


def _reachable(path: str, as_root: bool) -> bool:
    """Whether the sandbox user can reach ``path``: every directory above it searchable by others when
    ttc runs as root (the sandbox then runs as nobody)."""
    if not as_root:
        return os.access(path, os.X_OK)
    p = Path(path)
    for d in list(p.parents)[:-1]:
        try:
            if not os.stat(d).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    try:
        return bool(os.stat(p).st_mode & stat.S_IXOTH)
    except OSError:
        return False


def _interpreter(as_root: bool) -> str | None:
    for candidate in (os.path.realpath(sys.executable), "/usr/bin/python3"):
        real = os.path.realpath(candidate)
        if os.path.isfile(real) and _reachable(real, as_root):
            return real
    return None


def _seccomp_fd() -> int | None:
    """A pipe holding the seccomp program for ``bwrap --seccomp`` (None where there is none)."""
    program = seccomp_program()
    if program is None:
        return None
    r, w = os.pipe()
    os.write(w, program)  # a few hundred bytes: fits in the pipe
    os.close(w)
    return r


def _bwrap_command(python: str, disk_mb: int, seccomp_fd: int | None) -> list[str]:
    cmd = [shutil.which("bwrap") or "bwrap", "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
           "--unshare-uts", "--unshare-cgroup-try", "--disable-userns", "--die-with-parent", "--new-session",
           "--cap-drop", "ALL", "--clearenv", "--ro-bind", "/usr", "/usr"]
    for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(d):
            cmd += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            cmd += ["--ro-bind", d, d]
    prefix = str(Path(python).parent.parent)
    if not prefix.startswith("/usr/") and prefix != "/usr":
        cmd += ["--ro-bind", prefix, prefix]
    for k, v in SANDBOX_ENV.items():
        cmd += ["--setenv", k, v]
    if seccomp_fd is not None:
        cmd += ["--seccomp", str(seccomp_fd)]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(disk_mb << 20), "--tmpfs", "/tmp", "--chdir", "/tmp",
            "--hostname", "sandbox", "--remount-ro", "/dev", "--remount-ro", "/", python]
    return cmd


@functools.cache
def sandbox_mode() -> str:
    """``"bwrap"`` where bubblewrap works here, else ``"fallback: <why>"`` (said once on stderr)."""
    reason = _probe()
    if reason is None:
        if seccomp_program() is None:
            print(f"WARNING: ttc's code sandbox has no seccomp filter for {platform.machine()}: generated code "
                  "can hold memory outside its limit (memfd, shared memory, socket buffers). See SECURITY.md.",
                  file=sys.stderr, flush=True)
        return "bwrap"
    print(f"WARNING: ttc's code sandbox is NOT isolated here ({reason}): generated code runs as a plain "
          "process that can read and write your files and outlive the grading. Install bubblewrap "
          "(apt-get install bubblewrap) or run on a machine you can lose. See SECURITY.md.",
          file=sys.stderr, flush=True)
    return f"fallback: {reason}"


def _probe() -> str | None:
    if os.environ.get("TTC_SANDBOX") == "fallback":
        return "TTC_SANDBOX=fallback"
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    as_root = os.geteuid() == 0
    python = _interpreter(as_root)
    if python is None:
        return "no Python interpreter the sandbox user can reach"
    seccomp_fd = _seccomp_fd()
    try:
        r = subprocess.run(_bwrap_command(python, 1, seccomp_fd) + ["-I", "-S", "-c", "pass"], capture_output=True,
                           timeout=30, env={}, pass_fds=() if seccomp_fd is None else (seccomp_fd,), **_drop(as_root))
    except (OSError, subprocess.SubprocessError) as e:
        return f"bwrap failed to start ({type(e).__name__}: {e})"
    finally:
        if seccomp_fd is not None:
            os.close(seccomp_fd)
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace").strip().splitlines()
        return f"bwrap cannot create its namespaces here ({err[-1] if err else 'exit ' + str(r.returncode)})"
    return None


def _drop(as_root: bool) -> dict:
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []} if as_root else {}


def run_python(source: str, timeout: float = 10.0, memory_mb: int = 1024, cpu_s: int | None = None,
               max_procs: int = 16, disk_mb: int = 64, max_files: int = MAX_FILES) -> SandboxResult:
    """Run ``source`` as ``__main__``; ``completed`` when it ran to its end and exited 0 (see ``run_tests``)."""
    return _launch("run", source.encode("utf-8", errors="surrogatepass"), timeout, memory_mb, cpu_s, max_procs,
                   disk_mb, max_files)


def run_judged(solution: str, tests: str, entry_point: str, timeout: float = 10.0, memory_mb: int = 1024,
               max_procs: int = 16, disk_mb: int = 64) -> tuple[bool, SandboxResult]:
    """Run ``solution`` in one process and ``tests`` (which define ``check(candidate)``) in another, the
    judge, which calls ``check`` with a proxy of the solution's ``entry_point``: each call's arguments and
    result cross between the two as plain data of exact types. Passes only if ``check`` returned, so
    neither an early exit nor an object whose ``==`` is always true nor anything the solution writes can
    make it pass; the solution's module-level code runs before any call."""
    job = json.dumps({"solution": solution, "tests": tests, "entry_point": entry_point}).encode()
    result = _launch("judge", job, timeout, memory_mb, None, max_procs, disk_mb, MAX_FILES)
    return result.status == "ok" and result.completed, result


def _launch(job_kind: str, stdin: bytes, timeout: float, memory_mb: int, cpu_s: int | None, max_procs: int,
            disk_mb: int, max_files: int) -> SandboxResult:
    cpu_s = cpu_s if cpu_s is not None else int(timeout) + 1
    mode = sandbox_mode()
    as_root = os.geteuid() == 0
    nonce = secrets.token_hex(16).encode()
    nonce_r, nonce_w = os.pipe()
    verdict_r, verdict_w = os.pipe()
    os.write(nonce_w, nonce)
    os.close(nonce_w)
    launcher = CHILD.read_text(encoding="utf-8")
    limits = [job_kind, str(memory_mb << 20), str(cpu_s), str(disk_mb << 20), str(max_procs if mode == "bwrap" else 0),
              str(max_files), str(nonce_r), str(verdict_w)]
    fds = [nonce_r, verdict_w]
    with tempfile.TemporaryDirectory(prefix="ttc-sandbox-") as tmp:
        if mode == "bwrap":
            python = _interpreter(as_root)
            seccomp_fd = _seccomp_fd()
            if seccomp_fd is not None:
                fds.append(seccomp_fd)
            cmd = _bwrap_command(python, disk_mb, seccomp_fd) + ["-I", "-S", "-c", launcher, "bwrap", *limits]
            extra, env, cwd = _drop(as_root), {}, None  # nothing of ttc's environment
        else:
            cmd = [sys.executable, "-I", "-S", "-c", launcher, "fallback", *limits]
            extra, env, cwd = {}, {**SANDBOX_ENV, "HOME": tmp, "TMPDIR": tmp}, tmp
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    pass_fds=fds, start_new_session=True, env=env, cwd=cwd, **extra)
        finally:
            for fd in fds:
                os.close(fd)
        try:
            threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True).start()
            out, verdict, status = _collect(proc, verdict_r, timeout)
        finally:
            _kill_group(proc)
            os.close(verdict_r)
            proc.stdout.close()
    rc = proc.returncode if status != "timeout" else None
    if status is None:
        status = "ok" if rc == 0 else "error"
    text = out.decode("utf-8", errors="replace")
    said, _, returned = verdict.partition(b"\n")  # the launcher's own line, then the nonce: not the program's
    isolation = said.decode(errors="replace").removeprefix("isolation=") if said.startswith(b"isolation=") else ""
    completed = status == "ok" and secrets.compare_digest(returned, nonce)
    return SandboxResult(status, rc, text[-4096:], isolation, completed)


def _feed(pipe, data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except (BrokenPipeError, OSError, ValueError):
        pass


def _collect(proc: subprocess.Popen, verdict_fd: int, timeout: float) -> tuple[bytes, bytes, str | None]:
    """Read output and verdict until the launcher exits (plus a short drain), the deadline passes
    (``"timeout"``) or the output passes its bound (``"error"``)."""
    out, verdict = bytearray(), bytearray()
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(verdict_fd, selectors.EVENT_READ, verdict)
    deadline = time.monotonic() + timeout
    exited_at = None
    status = None
    while sel.get_map():
        now = time.monotonic()
        if now >= deadline:
            status = "timeout"
            break
        if exited_at is None and proc.poll() is not None:
            exited_at = now
        if exited_at is not None and now - exited_at > 0.5:
            break
        for key, _ in sel.select(min(0.1, deadline - now)):
            fd = key.fileobj if isinstance(key.fileobj, int) else key.fileobj.fileno()
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            key.data.extend(chunk)
            if len(out) > OUTPUT_LIMIT or len(verdict) > 128:
                status = "error"
                out += b"\n[ttc sandbox: output limit exceeded, program killed]\n"
                sel.close()
                return bytes(out), bytes(verdict), status  # not a pass: the status is "error"
    sel.close()
    if status is None:
        proc.wait()
    return bytes(out), bytes(verdict), status


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the launcher and everything in its session, then reap it. Under bwrap, the PID namespace
    dies with it; in the fallback, a process that left the session with ``setsid`` survives."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def run_tests(program: str, timeout: float = 10.0, memory_mb: int = 1024) -> tuple[bool, SandboxResult]:
    """Run ``program`` (code followed by its tests): it passes only if the judge saw it run to its end
    and exit 0, so an early ``exit(0)`` and any printed marker do not pass."""
    result = run_python(program, timeout=timeout, memory_mb=memory_mb)
    return result.status == "ok" and result.completed, result

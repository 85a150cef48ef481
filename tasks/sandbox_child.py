"""Launcher of the code sandbox, run as ``python -I -S -c <this source> MODE MEMORY CPU FSIZE NPROC NONCE_FD
VERDICT_FD`` (inside bubblewrap, or as a plain process in the fallback mode; see ``tasks/sandbox.py``).

It reads the program from stdin, applies the resource limits to itself, and forks: the child runs the
program as ``__main__``; this process, the judge, never runs program code. Only when the child ran the
program to its end (no exception, no early exit) and exited 0 does the judge read the nonce from
NONCE_FD and copy it to VERDICT_FD. The child closes both descriptors before the program starts and cannot
read the judge's memory (the judge is not dumpable and no capability is left), so the program never sees
the nonce.

Standard library only and nothing from ttc: it runs from ``-c`` under ``-I -S`` and is the same text in
both modes.
"""

import ctypes
import ctypes.util
import os
import resource
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_DUMPABLE = 4
DONE = b"program reached its end\n"


def set_limits(memory: int, cpu: int, fsize: int, nproc: int) -> None:
    limits = [(resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, cpu), (resource.RLIMIT_FSIZE, fsize),
              (resource.RLIMIT_CORE, 0)]
    if nproc > 0:
        limits.append((resource.RLIMIT_NPROC, nproc))
    for kind, value in limits:
        try:
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            pass


def isolate_network() -> str:
    """The fallback's network isolation: a new network namespace if the kernel allows one, else a
    ``socket`` module that refuses (which stops accidents, not a determined program)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        if libc.unshare(CLONE_NEWNET) == 0:
            return "netns"
        if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
            return "userns+netns"
    except (OSError, AttributeError):
        pass
    import socket

    def refused(*args, **kwargs):
        raise OSError("network access is disabled in the ttc sandbox")

    socket.socket = refused
    socket.create_connection = refused
    socket.socketpair = refused
    return "socket-guard"


def not_dumpable() -> None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def run_program(source: bytes, done_fd: int) -> None:
    """In the child: run the program, then tell the judge it reached its end."""
    import types

    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = main
    sys.argv = ["program.py"]
    code = compile(source, "program.py", "exec")
    exec(code, main.__dict__)
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(done_fd, DONE)
    os._exit(0)


def main() -> None:
    mode = sys.argv[1]
    memory, cpu, fsize, nproc, nonce_fd, verdict_fd = map(int, sys.argv[2:8])
    source = read_all(0)
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    isolation = "bwrap" if mode == "bwrap" else isolate_network()  # before the memory cap: ctypes needs room
    not_dumpable()
    set_limits(memory, cpu, fsize, nproc)
    print(f"__ttc_isolation__={isolation}", flush=True)
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(done_r)
        os.close(nonce_fd)
        os.close(verdict_fd)
        try:
            run_program(source, done_w)
        except SystemExit as e:
            code = e.code
            if code is not None and not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
            sys.stdout.flush()
            os._exit(code or 0)
        except BaseException:
            import traceback

            sys.stdout.flush()
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
    os.close(done_w)
    _, status = os.waitpid(pid, 0)
    os.set_blocking(done_r, False)  # a process the program left running may hold the pipe open
    try:
        said = os.read(done_r, len(DONE) + 1)
    except BlockingIOError:
        said = b""
    code = os.waitstatus_to_exitcode(status)
    if code == 0 and said == DONE:
        os.write(verdict_fd, read_all(nonce_fd))
    sys.stdout.flush()
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()

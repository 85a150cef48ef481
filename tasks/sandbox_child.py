"""Launcher run as ``python -I sandbox_child.py MEMORY_BYTES CPU_S FILE_BYTES PROGRAM``: applies the
limits described in ``tasks/sandbox.py`` to its own process, then runs PROGRAM as ``__main__``.

Standard library only, and nothing from ttc: it runs under ``-I`` (no user site, no cwd on the path).
"""

import ctypes
import ctypes.util
import resource
import runpy
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000


def set_limits(memory: int, cpu: int, fsize: int) -> None:
    for kind, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, cpu),
                        (resource.RLIMIT_FSIZE, fsize), (resource.RLIMIT_CORE, 0)):
        try:
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            pass


def isolate_network() -> str:
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


def main() -> None:
    memory, cpu, fsize, program = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    isolation = isolate_network()  # before the memory cap: ctypes needs some address space
    set_limits(memory, cpu, fsize)
    print(f"__ttc_isolation__={isolation}", flush=True)
    sys.argv = [program]
    runpy.run_path(program, run_name="__main__")


if __name__ == "__main__":
    main()

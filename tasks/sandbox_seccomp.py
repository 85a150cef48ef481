"""The seccomp filter of the code sandbox: the system calls that would hold memory outside ``RLIMIT_AS``.

``RLIMIT_AS`` bounds what a process maps, not what the kernel holds for it. Measured under bubblewrap
before this filter (1,024 MiB of address space per process, one process, each attack stopped at 2 GiB):
``memfd_create`` + ``posix_fallocate`` held 2,016 MiB, SysV shared memory (``shmget``, attach, touch,
detach) 2,048 MiB, loopback TCP buffers 2,060 MiB, AF_UNIX socket buffers grown with ``SO_SNDBUF``
2,056 MiB, pipes grown with ``F_SETPIPE_SZ`` 413 MiB (20,000 file descriptors), all while the process
stayed under its limit. The filter makes each of these calls fail with ``EPERM``:

* ``memfd_create``, ``memfd_secret``: anonymous files outside any size-limited file system;
* ``shmget``, ``msgget``, ``semget``, ``mq_open``: System V and POSIX IPC objects, which outlive their
  mapping (one IPC namespace may hold 32,000 message queues of 16 KiB and 10^9 semaphores);
* ``io_uring_setup``: its rings and registered buffers, and its operations, which seccomp does not see;
* ``socket`` and ``socketpair`` of any family but ``AF_UNIX`` (the network namespace has only loopback,
  whose TCP buffers grow to megabytes by themselves); ``AF_UNIX`` stays for ``asyncio`` and
  ``multiprocessing``;
* ``setsockopt(SOL_SOCKET, SO_SNDBUF | SO_RCVBUF | SO_SNDBUFFORCE | SO_RCVBUFFORCE)``: a socket keeps the
  system's default buffer (``net.core.wmem_default``, 208 KiB on common kernels);
* ``fcntl(F_SETPIPE_SZ)``: a pipe keeps its default 64 KiB.

What remains outside ``RLIMIT_AS`` is the kernel memory of open files (socket and pipe buffers), at most
``RLIMIT_NOFILE`` of them per process, and the sandbox's tmpfs (``disk_mb``). Calls of another ABI (i386
through ``int 0x80``, x32, arm32) are refused whole: the filter knows only the native numbers.

The program is classic BPF (``struct sock_filter``), built here for x86_64 and aarch64 and handed to
bubblewrap with ``--seccomp FD``, which loads it (with ``no_new_privs``) before it executes the launcher;
it cannot be removed from inside. On another architecture ``seccomp_program()`` returns None and the
sandbox says so.
"""

from __future__ import annotations

import errno
import platform
import struct

# linux/audit.h
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# asm/unistd_64.h (x86_64) and asm-generic/unistd.h (aarch64)
SYSCALLS = {
    "x86_64": {"memfd_create": 319, "memfd_secret": 447, "shmget": 29, "msgget": 68, "semget": 64,
               "mq_open": 240, "io_uring_setup": 425, "socket": 41, "socketpair": 53, "setsockopt": 54,
               "fcntl": 72},
    "aarch64": {"memfd_create": 279, "memfd_secret": 447, "shmget": 194, "msgget": 186, "semget": 190,
                "mq_open": 180, "io_uring_setup": 425, "socket": 198, "socketpair": 199, "setsockopt": 208,
                "fcntl": 25},
}
DENIED = ("memfd_create", "memfd_secret", "shmget", "msgget", "semget", "mq_open", "io_uring_setup")
X32_BIT = 0x40000000
AF_UNIX = 1
SOL_SOCKET = 1
BUFFER_OPTIONS = (7, 8, 32, 33)  # SO_SNDBUF, SO_RCVBUF, SO_SNDBUFFORCE, SO_RCVBUFFORCE
F_SETPIPE_SZ = 1031

# linux/filter.h, linux/seccomp.h
LD_W_ABS = 0x20
JEQ_K = 0x15
JGE_K = 0x35
RET_K = 0x06
RET_ALLOW = 0x7FFF0000
RET_EPERM = 0x00050000 | errno.EPERM
OFF_NR, OFF_ARCH = 0, 4


def _arg(i: int) -> int:
    """Offset of the low 32 bits of argument ``i`` in ``struct seccomp_data`` (little-endian)."""
    return 16 + 8 * i


def _assemble(code: list[tuple]) -> bytes:
    """``code``: instructions ``(op, k)``, jumps ``(op, k, true_label, false_label)`` (None: the next
    instruction; classic BPF jumps forward only) and labels ``(":", name)``. Returns the packed
    ``struct sock_filter`` array."""
    where, n = {}, 0
    for ins in code:
        if ins[0] == ":":
            where[ins[1]] = n
        else:
            n += 1
    out, pc = [], 0
    for ins in code:
        if ins[0] == ":":
            continue
        op, k, *jumps = ins
        offsets = [0 if label is None else where[label] - pc - 1 for label in jumps] or [0, 0]
        if any(not 0 <= j <= 255 for j in offsets):
            raise ValueError(f"seccomp jump out of range at instruction {pc}")
        out.append(struct.pack("=HBBI", op, offsets[0], offsets[1], k))
        pc += 1
    return b"".join(out)


def seccomp_program(machine: str | None = None) -> bytes | None:
    """The filter for ``machine`` (default: this one), or None where no syscall table is known."""
    machine = machine or platform.machine()
    if machine not in SYSCALLS:
        return None
    nr = SYSCALLS[machine]
    code = [(LD_W_ABS, OFF_ARCH), (JEQ_K, AUDIT_ARCH[machine], None, "deny"), (LD_W_ABS, OFF_NR)]
    if machine == "x86_64":
        code.append((JGE_K, X32_BIT, "deny", None))
    code += [(JEQ_K, nr[name], "deny", None) for name in DENIED]
    code += [(JEQ_K, nr["socket"], "socket", None), (JEQ_K, nr["socketpair"], "socket", None),
             (JEQ_K, nr["setsockopt"], "sockopt", None), (JEQ_K, nr["fcntl"], "fcntl", None),
             (RET_K, RET_ALLOW),
             (":", "socket"), (LD_W_ABS, _arg(0)), (JEQ_K, AF_UNIX, "allow", "deny"),
             (":", "sockopt"), (LD_W_ABS, _arg(1)), (JEQ_K, SOL_SOCKET, None, "allow"), (LD_W_ABS, _arg(2))]
    code += [(JEQ_K, opt, "deny", None) for opt in BUFFER_OPTIONS]
    code += [(RET_K, RET_ALLOW),
             (":", "fcntl"), (LD_W_ABS, _arg(1)), (JEQ_K, F_SETPIPE_SZ, "deny", "allow"),
             (":", "allow"), (RET_K, RET_ALLOW),
             (":", "deny"), (RET_K, RET_EPERM)]
    return _assemble(code)

"""One writer per run: an exclusive ``flock`` on ``<run dir>/.lock`` held for the whole sweep.

A second ``python -m ttc.run`` of the same run stops at once with one line naming the holder (the pid and
host written into the lock file). The kernel releases a ``flock`` when its holder dies, ``kill -9``
included, so a lock left by a dead process is never in the way: the file stays, the lock does not, and
the next run takes it. The pid and host in the file are only what the message shows.

``flock`` is local to one machine on most network file systems' terms (NFS emulates it with byte-range
locks, which work across clients with a lock manager); two machines writing one run on a file system
without working locks are not protected.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ttc.errors import TTCError

LOCK_NAME = ".lock"


def holder(path: Path) -> str:
    """``"pid N on HOST"`` as written in the lock file, or a vaguer phrase while it is being written."""
    try:
        pid, _, host = path.read_text(encoding="utf-8").strip().partition(" ")
    except OSError:
        return "another process"
    return f"pid {pid} on {host}" if pid.isdigit() and host else "another process"


@contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold the run's lock while the body runs; ``TTCError`` at once if another process holds it."""
    root = Path(run_dir)
    path = root / LOCK_NAME
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise TTCError(f"cannot write to output directory {root}: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TTCError(f"{root} is being written by {holder(path)}; wait for it to finish or stop it "
                           f"(a lock left by a dead process is released by the kernel)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock

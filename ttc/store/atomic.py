"""Atomic writes (temporary file, fsync, rename) and the temporaries that a killed writer leaves behind.

``write_atomic`` writes ``<dir>/.<name>.<pid>@<host>.<hex>.tmp`` and renames it over ``<dir>/<name>``: a crash
leaves the old file or the new one, never a torn one. A writer killed with ``kill -9`` (or a machine that lost
power) cannot remove its temporary file; ``remove_stale_temporaries`` does, when a run is resumed. It removes
only files with this naming pattern whose writer is known to be dead: its host is this machine and no process
with its pid is alive. Temporaries written by another host are left alone (a writer there may be running).
Files written before the host was part of the name (``.<name>.<pid>.<hex>.tmp``) are removed when their pid is
dead here and they are more than an hour old, and so cannot belong to a write in progress anywhere.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from pathlib import Path

TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]*)\.[0-9a-f]{8}\.tmp$")
OLD_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")
PROBE = re.compile(r"^\.write_test\.(?P<pid>\d+)$")  # RunStore.open's check that the directory is writable
OLD_TEMPORARY_AGE_S = 3600.0


def host_tag() -> str:
    """This machine's name as it appears in temporary file names (letters, digits and ``-`` only)."""
    return re.sub(r"[^A-Za-z0-9-]+", "", socket.gethostname())[:32]


def temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}@{host_tag()}.{uuid.uuid4().hex[:8]}.tmp")


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit(tmp: Path, path: Path) -> None:
    """Make the finished temporary file ``tmp`` durable and rename it to ``path``, then its directory entry."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_atomic(path: Path, write) -> None:
    """Write ``path`` through ``write(tmp_path)``, fsync it and rename it into place: a failure leaves the old
    file (or none), never a truncated one, and removes the temporary file."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        write(tmp)
        commit(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_atomic(path: Path, obj) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=str)
            f.write("\n")

    write_atomic(path, write)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (one of another user's counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def stale(name: str, mtime: float, now: float | None = None) -> bool:
    """Whether ``name`` is a temporary file of ttc's whose writer is dead (see the module's docstring)."""
    m = TEMPORARY.match(name)
    if m is not None:
        return m["host"] == host_tag() and not pid_alive(int(m["pid"]))
    m = OLD_TEMPORARY.match(name) or PROBE.match(name)
    if m is None:
        return False
    age = (time.time() if now is None else now) - mtime
    return not pid_alive(int(m["pid"])) and age > OLD_TEMPORARY_AGE_S


def remove_stale_temporaries(dirs) -> list[Path]:
    """Remove the stale temporary files of ttc's atomic writes in ``dirs`` (not recursively); return them."""
    removed = []
    for d in dirs:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if not e.name.startswith(".") or not e.is_file(follow_symlinks=False):
                continue
            try:
                if stale(e.name, e.stat(follow_symlinks=False).st_mtime):
                    os.unlink(e.path)
                    removed.append(Path(e.path))
            except FileNotFoundError:  # removed meanwhile
                continue
    return removed

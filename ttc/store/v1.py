"""Schema-1 runs (``header.json`` + JSONL shards under ``samples/``): read in place, and converted to the
Parquet store (``ttc.store.runstore``) when a run is resumed.

A schema-1 shard is an append-only JSONL file, one record per line, all records of a problem written with
one ``write``. A crash can leave a torn tail (an unterminated line, or the first records of a problem);
it is cut off and kept beside the shard as ``<shard>.torn``. A malformed line anywhere else means the shard
is corrupt and is refused. Reading is one linear pass over the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ttc.errors import TTCError

SAMPLES_DIR = "samples"


class JsonlShard:
    """An append-only JSONL file of records, grouped by problem."""

    def __init__(self, path: Path):
        self.path = path

    def read(self, repair: bool = False) -> dict[str, list[dict]]:
        """Read complete problems, ``problem_id -> records``. A torn tail (an unterminated last line, or
        the trailing records of a problem that has fewer than ``n_samples`` of them) is cut off if
        ``repair`` is set and ignored otherwise; any other malformed content raises ``TTCError``."""
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        problems: dict[str, list[dict]] = {}
        good_end = 0  # byte offset just after the last complete problem
        pos = 0
        open_pid = None
        lineno = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl == -1:  # unterminated last line: a write torn by a crash
                break
            line = data[pos:nl]
            lineno += 1
            try:
                rec = json.loads(line)
                pid, n, idx = rec["problem_id"], rec["n_samples"], rec["sample_index"]
            except (ValueError, KeyError, TypeError) as e:
                raise TTCError(f"corrupt shard {self.path} at line {lineno}: {e}; "
                               f"move the file away to regenerate its problems") from None
            if open_pid is not None and pid != open_pid:
                raise TTCError(f"corrupt shard {self.path} at line {lineno}: problem {open_pid!r} "
                               f"is incomplete but followed by {pid!r}")
            if pid in problems and open_pid is None:
                raise TTCError(f"corrupt shard {self.path} at line {lineno}: problem {pid!r} appears twice")
            recs = problems.setdefault(pid, [])
            if idx != len(recs):
                raise TTCError(f"corrupt shard {self.path} at line {lineno}: sample_index {idx} of "
                               f"problem {pid!r}, expected {len(recs)}")
            recs.append(rec)
            pos = nl + 1
            if len(recs) == n:
                open_pid = None
                good_end = pos
            else:
                open_pid = pid
        if open_pid is not None:
            problems.pop(open_pid)
        if good_end < len(data) and repair:
            torn = self.path.with_name(self.path.name + ".torn")
            with open(torn, "ab") as f:
                f.write(data[good_end:])
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
                os.fsync(f.fileno())
        return problems


def shards(root: Path) -> list[JsonlShard]:
    return [JsonlShard(p) for p in sorted((Path(root) / SAMPLES_DIR).glob("*.jsonl"))]

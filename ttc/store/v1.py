"""Schema-1 runs (``header.json`` + JSONL shards under ``samples/``): read in place, and converted to the
Parquet store (``ttc.store.runstore``) when a run is resumed.

A schema-1 shard is an append-only JSONL file, one record per line, all records of a problem written with
one ``write``. A crash can leave a torn tail (an unterminated line, or the first records of a problem);
it is cut off and kept beside the shard as ``<shard>.torn``. A malformed line anywhere else means the shard
is corrupt and is refused. Reading is one linear pass over the file, one line at a time (``iter_problems``).
"""

from __future__ import annotations

import json
import os
import shutil
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
        problems: dict[str, list[dict]] = {}
        for pid, recs, lineno in self.iter_problems(repair=repair):
            if pid in problems:
                raise TTCError(f"corrupt shard {self.path} at line {lineno}: problem {pid!r} appears twice")
            problems[pid] = recs
        return problems

    def iter_problems(self, repair: bool = False):
        """``(problem_id, records, line number of its last record)`` for each complete problem, in file order,
        reading one line at a time (memory holds one problem). The checks and the torn tail are ``read``'s;
        a problem id that comes back later is not checked here (``read`` does it; a ``ShardWriter`` refuses
        it)."""
        if not self.path.exists():
            return
        good_end = 0  # byte offset just after the last complete problem
        pos = 0
        open_pid = None
        recs: list[dict] = []
        lineno = 0
        torn = False
        with open(self.path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):  # unterminated last line: a write torn by a crash
                    torn = True
                    break
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
                if idx != len(recs):
                    raise TTCError(f"corrupt shard {self.path} at line {lineno}: sample_index {idx} of "
                                   f"problem {pid!r}, expected {len(recs)}")
                recs.append(rec)
                pos += len(line)
                if len(recs) == n:
                    yield pid, recs, lineno
                    open_pid, recs = None, []
                    good_end = pos
                else:
                    open_pid = pid
            size = f.seek(0, os.SEEK_END)
        if (torn or open_pid is not None) and good_end < size and repair:
            with open(self.path, "rb") as src, open(self.path.with_name(self.path.name + ".torn"), "ab") as dst:
                src.seek(good_end)
                shutil.copyfileobj(src, dst, 1 << 20)
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
                os.fsync(f.fileno())


def shards(root: Path) -> list[JsonlShard]:
    return [JsonlShard(p) for p in sorted((Path(root) / SAMPLES_DIR).glob("*.jsonl"))]

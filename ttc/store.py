"""The run directory: ``header.json``, JSONL record shards, ``summary.csv``, ``curve.png``.

Layout of ``runs/<run_id>/``::

    header.json                       schema version, resolved config, models, versions, git commit, seed
    samples/<task>__<model>__<sampler>.jsonl   one SampleRecord per line, appended problem by problem
    summary.csv                       one row per (task, model, sampler, budget, metric)
    curve.png                         accuracy and pass@k vs inference FLOPs

Durability: all records of a problem are written with a single ``write`` and fsync'ed, so a crash or
``kill -9`` can at worst leave one torn problem at the end of a shard. On reopening, a torn tail is cut
off and kept beside the shard as ``<shard>.torn`` (nothing is deleted); a malformed line anywhere else
means the shard is corrupt and the run refuses to continue.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from ttc.errors import TTCError
from ttc.records import SCHEMA_VERSION, SampleRecord

HEADER = "header.json"
SAMPLES_DIR = "samples"


def shard_name(task: str, model: str, sampler: str) -> str:
    safe = [re.sub(r"[^A-Za-z0-9_.-]+", "_", s) for s in (task, model, sampler)]
    return "__".join(safe) + ".jsonl"


def _write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Shard:
    """An append-only JSONL file of records, grouped by problem."""

    def __init__(self, path: Path):
        self.path = path

    def scan(self, repair: bool = False) -> dict[str, list[dict]]:
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
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl == -1:  # unterminated last line: a write torn by a crash
                break
            line = data[pos:nl]
            lineno = data.count(b"\n", 0, pos) + 1
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

    def append_problem(self, records: list[SampleRecord]) -> None:
        blob = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())


class RunStore:
    """A run directory. ``open`` creates it or checks that an existing one belongs to the same config."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @classmethod
    def open(cls, out_dir: str | Path, run_id: str, header: dict) -> "RunStore":
        store = cls(Path(out_dir) / run_id)
        try:
            (store.root / SAMPLES_DIR).mkdir(parents=True, exist_ok=True)
            probe = store.root / ".write_test"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise TTCError(f"cannot write to output directory {store.root}: {e.strerror or e}") from None
        existing = store.root / HEADER
        if existing.exists():
            old = store.header()
            if old.get("config_hash") != header["config_hash"]:
                raise TTCError(f"{store.root} holds a run with a different config; use another --out")
            header = {**header, "created": old.get("created", header.get("created")),
                      "resumed": old.get("resumed", 0) + 1, "models": old.get("models", {})}
        store.write_header(header)
        return store

    def header(self) -> dict:
        path = self.root / HEADER
        try:
            h = json.loads(path.read_text())
        except FileNotFoundError:
            raise TTCError(f"{self.root} is not a run directory (no {HEADER})") from None
        except ValueError as e:
            raise TTCError(f"corrupt {path}: {e}") from None
        if h.get("schema_version") != SCHEMA_VERSION:
            raise TTCError(f"{path} has schema version {h.get('schema_version')}, this ttc reads {SCHEMA_VERSION}")
        return h

    def write_header(self, header: dict) -> None:
        _write_json_atomic(self.root / HEADER, header)

    def update_header(self, **fields) -> dict:
        h = self.header()
        for k, v in fields.items():
            if isinstance(v, dict) and isinstance(h.get(k), dict):
                h[k] = {**h[k], **v}
            else:
                h[k] = v
        self.write_header(h)
        return h

    def shard(self, task: str, model: str, sampler: str) -> Shard:
        return Shard(self.root / SAMPLES_DIR / shard_name(task, model, sampler))

    def shards(self) -> list[Shard]:
        return [Shard(p) for p in sorted((self.root / SAMPLES_DIR).glob("*.jsonl"))]

    def records(self) -> pd.DataFrame:
        rows = [r for s in self.shards() for recs in s.scan().values() for r in recs]
        if not rows:
            return pd.DataFrame(columns=list(SampleRecord.__dataclass_fields__))
        return pd.DataFrame(rows)


def load_run(path: str | Path) -> pd.DataFrame:
    """All complete problems' records of a run directory as a DataFrame, one row per completion.

    The header is available as ``df.attrs["header"]``.
    """
    store = RunStore(Path(path))
    header = store.header()
    df = store.records()
    df.attrs["header"] = header
    return df


def count_records(df: pd.DataFrame) -> Counter:
    return Counter(zip(df["task"], df["model"], df["sampler"])) if len(df) else Counter()

"""Writing a shard's records as a stream: complete problems go into one Parquet file, a row group at a time.

``ttc import`` and the conversion of schema-1 runs (``runstore.convert_v1``) read logs of millions of
records; they hand each problem's records to a ``ShardWriter`` as they read them, so memory holds one row
group (``ROWS_PER_GROUP`` records) and the ids seen, never the run. The file is written under a temporary
name and renamed into place by ``close``: a failure part way (``abort``, or an exception in a ``with``
block) leaves nothing behind. One file per shard is what a compacted run holds, so nothing is compacted
afterwards; a problem id given twice is refused at ``close`` (the file could not hold it twice).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ttc.errors import TTCError
from ttc.store.atomic import commit, temporary_path
from ttc.store.records import SampleRecord

ROWS_PER_GROUP = 50_000


def compacted_name(writer: str) -> str:
    """The name of a record file that holds whole problems of one shard (compaction's, or a streamed one)."""
    return f"c-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{writer}-{uuid.uuid4().hex[:6]}.parquet"


def _id_hash(problem_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(problem_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "little", signed=True)


class ShardWriter:
    """Complete problems of one shard directory, streamed into ``c-<time>-<writer>.parquet``. ``table`` turns
    records into an Arrow table of ``schema`` (``runstore.records_table`` and ``runstore.ARROW_SCHEMA``: passed
    in, because the run store itself converts schema-1 runs with this writer)."""

    def __init__(self, shard_dir: Path, writer: str, table: Callable[[list[SampleRecord]], pa.Table],
                 schema: pa.Schema, rows_per_group: int = ROWS_PER_GROUP):
        self.dir = Path(shard_dir)
        self.table, self.schema = table, schema
        self.path = self.dir / compacted_name(writer)
        self.tmp = temporary_path(self.path)
        self.rows_per_group = rows_per_group
        self._buffer: list[SampleRecord] = []
        self._writer: pq.ParquetWriter | None = None
        self._ids: list[np.ndarray] = []  # 8-byte hashes of the problem ids, checked for repeats at close
        self._chunk: list[int] = []
        self.problems = 0
        self.records = 0

    def add(self, records: list[SampleRecord]) -> None:
        """One problem's records: sample indices 0..n-1, each once, n = their ``n_samples``."""
        if not records:
            return
        pid = records[0].problem_id
        if any(r.problem_id != pid for r in records) or \
                sorted(r.sample_index for r in records) != list(range(records[0].n_samples)):
            raise TTCError(f"problem {pid!r}: records with sample indices "
                           f"{sorted(r.sample_index for r in records)[:8]}... do not make up its "
                           f"{records[0].n_samples} samples")
        self._chunk.append(_id_hash(str(pid)))
        if len(self._chunk) >= 65536:
            self._ids.append(np.asarray(self._chunk, dtype=np.int64))
            self._chunk = []
        self._buffer.extend(records)
        self.problems += 1
        self.records += len(records)
        if len(self._buffer) >= self.rows_per_group:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
        self._writer.write_table(self.table(self._buffer))
        self._buffer = []

    def close(self) -> Path | None:
        """Write what is left, refuse a repeated problem id, and move the file into place; None if empty."""
        try:
            self._flush()
            if self._writer is None:
                return None
            self._writer.close()
            self._writer = None
            self._check_unique()
            commit(self.tmp, self.path)
            return self.path
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - the file is removed anyway
                pass
            self._writer = None
        self._buffer = []
        self.tmp.unlink(missing_ok=True)

    def _check_unique(self) -> None:
        ids = np.concatenate(self._ids + [np.asarray(self._chunk, dtype=np.int64)])
        ids.sort()
        if not (ids[1:] == ids[:-1]).any():
            return
        # two equal hashes: find the id itself (each problem's rows start at sample index 0)
        seen: set[str] = set()
        for batch in pq.ParquetFile(self.tmp).iter_batches(columns=["problem_id", "sample_index"]):
            for pid, index in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
                if index == 0:
                    if pid in seen:
                        raise TTCError(f"problem id {pid!r} is given twice in {self.dir.name}; ids must be unique")
                    seen.add(pid)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

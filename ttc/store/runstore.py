"""The run directory: ``header.json``, Parquet record files, ``summary.csv``, ``problems.csv``, ``curve.png``.

Layout of ``runs/<run_id>/`` (schema 2)::

    header.json                           schema version, resolved config, models, versions, git commit, seed
    records/<task>__<model>__<sampler>/   one directory per shard
        w-<writer>-<seq>.parquet          complete problems, written as they finish
        c-<time>-<writer>.parquet         the same, compacted into one file at the end of a run
    summary.csv, problems.csv, curve.png  derived from the records (``ttc summary`` redoes them)

Durability: a finished problem (or a batch of them) becomes one Parquet file, written to a temporary name,
fsync'ed and renamed, so a crash or ``kill -9`` leaves the file whole or absent, never torn: a run loses at
most the problems in flight. Writers never touch each other's files (each has its own id), so several
processes, on one machine or several sharing a file system, can add records to one run. ``compact`` merges
the files it finds into one and then deletes them; a problem present twice (a crash between the two steps,
or two writers that both finished it) is read once, from the file that sorts first.

The files are plain Parquet with one fixed schema (``ARROW_SCHEMA``; ``extra`` is JSON text), so a run opens
without ttc: ``pandas.read_parquet("runs/<id>/records")``, ``polars.read_parquet("runs/<id>/records/*/*.parquet")``,
DuckDB's ``read_parquet('runs/<id>/records/*/*.parquet')``, or ``datasets.load_dataset("parquet",
data_files="runs/<id>/records/*/*.parquet")``. Runs written by earlier versions (schema 1: JSONL shards
under ``samples/``) are read in place and converted when resumed (``ttc.store.v1``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ttc.errors import TTCError
from ttc.store import v1 as store_v1
from ttc.store.atomic import fsync_dir, remove_stale_temporaries, write_atomic, write_json_atomic
from ttc.store.lock import LOCK_NAME
from ttc.store.records import SCHEMA_VERSION, SampleRecord
from ttc.store.stream import compacted_name

HEADER = "header.json"
RECORDS_DIR = "records"
KEY = ["task", "model", "sampler", "problem_id", "sample_index"]
ARROW_SCHEMA = pa.schema([
    ("task", pa.string()), ("model", pa.string()), ("sampler", pa.string()), ("problem_id", pa.string()),
    ("sample_index", pa.int64()), ("n_samples", pa.int64()), ("text", pa.string()), ("answer", pa.string()),
    ("answer_strict", pa.string()), ("gold", pa.string()), ("correct", pa.bool_()),
    ("prompt_tokens", pa.int64()), ("generated_tokens", pa.int64()), ("finish_reason", pa.string()),
    ("prefill_flops", pa.float64()), ("decode_flops", pa.float64()), ("prefill_shared", pa.bool_()),
    ("seed", pa.int64()), ("extra", pa.string()), ("verifier_flops", pa.float64()),
])
COLUMNS = ARROW_SCHEMA.names
SURROGATE = re.compile("[\ud800-\udfff]")
# A writer folds its own per-problem files of a shard into one once it has this many.
COMPACT_EVERY = 256
# The names ttc gives record files (``Shard.append_problems``, ``Shard.compact``): the only files of a run's
# ``records/`` that ttc reads, merges or deletes. Any other Parquet file there stops a resume.
RECORD_FILE = re.compile(r"^(w-.+-\d{8}|c-\d{8}T\d{6}-.+-[0-9a-f]{6})\.parquet$")


def shard_name(task: str, model: str, sampler: str) -> str:
    return "__".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", s) for s in (task, model, sampler))


def _clean(text):
    """Text that Parquet (UTF-8) can hold: lone surrogates from a model or server become U+FFFD."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return SURROGATE.sub("\ufffd", text)


def records_table(records: list[SampleRecord]) -> pa.Table:
    cols = {name: [getattr(r, name) for r in records] for name in COLUMNS}
    cols["extra"] = [json.dumps(e, ensure_ascii=False, sort_keys=True, default=str) for e in cols["extra"]]
    for name in ("text", "answer", "answer_strict", "gold", "extra"):
        cols[name] = [_clean(t) for t in cols[name]]
    return pa.Table.from_pydict(cols, schema=ARROW_SCHEMA)


def _check_problems(records: list[SampleRecord]) -> None:
    """Every problem of a write is whole: sample indices 0..n-1, each once, n = its n_samples."""
    seen: dict[str, list[int]] = {}
    for r in records:
        seen.setdefault(r.problem_id, []).append(r.sample_index)
    for r in records:
        idx = seen.get(r.problem_id)
        if idx is not None and sorted(idx) != list(range(r.n_samples)):
            raise TTCError(f"problem {r.problem_id!r}: records with sample indices {sorted(idx)[:8]}... do not "
                           f"make up its {r.n_samples} samples")
        seen.pop(r.problem_id, None)


class Shard:
    """The records of one (task, model, sampler): a directory of Parquet files of complete problems."""

    def __init__(self, path: Path, writer: str):
        self.path = Path(path)
        self.writer = writer
        self._seq = 0

    def files(self) -> list[Path]:
        """The shard's record files: those named as ttc names them (``RECORD_FILE``), in name order."""
        return sorted(p for p in self.path.glob("*.parquet") if RECORD_FILE.match(p.name))

    def done(self) -> set[str]:
        """Ids of the problems whose records are stored."""
        files = self.files()
        if not files:
            return set()
        return set(_read_files(files, ["problem_id"])["problem_id"].unique().tolist())

    def append_problem(self, records: list[SampleRecord]) -> None:
        self.append_problems([records])

    def append_problems(self, problems: list[list[SampleRecord]]) -> None:
        """Store finished problems durably in one file (all or none of them)."""
        records = [r for recs in problems for r in recs]
        if not records:
            return
        _check_problems(records)
        table = records_table(records)
        self.path.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        write_atomic(self.path / f"w-{self.writer}-{self._seq:08d}.parquet",
                     lambda tmp: pq.write_table(table, tmp, compression="zstd"))
        own = list(self.path.glob(f"w-{self.writer}-*.parquet"))
        if len(own) >= COMPACT_EVERY:
            self.compact(own)

    def compact(self, files: list[Path] | None = None) -> None:
        """Merge ``files`` (default: all of the shard's) into one and delete them. Files that other writers add
        meanwhile are untouched, so this is safe beside them; a reader that finds a merged file gone retries."""
        files = sorted(files) if files is not None else self.files()
        if len(files) < 2:
            return
        # which rows to keep is decided on the key columns of every file; the rows then stream file by file,
        # so compacting a shard of millions of records never holds its texts all at once
        keys = pa.concat_tables([_read_file(f, KEY) for f in files])
        keep = _first_copies(keys)
        sizes = [pq.ParquetFile(f).metadata.num_rows for f in files]

        def write(tmp):
            start = 0
            with pq.ParquetWriter(tmp, ARROW_SCHEMA, compression="zstd") as w:
                for f, size in zip(files, sizes):
                    mask = keep[start:start + size]
                    start += size
                    if mask.any():
                        table = _read_file(f, None)
                        w.write_table(table if mask.all() else table.filter(pa.array(mask)))

        write_atomic(self.path / compacted_name(self.writer), write)
        for f in files:
            f.unlink(missing_ok=True)
        fsync_dir(self.path)


def _read_file(path: Path, columns: list[str] | None) -> pa.Table:
    """One record file's ``columns``; ``TTCError`` naming the file if it is damaged or not a ttc record file."""
    try:
        check_schema(path, pq.read_schema(path))
        return pq.read_table(path, columns=columns, schema=ARROW_SCHEMA)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as e:
        raise TTCError(f"corrupt record file {path}: {str(e).splitlines()[0]}; move it away to regenerate "
                       f"its problems") from None


def check_schema(path: Path, schema: pa.Schema) -> None:
    """``TTCError`` unless ``schema`` is a ttc record file's: the key columns, and no column ttc does not write
    (a file from another tool would otherwise be read as records with every value missing)."""
    names = set(schema.names)
    missing, foreign = [c for c in KEY + ["n_samples"] if c not in names], sorted(names - set(COLUMNS))
    if missing or foreign:
        what = f"lacks {', '.join(missing)}" if missing else f"has columns ttc does not write ({', '.join(foreign)})"
        raise TTCError(f"{path} is not a ttc record file (it {what}); ttc never reads or removes files it did "
                       f"not write: move it out of the run directory")


def _read_files(files: list[Path], columns: list[str] | None, arrow: bool = False):
    tables = [_read_file(f, columns) for f in files]
    table = pa.concat_tables(tables) if tables else ARROW_SCHEMA.empty_table()
    if columns is not None and not tables:
        table = table.select(columns)
    return table if arrow else table.to_pandas()


def _first_copies(table: pa.Table):
    """A mask of the rows that are the first copy (in file order) of their record key."""
    keys = [k for k in KEY if k in table.column_names]
    return ~table.select(keys).to_pandas().duplicated(keep="first").to_numpy()


def _dedupe(table: pa.Table) -> pa.Table:
    """Keep the first copy (in file order) of each record key."""
    keep = _first_copies(table)
    return table if keep.all() else table.filter(pa.array(keep))


def new_writer_id() -> str:
    host = re.sub(r"[^A-Za-z0-9]+", "", socket.gethostname())[:24] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class RunStore:
    """A run directory. ``open`` creates it or checks that an existing one belongs to the same config."""

    def __init__(self, root: Path, writer: str | None = None):
        self.root = Path(root)
        self.writer = writer or new_writer_id()
        self._shards: dict[str, Shard] = {}

    @classmethod
    def open(cls, out_dir: str | Path, run_id: str, header: dict) -> "RunStore":
        """Create the run directory, or resume the one there. A resume checks everything first (the header's
        config, the record files: ``check_run_files``) and refuses with one line before it changes anything;
        then it removes the temporaries of its own killed writes (``ttc.store.atomic``) and updates the header."""
        store = cls(Path(out_dir) / run_id)
        try:
            store.root.mkdir(parents=True, exist_ok=True)
            probe = store.root / f".write_test.{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise TTCError(f"cannot write to output directory {store.root}: {e.strerror or e}") from None
        old = None
        if (store.root / HEADER).exists():
            old = read_header(store.root)
            if old.get("config_hash") != header["config_hash"]:
                raise TTCError(f"{store.root} holds a run with a different config; use another --out")
        check_run_files(store.root, old)
        if old is not None:
            base = store.root / RECORDS_DIR
            remove_stale_temporaries([store.root, base, *(sorted(p for p in base.iterdir() if p.is_dir())
                                                          if base.is_dir() else [])])
            if old.get("schema_version") == 1:
                old = convert_v1(store.root, old)
            # what this process knows replaces the old fields; what only the run knew (models, cluster
            # statistics, the format it was converted from) stays
            header = {**old, **header, "created": old.get("created", header.get("created")),
                      "resumed": old.get("resumed", 0) + 1, "models": old.get("models", {})}
        (store.root / RECORDS_DIR).mkdir(exist_ok=True)
        store.write_header(header)
        return store

    def header(self) -> dict:
        return read_header(self.root)

    def write_header(self, header: dict) -> None:
        write_json_atomic(self.root / HEADER, header)

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
        name = shard_name(task, model, sampler)
        if name not in self._shards:
            self._shards[name] = Shard(self.root / RECORDS_DIR / name, self.writer)
        return self._shards[name]

    def shards(self) -> list[Shard]:
        base = self.root / RECORDS_DIR
        return [self._shards.get(p.name) or Shard(p, self.writer)
                for p in sorted(base.iterdir()) if p.is_dir()] if base.is_dir() else []

    def compact(self) -> None:
        for s in self.shards():
            s.compact()

    def records(self, columns: list[str] | None = None) -> pd.DataFrame:
        return read_records(self.root, columns)


def check_run_files(root: Path, header: dict | None) -> None:
    """``TTCError`` naming the first thing that would make a run directory's records wrong, found by reading
    only: ``records`` (or a schema-1 run's ``samples``) that is not a directory; a Parquet file under
    ``records/`` that ttc did not name (``RECORD_FILE``; names starting with ``.`` or ``_`` are skipped, as
    pyarrow and pandas skip them); a record file that is damaged or holds other columns; a schema-1 shard with a
    malformed line; record files without a header (``header`` None), whose run is unknown."""
    root = Path(root)
    base = root / RECORDS_DIR
    for d, name in ((base, "records"), (root / store_v1.SAMPLES_DIR, "records (schema 1)")):
        if d.exists() and not d.is_dir():
            raise TTCError(f"{d} is not a directory; ttc keeps a run's {name} there: move it away")
    if header is not None and header.get("schema_version") == 1:
        for shard in store_v1.shards(root):
            shard.read()  # a malformed line is refused here, before the conversion writes anything
    if not base.is_dir():
        return
    ours = []
    for d, dirs, files in os.walk(base):
        dirs[:] = sorted(x for x in dirs if not x.startswith((".", "_")))
        for name in sorted(files):
            if not name.endswith(".parquet") or name.startswith((".", "_")):
                continue
            path = Path(d) / name
            if Path(d).parent != base or not RECORD_FILE.match(name):
                raise TTCError(f"{path} is not a record file written by ttc; ttc never reads or removes files "
                               f"it did not write: move it out of the run directory")
            ours.append(path)
    if ours and header is None:
        raise TTCError(f"{root} has record files but no {HEADER}, so the run they belong to is unknown; restore "
                       f"its {HEADER} or give another --out")
    for path in ours:
        _read_file(path, ["problem_id"])


# What opening a run writes before its first record (the lock's file, the header, the records directory).
SWEEP_FILE = "sweep.toml"  # the run's resolved settings, written when it opens (ttc.sweep.sweepfile)
OPENING_FILES = frozenset({HEADER, LOCK_NAME, RECORDS_DIR, SWEEP_FILE})


def discard_unused(root: Path, created: list[Path]) -> bool:
    """Remove the run directory ``root`` if this process created it (it is in ``created``) and it holds only
    what opening it wrote (``OPENING_FILES``, ``records/`` empty), then the directories above it in ``created``
    that are left empty: a sweep that fails before its first record leaves no trace, so a run directory that
    exists means work was done. Anything else in it (a record, a server's log, another process's file) keeps
    it as it is. Call it while holding the run's lock. Returns whether it was removed."""
    root = Path(root)
    if root not in created:
        return False
    try:
        entries = set(os.listdir(root))
        records = root / RECORDS_DIR
        if not entries <= OPENING_FILES or (records.is_dir() and any(os.scandir(records))):
            return False
        (root / HEADER).unlink(missing_ok=True)
        (root / SWEEP_FILE).unlink(missing_ok=True)
        if records.is_dir():
            records.rmdir()
        (root / LOCK_NAME).unlink(missing_ok=True)
        root.rmdir()
        for d in created:
            if d != root and root.is_relative_to(d):
                d.rmdir()
    except OSError:  # something appeared meanwhile (or the directory above is not empty): keep it
        return False
    return True


def read_header(root: Path) -> dict:
    path = Path(root) / HEADER
    try:
        h = json.loads(path.read_text())
    except FileNotFoundError:
        raise TTCError(f"{root} is not a run directory (no {HEADER})") from None
    except NotADirectoryError:
        raise TTCError(f"{root} is not a run directory (it is a file)") from None
    except OSError as e:
        raise TTCError(f"cannot read {path}: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise TTCError(f"corrupt {path}: {e}") from None
    if not isinstance(h, dict):
        raise TTCError(f"corrupt {path}: a JSON object is expected, found {type(h).__name__}")
    if h.get("schema_version") not in (1, SCHEMA_VERSION):
        raise TTCError(f"{path} has schema version {h.get('schema_version')}, this ttc reads 1 and {SCHEMA_VERSION}")
    return h


def read_records(root: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Records of a run directory (either schema), sorted by ``KEY``; ``extra`` decoded to dicts."""
    root = Path(root)
    if columns is not None:
        unknown = [c for c in columns if c not in COLUMNS]
        if unknown:
            raise TTCError(f"unknown record column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}")
    want = None if columns is None else list(dict.fromkeys([*columns, *KEY]))
    if read_header(root).get("schema_version") == 1:
        df = _read_v1(root, want)
    else:
        df = _read_v2(root, want)
    df = df.sort_values(KEY, kind="stable").reset_index(drop=True)
    if "extra" in df.columns:  # most records of most strategies have none: "{}" is not parsed
        df["extra"] = [({} if e == "{}" else json.loads(e)) if isinstance(e, str) else (e or {})
                       for e in df["extra"]]
    if columns is not None:
        df = df[list(dict.fromkeys(columns))]
    return df


def _read_v2(root: Path, columns: list[str] | None) -> pd.DataFrame:
    base = root / RECORDS_DIR
    for attempt in range(5):  # a compaction beside us may delete a file between listing and reading
        files = sorted(f for d in sorted(base.iterdir()) if d.is_dir() for f in Shard(d, "").files()) \
            if base.is_dir() else []
        try:
            table = _read_files(files, columns, arrow=True)
            break
        except FileNotFoundError:
            if attempt == 4:
                raise
    # one file per shard (a compacted run) cannot hold a record twice: each write is checked whole
    single = len({f.parent for f in files}) == len(files)
    return (table if single else _dedupe(table)).to_pandas()


def _read_v1(root: Path, columns: list[str] | None) -> pd.DataFrame:
    want = COLUMNS if columns is None else columns
    cols: dict[str, list] = {c: [] for c in want}  # only the columns asked for, never a dict per record
    for s in store_v1.shards(root):
        seen: set[str] = set()
        for pid, recs, lineno in s.iter_problems():
            if pid in seen:
                raise TTCError(f"corrupt shard {s.path} at line {lineno}: problem {pid!r} appears twice")
            seen.add(pid)
            for r in recs:
                for c, values in cols.items():
                    values.append(r.get(c))
    df = pd.DataFrame(cols, columns=want)
    if "verifier_flops" in df.columns:  # records written before verifiers existed
        df["verifier_flops"] = df["verifier_flops"].fillna(0.0)
    for field in ARROW_SCHEMA:  # the same dtypes as a Parquet run's (text columns with missing values)
        if field.name in df.columns and field.type == pa.string() and field.name != "extra":
            df[field.name] = df[field.name].astype(pd.StringDtype(na_value=float("nan")))
    return df


def convert_v1(root: Path, header: dict) -> dict:
    """Rewrite a schema-1 run's complete problems as Parquet (a torn tail is cut and kept as ``.torn``, as
    schema 1 always did), keep the JSONL files under ``samples-v1/``, and mark the header schema 2. Each shard
    streams through a ``ShardWriter`` (one problem in memory at a time), so a run of millions of records
    converts in bounded memory; a corrupt shard is refused before its Parquet file appears."""
    from ttc.store.stream import ShardWriter

    shard_writer = new_writer_id()
    for old in store_v1.shards(root):
        writer = None
        try:
            for _, recs, _ in old.iter_problems(repair=True):
                if writer is None:
                    first = recs[0]
                    writer = ShardWriter(root / RECORDS_DIR / shard_name(first["task"], first["model"],
                                                                         first["sampler"]),
                                         shard_writer, records_table, ARROW_SCHEMA)
                writer.add([SampleRecord(**{k: r[k] for k in COLUMNS if k in r}) for r in recs])
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            writer.close()
    samples = root / store_v1.SAMPLES_DIR
    if samples.is_dir():
        os.replace(samples, root / "samples-v1")
    header = {**header, "schema_version": SCHEMA_VERSION, "converted_from": 1}
    write_json_atomic(root / HEADER, header)
    return header


TEXT_COLUMNS = ("text",)  # what load_run leaves out unless asked: the bulk of a run's bytes, read by people


def load_run(path: str | Path, columns: list[str] | None = None, texts: bool = False) -> pd.DataFrame:
    """The records of a run directory as a DataFrame, one row per completion, sorted by task, model, sampler,
    problem id and sample index.

    By default every column except the completions' ``text`` (answers, grades, token counts, FLOPs, ``extra``):
    what every metric reads, at well under half the memory and time (5M records with ~500-character texts,
    ``benchmarks/bench_load_run.py``: 1.8 GiB peak and 27 s, against 4.6 GiB and 52 s with the texts).
    ``texts=True`` adds ``text``; ``columns`` reads exactly those columns (``"text"`` among them if listed), and
    nothing else.

    The header is available as ``df.attrs["header"]``.
    """
    if columns is None and not texts:
        columns = [c for c in COLUMNS if c not in TEXT_COLUMNS]
    header = read_header(Path(path))
    df = read_records(Path(path), columns)
    df.attrs["header"] = header
    return df


def detach_header(df: pd.DataFrame) -> dict:
    """Take the header out of ``df.attrs`` and return it. pandas deep-copies ``attrs`` into the result of
    nearly every operation (each group of a groupby, each column selected), and a header is a few hundred
    nested values: analysis code detaches it first (25 ms of a small run's 0.3 s finish, and one copy per
    group saved wherever analysis works group by group)."""
    return df.attrs.pop("header", {})

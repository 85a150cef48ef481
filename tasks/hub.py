"""Loading a benchmark's rows: from the Hugging Face hub through ``datasets.load_dataset``, or from a
local ``--data-file`` (``.jsonl``, ``.json``, ``.parquet``, ``.csv``) holding the same columns.

A hub failure (no network, a gated dataset without a token, an unknown id) becomes one ``TTCError`` line
that says how to pass a local file instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ttc.backends.hub import require_hub
from ttc.errors import TTCError, first_line

FILE_TYPES = (".jsonl", ".json", ".parquet", ".csv")


@dataclass(frozen=True)
class HubSource:
    """Where a benchmark lives on the hub, and what it is."""

    hub_id: str
    config: str | None
    split: str
    size: int
    licence: str

    @property
    def source(self) -> str:
        return f"{self.hub_id}" + (f" ({self.config})" if self.config else "")


def read_data_file(path: str | Path) -> list[dict]:
    """Rows of a local JSONL/JSON/Parquet/CSV file; ``TTCError`` if it cannot be read, holds no row, or
    holds a row that is not an object."""
    rows = _read_rows(path)
    if not rows:
        raise TTCError(f"--data-file {path}: no rows")
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise TTCError(f"--data-file {path}: row {n} is a {type(row).__name__}, not an object with named fields")
    return rows


def _read_rows(path: str | Path) -> list:
    p = Path(path)
    if not p.is_file():
        raise TTCError(f"--data-file {path}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".jsonl":
            rows = []
            with open(p, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as e:
                            raise TTCError(f"--data-file {path}: line {n} is not JSON ({e.msg})") from None
            return rows
        if suffix == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
            return data if isinstance(data, list) else data.get("rows") or data.get("data") or [data]
        if suffix in (".parquet", ".csv"):
            import pandas as pd

            df = pd.read_parquet(p) if suffix == ".parquet" else pd.read_csv(p)
            return [{k: _plain(v) for k, v in row.items()} for row in df.to_dict(orient="records")]
    except TTCError:
        raise
    except Exception as e:
        raise TTCError(f"--data-file {path}: cannot read it ({type(e).__name__}: {e})") from None
    raise TTCError(f"--data-file {path}: unsupported type {suffix!r}; use one of {', '.join(FILE_TYPES)}")


def _plain(v):
    """Parquet cells come back as numpy arrays and scalars; make them JSON-like."""
    if hasattr(v, "tolist"):
        return _plain(v.tolist())
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def load_rows(src: HubSource, data_file: str | None = None) -> list[dict]:
    """All rows of the benchmark, in the dataset's order."""
    if data_file:
        return read_data_file(data_file)
    require_hub(f"{src.source} split {src.split!r}", "pass a local copy with --data-file path.jsonl|parquet "
                "(same columns as the hub dataset)")
    try:
        import datasets

        ds = datasets.load_dataset(src.hub_id, src.config, split=src.split)
        return [dict(r) for r in ds]
    except Exception as e:
        reason = first_line(e, 160)
        raise TTCError(f"cannot load {src.source} split {src.split!r} from the Hugging Face hub ({reason}); "
                       f"on an offline machine download it elsewhere and pass it with "
                       f"--data-file path.jsonl|parquet (same columns as the hub dataset)") from None


def require(row: dict, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise TTCError(f"{where}: rows need the columns {', '.join(keys)}; missing {', '.join(missing)} "
                       f"(has {', '.join(sorted(map(str, row))[:12])})")


class HubTask:
    """Shared loading for fixed benchmarks: subclasses set ``name``, ``src``, ``summary``, ``columns``
    and implement ``to_problem(row, index, seed)``. ``load`` keeps the dataset's order, so the first
    ``limit`` problems are the same for every seed (only option shuffles depend on the seed)."""

    name: str
    src: HubSource
    summary: str = ""
    columns: tuple[str, ...] = ()
    takes_data_file = True

    @property
    def description(self) -> str:
        return (f"{self.summary} Source: {self.src.source}, split {self.src.split}, "
                f"{self.src.size} problems, licence {self.src.licence}.")

    source = property(lambda self: self.src.source)
    licence = property(lambda self: self.src.licence)
    split = property(lambda self: self.src.split)
    size = property(lambda self: self.src.size)

    def load(self, limit: int, seed: int, data_file: str | None = None) -> list:
        rows = load_rows(self.src, data_file)
        where = f"--data-file {data_file}" if data_file else self.src.source
        if not rows:
            raise TTCError(f"{where}: no rows")
        problems = []
        for i, row in enumerate(rows[:limit]):
            if not isinstance(row, dict):
                raise TTCError(f"{where}: row {i} is not an object")
            require(row, self.columns, where)
            problems.append(self.to_problem(row, i, seed))
        return problems

    def to_problem(self, row: dict, index: int, seed: int):
        raise NotImplementedError

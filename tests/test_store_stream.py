"""Streaming writes: ShardWriter (one Parquet file per shard, a row group at a time) and schema-1 runs converted
through it one problem at a time."""

import json

import pyarrow.parquet as pq
import pytest

from ttc import load_run
from ttc.errors import TTCError
from ttc.store.records import SampleRecord
from ttc.store.runstore import ARROW_SCHEMA, RunStore, records_table
from ttc.store.stream import ShardWriter
from ttc.store.v1 import JsonlShard


def rec(pid, i, n, text="t"):
    return SampleRecord(task="t", model="m", sampler="s", problem_id=pid, sample_index=i, n_samples=n, text=text,
                        answer="1", answer_strict=None, gold="1", correct=True, prompt_tokens=3, generated_tokens=2,
                        finish_reason="stop", prefill_flops=1.0, decode_flops=2.0, prefill_shared=False, seed=0)


def problem(pid, n=2):
    return [rec(pid, i, n) for i in range(n)]


def writer(tmp_path, rows=4):
    return ShardWriter(tmp_path / "t__m__s", "w1", records_table, ARROW_SCHEMA, rows_per_group=rows)


def test_one_file_in_row_groups(tmp_path):
    with writer(tmp_path) as w:
        for i in range(5):
            w.add(problem(f"p{i}"))
    files = list((tmp_path / "t__m__s").iterdir())
    assert len(files) == 1 and files[0].name.startswith("c-")
    f = pq.ParquetFile(files[0])
    assert f.metadata.num_rows == 10 and f.metadata.num_row_groups == 3  # 4 + 4 + 2 rows
    assert f.read(columns=["problem_id"]).column(0).to_pylist() == [f"p{i // 2}" for i in range(10)]


@pytest.mark.parametrize("order", [["a", "b", "a"], ["a", "a"]])
def test_a_repeated_id_is_refused_and_nothing_is_left(tmp_path, order):
    w = writer(tmp_path, rows=1)
    for pid in order:
        w.add(problem(pid))
    with pytest.raises(TTCError, match="problem id 'a' is given twice"):
        w.close()
    assert list((tmp_path / "t__m__s").iterdir()) == []


def test_an_incomplete_problem_is_refused(tmp_path):
    w = writer(tmp_path)
    with pytest.raises(TTCError, match="do not make up its 3 samples"):
        w.add([rec("a", 0, 3), rec("a", 2, 3)])


def test_an_error_in_the_block_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with writer(tmp_path, rows=1) as w:
            w.add(problem("a"))
            raise RuntimeError("reader failed")
    assert list((tmp_path / "t__m__s").iterdir()) == []


def test_a_killed_writers_temporary_is_one_a_resume_removes(tmp_path):
    """The file being written has ttc's temporary name: once its writer is dead, a resume's clean-up takes it."""
    from ttc.store.atomic import TEMPORARY, remove_stale_temporaries

    w = writer(tmp_path, rows=1)
    w.add(problem("a"))
    assert w.tmp.exists() and TEMPORARY.match(w.tmp.name)
    assert remove_stale_temporaries([w.tmp.parent]) == []  # its writer (this process) is alive
    w.abort()


def write_v1(root, problems, extra_lines=b""):
    root.mkdir(parents=True)
    (root / "header.json").write_text(json.dumps({"schema_version": 1, "config_hash": "h", "models": {}}))
    path = root / "samples" / "t__m__s.jsonl"
    path.parent.mkdir()
    with open(path, "wb") as f:
        for pid, n in problems:
            for r in problem(pid, n):
                f.write(json.dumps(r.to_dict()).encode() + b"\n")
        f.write(extra_lines)
    return path


def test_a_schema_1_run_converts_one_problem_at_a_time(tmp_path):
    root = tmp_path / "old"
    path = write_v1(root, [(f"p{i}", 1 + i % 3) for i in range(300)])
    assert [pid for pid, _, _ in JsonlShard(path).iter_problems()] == [f"p{i}" for i in range(300)]
    old = load_run(root, columns=["problem_id", "sample_index", "correct"])
    RunStore.open(tmp_path, "old", {"config_hash": "h", "schema_version": 2})
    files = list((root / "records" / "t__m__s").glob("*.parquet"))
    assert len(files) == 1  # streamed into one file, nothing left to compact
    new = load_run(root, columns=["problem_id", "sample_index", "correct"])
    assert new.equals(old) and len(new) == sum(1 + i % 3 for i in range(300))


def test_a_repeated_problem_in_a_schema_1_run_is_refused_before_any_parquet(tmp_path):
    root = tmp_path / "old"
    dup = b"".join(json.dumps(r.to_dict()).encode() + b"\n" for r in problem("p0"))
    path = write_v1(root, [("p0", 2), ("p1", 2)], dup)
    before = path.read_bytes()
    with pytest.raises(TTCError, match="appears twice"):
        load_run(root)  # read in place: the line is named
    with pytest.raises(TTCError, match="problem 'p0' appears twice"):  # checked before any conversion
        RunStore.open(tmp_path, "old", {"config_hash": "h", "schema_version": 2})
    assert path.read_bytes() == before
    assert not list((root / "records").rglob("*.parquet"))

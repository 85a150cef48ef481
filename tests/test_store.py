"""The run store: durable Parquet files of whole problems, several writers, compaction, schema-1 runs."""

import json
import multiprocessing
import os

import pandas as pd
import pytest

from ttc.errors import TTCError
from ttc.store.records import SampleRecord
from ttc.store.runstore import RunStore, load_run
from ttc.store.v1 import JsonlShard


def rec(pid, i, n, text=None):
    return SampleRecord(task="t", model="m", sampler="s", problem_id=pid, sample_index=i, n_samples=n,
                        text=text or f"answer {i}", answer=str(i), answer_strict=None, gold="1", correct=i == 1,
                        prompt_tokens=3, generated_tokens=2, finish_reason="stop", prefill_flops=1.0,
                        decode_flops=2.0, prefill_shared=True, seed=0, extra={"score": i / 10})


def problem(pid, n=2):
    return [rec(pid, i, n) for i in range(n)]


def new_store(tmp_path, writer=None):
    root = tmp_path / "run"
    root.mkdir(exist_ok=True)
    (root / "header.json").write_text(json.dumps({"schema_version": 2, "config_hash": "x"}))
    return RunStore(root, writer=writer)


def test_roundtrip_sorted_and_columns(tmp_path):
    store = new_store(tmp_path)
    shard = store.shard("t", "m", "s")
    shard.append_problem(problem("b", 3))
    shard.append_problems([problem("a"), problem("c")])
    assert shard.done() == {"a", "b", "c"}
    df = load_run(store.root)
    assert df["problem_id"].tolist() == ["a", "a", "b", "b", "b", "c", "c"]
    assert df["extra"].iloc[1] == {"score": 0.1}
    assert df.attrs["header"]["config_hash"] == "x"
    few = load_run(store.root, columns=["problem_id", "correct"])
    assert list(few.columns) == ["problem_id", "correct"]
    with pytest.raises(TTCError, match="unknown record column"):
        load_run(store.root, columns=["nope"])
    # plain Parquet: other tools read the run without ttc
    assert len(pd.read_parquet(store.root / "records")) == 7


def test_a_problem_is_written_whole_or_refused(tmp_path):
    shard = new_store(tmp_path).shard("t", "m", "s")
    with pytest.raises(TTCError, match="do not make up"):
        shard.append_problem(problem("a", 3)[:2])
    assert shard.done() == set()


def test_temporary_files_of_a_crashed_write_are_ignored(tmp_path):
    store = new_store(tmp_path)
    shard = store.shard("t", "m", "s")
    shard.append_problem(problem("a"))
    (shard.path / ".w-dead-00000001.parquet.1.abc.tmp").write_bytes(b"PAR1 half a file")
    assert shard.done() == {"a"} and len(load_run(store.root)) == 2


def test_a_problem_stored_twice_is_read_once(tmp_path):
    store_a, store_b = new_store(tmp_path, "a"), new_store(tmp_path, "b")
    store_a.shard("t", "m", "s").append_problem(problem("p"))
    store_b.shard("t", "m", "s").append_problem([rec("p", i, 2, text="other copy") for i in range(2)])
    df = load_run(store_a.root, texts=True)
    assert len(df) == 2 and df["text"].tolist() == ["answer 0", "answer 1"]  # one whole copy, the first file's
    store_b.compact()
    df = load_run(store_a.root, texts=True)
    assert len(df) == 2 and len(list((store_a.root / "records" / "t__m__s").glob("*.parquet"))) == 1


def _write_many(root, writer, pids):
    store = RunStore(root, writer=writer)
    for pid in pids:
        store.shard("t", "m", "s").append_problem(problem(pid, 4))


def test_concurrent_writers_lose_and_duplicate_nothing(tmp_path):
    root = new_store(tmp_path).root
    jobs = [[f"w{w}-{i}" for i in range(30)] + ["shared"] for w in range(4)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(root, f"w{w}", pids)) for w, pids in enumerate(jobs)]
    for p in procs:
        p.start()
    RunStore(root).compact()  # a compaction racing the writers must not lose their files
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    df = load_run(root, texts=True)
    assert df.groupby("problem_id").size().eq(4).all()
    assert set(df["problem_id"]) == {p for pids in jobs for p in pids}
    RunStore(root).compact()
    assert load_run(root, texts=True).equals(df)


def test_own_files_are_compacted_as_they_accumulate(tmp_path, monkeypatch):
    monkeypatch.setattr("ttc.store.runstore.COMPACT_EVERY", 5)
    store = new_store(tmp_path)
    shard = store.shard("t", "m", "s")
    for i in range(12):
        shard.append_problem(problem(f"p{i:02d}"))
    assert len(shard.files()) < 12 and shard.done() == {f"p{i:02d}" for i in range(12)}


def test_lone_surrogates_from_a_server_are_stored_as_replacement_characters(tmp_path):
    store = new_store(tmp_path)
    store.shard("t", "m", "s").append_problem([rec("p", 0, 1, text="bad \ud800 text")])
    assert load_run(store.root, texts=True)["text"].item() == "bad \ufffd text"


def test_header_must_be_an_object(tmp_path):
    (tmp_path / "header.json").write_text("[1, 2]")
    with pytest.raises(TTCError, match="JSON object"):
        load_run(tmp_path)


def write_v1(root, problems, torn=b""):
    root.mkdir(parents=True, exist_ok=True)
    (root / "header.json").write_text(json.dumps({"schema_version": 1, "config_hash": "h", "models": {}}))
    path = root / "samples" / "t__m__s.jsonl"
    path.parent.mkdir()
    with open(path, "wb") as f:
        for pid, n in problems:
            for r in problem(pid, n):
                d = r.to_dict()
                del d["verifier_flops"]  # the oldest schema-1 records lack it
                f.write(json.dumps(d).encode() + b"\n")
        f.write(torn)
    return path


def test_schema_1_runs_load_in_place_and_convert_on_resume(tmp_path):
    root = tmp_path / "old"
    torn = json.dumps(rec("z", 0, 2).to_dict()).encode() + b"\n" + b'{"task": "t", "prob'
    jsonl = write_v1(root, [("a", 2), ("b", 3)], torn)
    before = jsonl.read_bytes()
    old = load_run(root, texts=True)
    assert old["problem_id"].tolist() == ["a", "a", "b", "b", "b"] and (old["verifier_flops"] == 0).all()
    assert jsonl.read_bytes() == before  # reading changes nothing
    store = RunStore.open(tmp_path, "old", {"config_hash": "h", "schema_version": 2})
    assert store.header()["schema_version"] == 2 and store.header()["converted_from"] == 1
    new = load_run(root, texts=True)
    pd.testing.assert_frame_equal(new, old, check_dtype=False)  # answer_strict: all missing, typed as text now
    assert store.shard("t", "m", "s").done() == {"a", "b"}
    kept = root / "samples-v1" / "t__m__s.jsonl"
    assert kept.with_name("t__m__s.jsonl.torn").read_bytes().endswith(b'"prob')  # the torn tail is kept
    assert list(JsonlShard(kept).read()) == ["a", "b"]


@pytest.mark.parametrize("garbage", [b"not json\n", b'{"problem_id": "x"}\n'])
def test_corrupt_schema_1_shard_is_refused_and_untouched(tmp_path, garbage):
    path = write_v1(tmp_path / "old", [("a", 2)])
    with open(path, "ab") as f:
        f.write(garbage)
        for r in problem("b"):
            f.write(json.dumps(r.to_dict()).encode() + b"\n")
    before = path.read_bytes()
    with pytest.raises(TTCError, match="corrupt shard"):
        RunStore.open(tmp_path, "old", {"config_hash": "h", "schema_version": 2})
    assert path.read_bytes() == before


def test_schema_1_scan_is_linear(tmp_path):
    # 20,000 one-sample problems: one pass over the file (the line count is not recounted per line)
    path = write_v1(tmp_path / "big", [(f"p{i}", 1) for i in range(20_000)])
    assert len(JsonlShard(path).read()) == 20_000
    assert os.path.getsize(path) > 0


FIXTURE = __import__("pathlib").Path(__file__).parent / "data" / "schema1-run"


def test_a_run_written_by_the_jsonl_store_summarizes_as_it_did(tmp_path):
    """tests/data/schema1-run was written by the schema-1 store (8 problems x 8 samples, repeated sampling and
    best-of-n with the oracle verifier; its summary.csv computed by the enumerating estimators, exact at
    this size). Loaded in place and after conversion, every value and cost is the same."""
    import shutil

    from samplers import SAMPLERS
    from ttc.metrics.summary import write_summary

    run = tmp_path / FIXTURE.name
    shutil.copytree(FIXTURE, run)
    old = pd.read_csv(FIXTURE / "summary.csv")
    keys = ["sampler", "budget", "metric", "level"]

    def check(summary):
        both = old.merge(summary.astype({"level": str}), on=["task", "model", *keys], suffixes=("_old", ""))
        assert len(both) == len(old) == len(summary)
        assert (both["value"] - both["value_old"]).abs().max() < 1e-9
        assert (both["flops_per_problem"] / both["flops_per_problem_old"] - 1).abs().max() < 1e-12
        assert (both["se"] == 0).all()

    check(write_summary(run, SAMPLERS, plot=False))  # in place: the JSONL files are read, not changed
    assert (run / "samples").is_dir() and not (run / "records").exists()
    header = json.loads((run / "header.json").read_text())
    store = RunStore.open(tmp_path, run.name, {**header, "schema_version": 2})
    assert store.shard("chain_sum", "smollm2-135m", "sample").done() == set(load_run(run)["problem_id"])
    check(write_summary(run, SAMPLERS, plot=False))


def opened(tmp_path, pids=("a", "b")):
    """A run directory as a sweep leaves it: header, records of ``pids``; returns (root, header bytes)."""
    root = tmp_path / "run"
    store = RunStore.open(tmp_path, "run", {"schema_version": 2, "config_hash": "x"})
    for pid in pids:
        store.shard("t", "m", "s").append_problem(problem(pid))
    return root, (root / "header.json").read_bytes()


def snapshot(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_foreign_parquet_file_stops_a_resume_and_is_neither_read_nor_removed(tmp_path):
    root, _ = opened(tmp_path)
    shard_dir = root / "records" / "t__m__s"
    for foreign in (shard_dir / "mine.parquet", root / "records" / "top.parquet"):
        pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_parquet(foreign)
        before = snapshot(root)
        with pytest.raises(TTCError, match=f"{foreign.name} is not a record file written by ttc"):
            RunStore.open(tmp_path, "run", {"schema_version": 2, "config_hash": "x"})
        assert snapshot(root) == before  # not even the header is rewritten
        assert len(load_run(root)) == 4  # readers skip it
        RunStore(root).compact()
        assert foreign.exists()
        foreign.unlink()
    # a file with ttc's name but another tool's columns is not read as records with every value missing
    pd.DataFrame({"a": [1]}).to_parquet(shard_dir / "w-x-00000001.parquet")
    with pytest.raises(TTCError, match="not a ttc record file .*lacks task"):
        RunStore.open(tmp_path, "run", {"schema_version": 2, "config_hash": "x"})
    with pytest.raises(TTCError, match="not a ttc record file"):
        load_run(root)
    (shard_dir / "._c-20260101T000000-x-abcdef.parquet").write_bytes(b"macOS resource fork")  # pyarrow skips these
    (shard_dir / "w-x-00000001.parquet").unlink()
    assert RunStore.open(tmp_path, "run", {"schema_version": 2, "config_hash": "x"}).header()["resumed"] == 1


@pytest.mark.parametrize("damage", [b"PAR1 garbage", b""])
def test_a_refused_resume_changes_nothing_on_disk(tmp_path, damage):
    root, header = opened(tmp_path)
    bad = sorted((root / "records" / "t__m__s").glob("*.parquet"))[0]
    bad.write_bytes(damage)
    before = snapshot(root)
    with pytest.raises(TTCError, match="corrupt record file"):
        RunStore.open(tmp_path, "run", {"schema_version": 2, "config_hash": "x"})
    assert snapshot(root) == before and (root / "header.json").read_bytes() == header


def test_records_or_samples_that_are_not_directories_are_refused(tmp_path):
    root, _ = opened(tmp_path, pids=())
    (root / "records").rmdir()
    (root / "records").write_text("a file")
    with pytest.raises(TTCError, match="records is not a directory"):
        RunStore.open(tmp_path, "run", {"schema_version": 2, "config_hash": "x"})
    old = tmp_path / "old"
    write_v1(old, [("a", 2)])
    (old / "samples" / "t__m__s.jsonl").unlink()
    (old / "samples").rmdir()
    (old / "samples").write_text("a file")  # a schema-1 run whose records are gone: not a run to regenerate
    before = snapshot(old)
    with pytest.raises(TTCError, match="samples is not a directory"):
        RunStore.open(tmp_path, "old", {"config_hash": "h", "schema_version": 2})
    assert snapshot(old) == before


def test_records_without_a_header_are_not_adopted(tmp_path):
    root, _ = opened(tmp_path)
    (root / "header.json").unlink()
    with pytest.raises(TTCError, match="has record files but no header.json"):
        RunStore.open(tmp_path, "run", {"schema_version": 2, "config_hash": "y"})
    assert not (root / "header.json").exists()


def test_a_resume_removes_its_own_stale_temporaries_only(tmp_path):
    from ttc.store.atomic import host_tag

    root, _ = opened(tmp_path)
    shard_dir = root / "records" / "t__m__s"
    dead = 2**22 + 12345  # above any pid this machine hands out (pid_max is at most 2**22)
    stale = [root / f".report.html.{dead}@{host_tag()}.0123abcd.tmp",
             shard_dir / f".w-x-00000003.parquet.{dead}@{host_tag()}.89abcdef.tmp"]
    kept = [root / f".summary.csv.{os.getpid()}@{host_tag()}.0123abcd.tmp",  # a live writer's
            root / f".summary.csv.{dead}@otherhost.0123abcd.tmp",  # another machine's: its writer may be alive
            root / f".curve.png.{dead}.0123abcd.tmp",  # the old naming, written a minute ago
            root / ".notes.tmp", root / "draft.tmp"]  # not ttc's
    for p in stale + kept:
        p.write_bytes(b"half")
    old_style = root / f".problems.csv.{dead}.76543210.tmp"
    old_style.write_bytes(b"half")
    os.utime(old_style, (1, 1))  # an hour and more ago: no write in progress anywhere
    RunStore.open(tmp_path, "run", {"schema_version": 2, "config_hash": "x"})
    assert not any(p.exists() for p in stale + [old_style]) and all(p.exists() for p in kept)


def test_write_atomic_names_its_temporary_with_pid_and_host(tmp_path):
    from ttc.store.atomic import TEMPORARY, host_tag, write_atomic

    seen = []
    write_atomic(tmp_path / "x.csv", lambda tmp: (seen.append(tmp.name), tmp.write_text("1")))
    m = TEMPORARY.match(seen[0])
    assert m and m["name"] == "x.csv" and int(m["pid"]) == os.getpid() and m["host"] == host_tag()
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_load_run_leaves_the_texts_out_unless_asked(tmp_path):
    root, _ = opened(tmp_path)
    df = load_run(root)
    assert "text" not in df.columns and {"answer", "correct", "extra", "decode_flops"} <= set(df.columns)
    assert load_run(root, texts=True)["text"].tolist() == ["answer 0", "answer 1"] * 2
    assert load_run(root, columns=["problem_id", "text"])["text"].tolist() == ["answer 0", "answer 1"] * 2
    assert df.equals(load_run(root, texts=True).drop(columns="text"))


def test_a_file_given_as_a_run_is_a_read_error_not_a_write_error(tmp_path):
    f = tmp_path / "README.md"
    f.write_text("# notes")
    with pytest.raises(TTCError, match="README.md is not a run directory .it is a file."):
        load_run(f)


def test_an_unused_new_run_directory_is_discarded_and_nothing_else(tmp_path):
    from ttc.store.runstore import discard_unused

    out = tmp_path / "runs"
    RunStore.open(out, "new", {"schema_version": 2, "config_hash": "x"})
    (out / "new" / ".lock").write_text("1 host\n")
    assert discard_unused(out / "new", [out, out / "new"]) and not out.exists()
    store = RunStore.open(out, "used", {"schema_version": 2, "config_hash": "x"})
    store.shard("t", "m", "s").append_problem(problem("a"))
    assert not discard_unused(out / "used", [out, out / "used"]) and len(load_run(out / "used")) == 2
    RunStore.open(out, "logged", {"schema_version": 2, "config_hash": "x"})
    (out / "logged" / "server.log").write_text("why the server did not start")
    assert not discard_unused(out / "logged", [out / "logged"]) and (out / "logged" / "server.log").exists()
    RunStore.open(out, "resumed", {"schema_version": 2, "config_hash": "x"})
    assert not discard_unused(out / "resumed", []) and (out / "resumed" / "header.json").exists()

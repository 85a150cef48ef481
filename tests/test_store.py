"""Run store durability: torn tails are cut and kept, corruption is refused, nothing is lost."""

import json

import pytest

from ttc.errors import TTCError
from ttc.records import SampleRecord
from ttc.store import Shard


def rec(pid, i, n):
    return SampleRecord(task="t", model="m", sampler="s", problem_id=pid, sample_index=i, n_samples=n,
                        text=f"answer {i}", answer=str(i), answer_strict=None, gold="1", correct=i == 1,
                        prompt_tokens=3, generated_tokens=2, finish_reason="stop", prefill_flops=1.0,
                        decode_flops=2.0, prefill_shared=True, seed=0)


def write(shard, pid, n=2):
    shard.append_problem([rec(pid, i, n) for i in range(n)])


def test_roundtrip(tmp_path):
    shard = Shard(tmp_path / "s.jsonl")
    write(shard, "a")
    write(shard, "b")
    got = shard.scan()
    assert list(got) == ["a", "b"]
    assert [r["sample_index"] for r in got["b"]] == [0, 1]


def test_torn_line_is_cut_and_kept(tmp_path):
    shard = Shard(tmp_path / "s.jsonl")
    write(shard, "a")
    good = shard.path.read_bytes()
    with open(shard.path, "ab") as f:  # a crash in the middle of writing problem b
        f.write(json.dumps(rec("b", 0, 2).to_dict()).encode() + b"\n" + b'{"task": "t", "prob')
    assert list(shard.scan()) == ["a"]
    assert shard.path.read_bytes() != good  # scanning without repair changes nothing
    assert list(shard.scan(repair=True)) == ["a"]
    assert shard.path.read_bytes() == good
    torn = shard.path.with_name("s.jsonl.torn").read_bytes()
    assert torn.startswith(b'{"task"') and torn.endswith(b'"prob')
    write(shard, "b")
    assert list(shard.scan()) == ["a", "b"]


@pytest.mark.parametrize("garbage", [b"not json\n", b'{"problem_id": "x"}\n'])
def test_corrupt_middle_is_refused(tmp_path, garbage):
    shard = Shard(tmp_path / "s.jsonl")
    write(shard, "a")
    with open(shard.path, "ab") as f:
        f.write(garbage)
    write(shard, "b")
    before = shard.path.read_bytes()
    with pytest.raises(TTCError, match="corrupt shard"):
        shard.scan(repair=True)
    assert shard.path.read_bytes() == before


def test_duplicate_problem_is_refused(tmp_path):
    shard = Shard(tmp_path / "s.jsonl")
    write(shard, "a")
    write(shard, "a")
    with pytest.raises(TTCError, match="appears twice"):
        shard.scan()

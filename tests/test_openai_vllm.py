"""The openai backend against vLLM's real OpenAI-compatible server on 127.0.0.1, and ``--serve``."""

from __future__ import annotations

import json
import socket
from collections import Counter
from pathlib import Path

import pytest
from conftest import run_records
from test_backend_vllm import CHAT, OTHER

from ttc.backends.base import GenParams
from ttc.cli.run import main

pytestmark = pytest.mark.vllm

# The server runs its engine in a child process; 1 GiB of KV cache, both cores for the model.
SERVER_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
SERVER_ARGS = {"enforce_eager": True, "max_model_len": 512, "dtype": "float32", "enable_chunked_prefill": False}


@pytest.fixture(scope="module")
def server(vllm_tiny_dir, tmp_path_factory):
    from ttc.backends.server import LocalServer

    mp = pytest.MonkeyPatch()
    for k, v in SERVER_ENV.items():
        mp.setenv(k, v)
    srv = LocalServer(vllm_tiny_dir, vllm_tiny_dir, SERVER_ARGS, tmp_path_factory.mktemp("server") / "server.log").start()
    yield srv
    srv.stop()
    mp.undo()


@pytest.fixture(scope="module")
def ob(server, vllm_tiny_dir):
    from ttc.backends.openai import OpenAIBackend

    return OpenAIBackend(vllm_tiny_dir, server.base_url, timeout=120)


@pytest.fixture(scope="module")
def hf(vllm_tiny_dir):
    from ttc.backends.hf import HFBackend

    return HFBackend(vllm_tiny_dir, dtype="float32", device="cpu")


def test_n_seed_token_counts_and_finish_reasons(ob, hf):
    params = GenParams(temperature=1.0, max_tokens=24, seed=5, logprobs=True)
    a = ob.generate([CHAT, "12+30="], params, 6)
    assert [len(c) for c in a] == [6, 6]
    assert ob.generate([CHAT, "12+30="], params, 6) == a  # the seed reproduces the samples
    for prompt, comps in zip([CHAT, "12+30="], a):
        assert {c.prompt_tokens for c in comps} == {len(hf.encode(prompt))}  # usage counts the prompt once
        assert len({c.text for c in comps}) > 1
        for c in comps:
            assert len(c.logprobs) == c.generated_tokens <= 24
            assert c.finish_reason in ("stop", "length")
            if c.finish_reason == "length":
                assert c.generated_tokens == 24
    assert ob.info.identity["server"]["version"] and ob.info.identity["server"]["max_model_len"] == 512


def test_greedy_and_stop_match_the_transformers_backend(ob, hf):
    params = GenParams(temperature=0.0, max_tokens=30, seed=0)
    (free,), (ref,) = ob.generate([OTHER], params, 1)[0], hf.generate([OTHER], params, 1)[0]
    assert (free.text, free.prompt_tokens, free.generated_tokens) == (ref.text, ref.prompt_tokens, ref.generated_tokens)
    stop = GenParams(temperature=0.0, max_tokens=30, seed=0, stop=(free.text[len(free.text) // 2],))
    (v,), (h,) = ob.generate([OTHER], stop, 1)[0], hf.generate([OTHER], stop, 1)[0]
    assert v == h and v.finish_reason == "stop" and v.stop_reason == stop.stop[0]
    assert len(ob.generate([OTHER], params, 3)[0]) == 3  # greedy with n > 1: one request, repeated


def run_dir(out: Path) -> Path:
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


SWEEP = ["--task", "chain_sum", "--limit", "6", "--budget", "1,2,4", "--max-tokens", "24", "--no-progress"]


def test_sweep_through_the_server(server, vllm_tiny_dir, tmp_path, capsys):
    argv = ["--backend", "openai", "--base-url", server.base_url, "--model", vllm_tiny_dir, *SWEEP,
            "--out", str(tmp_path)]
    assert main(argv) == 0
    run = run_dir(tmp_path)
    assert {p.name for p in run.iterdir()} >= {"header.json", "records", "summary.csv", "curve.png"}
    recs = run_records(run)
    assert len(recs) == 24 and set(Counter(r["problem_id"] for r in recs).values()) == {4}
    assert all(r["prefill_shared"] and r["generated_tokens"] >= 1 for r in recs)
    header = json.loads((run / "header.json").read_text())
    assert header["models"][vllm_tiny_dir]["identity"]["base_url"] == server.base_url
    # A wrong model name is a one-line error naming what the server serves.
    capsys.readouterr()
    assert main([*argv[:4], "--model", "org/other-model", *argv[6:]]) == 2
    err = capsys.readouterr().err
    assert "serves" in err and "org/other-model" in err and len(err.strip().splitlines()) == 1


def test_serve_runs_a_sweep_and_stops_the_server(vllm_tiny_dir, tmp_path, monkeypatch):
    for k, v in SERVER_ENV.items():
        monkeypatch.setenv(k, v)
    flags = [x for k, v in SERVER_ARGS.items() if k != "dtype" for x in ("--engine-arg", f"{k}={json.dumps(v)}")]
    assert main(["--backend", "openai", "--serve", "--model", vllm_tiny_dir, "--dtype", "float32", *flags,
                 *SWEEP, "--concurrency", "3", "--out", str(tmp_path)]) == 0
    run = run_dir(tmp_path)
    recs = run_records(run)
    assert len(recs) == 24 and set(Counter(r["problem_id"] for r in recs).values()) == {4}
    header = json.loads((run / "header.json").read_text())
    identity = header["models"][vllm_tiny_dir]["identity"]
    assert identity["backend"] == "openai" and identity["server"]["version"]
    port = int(identity["base_url"].rsplit(":", 1)[1].split("/")[0])
    assert (run / "server.log").exists() and {p.name for p in run.iterdir()} >= {"summary.csv", "curve.png"}
    with socket.socket() as s:  # the server is gone
        s.settimeout(5)
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_sweep_through_a_faulty_proxy_loses_nothing(server, vllm_tiny_dir, tmp_path):
    """5xx, resets, stalls and truncated bodies between ttc and the real server: the sweep completes with
    every problem's samples stored once."""
    from faultproxy import FaultProxy

    from ttc import load_run

    flags = ["--backend", "openai", "--model", vllm_tiny_dir, *SWEEP, "--retries", "20", "--request-timeout", "15"]
    faults = ["500", "reset", "stall", "truncate"]
    with FaultProxy(server.base_url, rate=0.3, seed=2, stall_s=60, script=faults) as proxy:
        assert main([*flags, "--base-url", proxy.url, "--out", str(tmp_path / "faulty")]) == 0
    assert set(proxy.injected) == {"500", "reset", "stall", "truncate"}
    assert main([*flags, "--base-url", server.base_url, "--out", str(tmp_path / "direct")]) == 0
    faulty, direct = (load_run(run_dir(tmp_path / d), texts=True) for d in ("faulty", "direct"))
    keys = ["problem_id", "sample_index"]
    assert len(faulty) == 24 and not faulty.duplicated(keys).any()
    assert faulty[keys].equals(direct[keys])
    assert (faulty["generated_tokens"] >= 1).all()

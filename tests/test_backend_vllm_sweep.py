"""A whole ``python -m ttc.run`` sweep through the vllm backend makes the same kind of run directory as
the transformers backend, resumes, and records the engine in the header."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import run_records
from test_backend_vllm import CPU_ENGINE_ARGS, cpu_env

from ttc.cli.run import main

pytestmark = pytest.mark.vllm

SWEEP = ["--task", "chain_sum", "--limit", "6", "--budget", "1,2,4", "--max-tokens", "24", "--no-progress"]


def engine_flags(args: dict) -> list[str]:
    return [x for k, v in args.items() for x in ("--engine-arg", f"{k}={json.dumps(v)}")]


def run_dir(out: Path) -> Path:
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


def test_vllm_sweep_makes_the_same_kind_of_run_directory_as_hf(vllm_tiny_dir, tmp_path, capsys):
    cpu_env()
    common = ["--model", vllm_tiny_dir, "--dtype", "float32", *SWEEP]
    assert main([*common, "--out", str(tmp_path / "hf")]) == 0
    assert main([*common, "--backend", "vllm", *engine_flags(CPU_ENGINE_ARGS), "--out", str(tmp_path / "vllm")]) == 0
    hf, vl = run_dir(tmp_path / "hf"), run_dir(tmp_path / "vllm")
    assert sorted(p.name for p in hf.iterdir()) == sorted(p.name for p in vl.iterdir())
    assert sorted(p.name for p in (hf / "records").iterdir()) == sorted(p.name for p in (vl / "records").iterdir())
    h_recs = run_records(hf)
    v_recs = run_records(vl)
    assert len(v_recs) == len(h_recs) == 6 * 4
    assert set(v_recs[0]) == set(h_recs[0])
    assert set(Counter(r["problem_id"] for r in v_recs).values()) == {4}
    # The same prompt tokens reach both engines; each sample's tokens and FLOPs are costed the same way.
    prompt_len = {r["problem_id"]: r["prompt_tokens"] for r in h_recs}
    assert all(r["prompt_tokens"] == prompt_len[r["problem_id"]] for r in v_recs)
    assert all(r["prefill_shared"] and 1 <= r["generated_tokens"] <= 24 for r in v_recs)
    header = json.loads((vl / "header.json").read_text())
    identity = header["models"][vllm_tiny_dir]["identity"]
    assert identity["backend"] == "vllm" and identity["vllm_version"]
    assert identity["engine_args"]["enforce_eager"] is True and identity["engine_args"]["enable_prefix_caching"]
    assert header["config"]["backend"]["engine_args"] == CPU_ENGINE_ARGS
    assert header["models"][vllm_tiny_dir]["spec"] == json.loads((hf / "header.json").read_text())[
        "models"][vllm_tiny_dir]["spec"]

    # Re-running resumes: nothing is generated again and the records stay as they were.
    snapshot = {p.name: p.read_bytes() for p in (vl / "records").rglob("*.parquet")}
    capsys.readouterr()
    assert main([*common, "--backend", "vllm", *engine_flags(CPU_ENGINE_ARGS), "--out", str(tmp_path / "vllm")]) == 0
    assert {p.name: p.read_bytes() for p in (vl / "records").rglob("*.parquet")} == snapshot
    assert json.loads((vl / "header.json").read_text())["resumed"] == 1


@pytest.mark.parametrize("sampler", ["best_of_n", "beam", "budget_forcing"])
def test_strategies_run_on_vllm(vllm_tiny_dir, tmp_path, sampler):
    """The strategies beyond repeated sampling use render, count_tokens and continuation_logprobs."""
    cpu_env()
    argv = ["--model", vllm_tiny_dir, "--dtype", "float32", "--backend", "vllm", *engine_flags(CPU_ENGINE_ARGS),
            "--sampler", sampler, "--task", "chain_sum", "--limit", "2", "--budget", "1,2", "--max-tokens", "16",
            "--no-progress", "--out", str(tmp_path)]
    if sampler == "budget_forcing":  # the flags only budget forcing reads (any other sweep refuses them)
        argv += ["--think-budget", "4,8", "--answer-tokens", "8"]
    assert main(argv) == 0
    recs = run_records(run_dir(tmp_path))
    assert len({r["problem_id"] for r in recs}) == 2 and all(r["sampler"] == sampler for r in recs)


def test_a_vllm_sweep_joins_problems_at_the_same_engine_steps_on_every_run(vllm_tiny_dir, tmp_path):
    """The runner steps the engine and lets requests join only while no problem runs, in problem order:
    every problem's first request joins the first step, and two runs of a multi-round strategy whose
    verifier reads log-probabilities (self-judge) make the same sequence of additions and steps, so the
    same records."""
    from ttc.backends.vllm import VLLMBackend
    from ttc.store.runstore import load_run
    from ttc.sweep.config import RunConfig, SamplingConfig, StrategyConfig, SweepConfig
    from ttc.sweep.runner import run_sweep

    cpu_env()
    events = []

    def factory(model, config):
        backend = VLLMBackend(model, dtype="float32", engine_args=CPU_ENGINE_ARGS)
        engine = backend.llm.llm_engine
        add, step = engine.add_request, engine.step
        log = []
        events.append(log)

        def logged_add(rid, prompt, params, *a, **kw):
            log.append(("add", tuple(prompt["prompt_token_ids"][-3:])))
            return add(rid, prompt, params, *a, **kw)

        def logged_step():
            log.append(("step",))
            return step()

        engine.add_request, engine.step = logged_add, logged_step
        return backend

    def sweep(out):
        config = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=(vllm_tiny_dir,), budgets=(1, 2),
                                             samplers=("beam",), limit=4),
                           sampling=SamplingConfig(max_tokens=16),
                           strategy=StrategyConfig(beam_width=2, max_steps=3, verifier="self-judge"),
                           out=str(out))
        return load_run(run_sweep(config, backend_factory=factory, progress=False).root, texts=True)

    first, second = sweep(tmp_path / "a"), sweep(tmp_path / "b")
    assert events[0] == events[1]
    adds_before_first_step = events[0].index(("step",))
    assert adds_before_first_step >= 4  # every problem's first call, before the engine steps at all
    assert first.drop(columns=["run_id"], errors="ignore").equals(second.drop(columns=["run_id"], errors="ignore"))

"""Every strategy end to end through the runner and the CLI: the tiny fixture model, then the embedded one."""

import dataclasses
import json

import pandas as pd
import pytest

from ttc.metrics.flops import decode_flops
from ttc.store.runstore import load_run
from ttc.sweep.config import RunConfig, SamplingConfig, StrategyConfig, SweepConfig
from ttc.sweep.runner import run_sweep

STRATEGIES = ("sample", "best_of_n", "budget_forcing", "beam", "dvts")


def test_all_strategies_in_one_sweep_on_the_tiny_model(tiny_model_dir, tmp_path):
    from ttc.backends.hf import HFBackend

    loads = []

    def factory(model, config):
        loads.append(model)
        return HFBackend(model, device="cpu")

    config = RunConfig(sweep=SweepConfig(models=(tiny_model_dir,), samplers=STRATEGIES, budgets=(1, 2), limit=2),
                       sampling=SamplingConfig(max_tokens=16),
                       strategy=StrategyConfig(verifier="self-judge", think_budgets=(4, 8), chains=2, max_steps=3,
                                               answer_tokens=8),
                       out=str(tmp_path))
    store = run_sweep(config, backend_factory=factory, progress=False)
    df = load_run(store.root)
    assert set(df["sampler"]) == set(STRATEGIES)
    summary = pd.read_csv(store.root / "summary.csv")
    if "level" in summary:  # overall rows only
        summary = summary[summary["level"].astype(str) == "all"]
    assert set(summary["sampler"]) == set(STRATEGIES)
    assert (summary["flops_per_problem"] > 0).all()
    # the self-judge's passes are stored with every scored record, and nowhere else
    scored = df[df["sampler"].isin(["best_of_n", "beam", "dvts"])]
    assert (scored["verifier_flops"] > 0).all()
    assert (df[df["sampler"].isin(["sample", "budget_forcing"])]["verifier_flops"] == 0).all()
    # best_of_n's records cost one plain decode each; its budgets add the verifier on top
    bon = df[df["sampler"] == "best_of_n"]
    assert list(bon["decode_flops"]) == [decode_flops(store_spec(store), p, g)
                                          for p, g in zip(bon["prompt_tokens"], bon["generated_tokens"])]
    s = summary[(summary["sampler"] == "best_of_n") & (summary["metric"] == "best@k")].set_index("budget")
    per_problem = bon.groupby("problem_id").apply(
        lambda g: g["prefill_flops"].iloc[0] + 2 * g["decode_flops"].mean() + 2 * g["verifier_flops"].mean())
    assert s.loc[2, "flops_per_problem"] == pytest.approx(per_problem.mean())
    # budget_forcing's budget axis is its thinking caps; search writes one record per final path per budget
    assert set(summary[summary["sampler"] == "budget_forcing"]["budget"]) == {4, 8}
    beam = df[df["sampler"] == "beam"]
    assert sorted(e["budget"] for e in beam[beam["problem_id"] == beam["problem_id"].iloc[0]]["extra"]) == [1, 2, 2]

    # resuming finds every problem done: no backend is even loaded
    loads.clear()
    run_sweep(config, backend_factory=factory, progress=False)
    assert loads == [] and len(load_run(store.root)) == len(df)


def test_lockstep_groups_change_no_record_where_decoding_ignores_the_batch(tiny_model_dir, tmp_path):
    """Every strategy, the problems run one at a time and then in one lock-step group whose rounds share
    batches: in float32 the tiny model samples a row's tokens the same whatever shares its batch (its
    log-probabilities agree to rounding), so the records are the same, while the group made fewer, larger
    backend calls."""
    from ttc.backends.hf import HFBackend

    calls = {}

    def factory(concurrency):
        def make(model, config):
            backend = HFBackend(model, dtype="float32", device="cpu", concurrency=concurrency)
            batch = backend.generate_requests

            def counted(requests):
                calls[concurrency] = calls.get(concurrency, 0) + 1
                return batch(requests)

            backend.generate_requests = counted
            return backend
        return make

    config = RunConfig(sweep=SweepConfig(models=(tiny_model_dir,), samplers=("sample", "budget_forcing", "beam"),
                                         budgets=(1, 2), limit=3),
                       sampling=SamplingConfig(max_tokens=12),
                       strategy=StrategyConfig(think_budgets=(4, 8), chains=2, max_steps=3, answer_tokens=4))
    one = run_sweep(dataclasses.replace(config, out=str(tmp_path / "one")), backend_factory=factory(1),
                    progress=False)
    group = run_sweep(dataclasses.replace(config, out=str(tmp_path / "group")), backend_factory=factory(9),
                      progress=False)
    a, b = load_run(one.root, texts=True), load_run(group.root, texts=True)
    assert a.drop(columns="extra").equals(b.drop(columns="extra"))  # texts, tokens, answers, FLOPs
    for x, y in zip(a["extra"], b["extra"]):  # a search's scores are mean log-probs: equal to rounding
        assert x.keys() == y.keys()
        assert all(x[k] == pytest.approx(y[k], rel=1e-6) if isinstance(x[k], float) else x[k] == y[k] for k in x)
    assert calls[9] < calls[1] / 2


def store_spec(store):
    from ttc.metrics.flops import ModelSpec

    header = json.loads((store.root / "header.json").read_text())
    (model,) = header["models"].values()
    return ModelSpec(**model["spec"])


@pytest.mark.slow
def test_cli_sweeps_every_strategy_on_the_embedded_model(tmp_path, capsys):
    from ttc.cli.run import main

    rc = main(["--model", "smollm2-135m", "--task", "chain_sum", "--sampler",
               "sample,best_of_n,budget_forcing,beam,dvts", "--budget", "1,2", "--limit", "1",
               "--max-tokens", "48", "--think-budget", "16,32", "--chains", "1", "--max-steps", "4",
               "--verifier", "self-logprob", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    (run_dir,) = tmp_path.iterdir()
    summary = pd.read_csv(run_dir / "summary.csv")
    if "level" in summary:
        summary = summary[summary["level"].astype(str) == "all"]
    assert set(summary["sampler"]) == {"sample", "best_of_n", "budget_forcing", "beam", "dvts"}
    assert {"maj@k", "best@k", "wmaj@k", "acc", "control", "scaling"} <= set(summary["metric"])
    assert (summary["flops_per_problem"] > 0).all()
    df = load_run(run_dir)
    forced = df[df["sampler"] == "budget_forcing"]
    assert (forced["generated_tokens"] >= 1).all()
    assert all(e["think_tokens"] <= e["think_budget"] for e in forced["extra"])
    out = capsys.readouterr().out
    assert "budget_forcing" in out and "beam" in out


@pytest.mark.slow
def test_self_judge_best_of_n_on_the_embedded_model(tmp_path):
    from ttc.cli.run import main

    rc = main(["--model", "smollm2-135m", "--task", "chain_sum", "--sampler", "best_of_n", "--budget", "1,2",
               "--limit", "1", "--max-tokens", "32", "--verifier", "self-judge", "--out", str(tmp_path),
               "--no-progress"])
    assert rc == 0
    df = load_run(next(tmp_path.iterdir()))
    scores = [e["score"] for e in df["extra"]]
    assert all(0 < s < 1 for s in scores)
    assert (df["verifier_flops"] > df["prefill_flops"]).all()  # the judge reads the question and the answer

"""The compute-optimal policy: bins, cross-fitting, the FLOPs ratio by hand, and a stored run end to end."""

import re
import zlib

import numpy as np
import pandas as pd
import pytest

from ttc.analysis.policy import (
    Configs,
    compute_optimal_policy,
    config_matrix,
    difficulty_scores,
    quantile_bins,
    reach_flops,
)
from ttc.backends.fake import FakeBackend
from ttc.store.records import Completion
from ttc.sweep.config import RunConfig, SweepConfig
from ttc.sweep.runner import run_sweep


def two_level_configs(n=40):
    """Half the problems easy (solved at budget 1), half hard (solved only at budget 4); FLOPs = budget."""
    easy = np.arange(n) < n // 2
    table = pd.DataFrame(dict(sampler=["s", "s"], metric=["maj@k", "maj@k"], budget=[1, 4]))
    table["strategy"] = "s maj@k"
    values = np.stack([easy.astype(float), np.ones(n)], axis=1)
    flops = np.tile([1.0, 4.0], (n, 1))
    return Configs(np.array([f"p{i}" for i in range(n)]), table, values, flops), easy.astype(float)


def test_quantile_bins_keep_ties_together_and_order_by_score():
    fit = np.array([0, 0, 0, 0, 0, 0, 0.25, 0.5, 0.75, 1.0])
    b = quantile_bins(fit, fit, 5)
    assert len(set(b[:6])) == 1  # six problems at pass@1 = 0 share one bin
    assert np.all(np.diff(b) >= 0) and b[-1] > b[0]
    # a test score between fitted values lands between their bins; a constant score gives one bin
    assert b[6] <= quantile_bins(fit, np.array([0.3]), 5)[0] <= b[7]
    assert set(quantile_bins(np.ones(5), np.ones(5), 5)) == {0}


def test_policy_by_hand_oracle_bins_need_fewer_flops():
    cfg, easy = two_level_configs()
    r = compute_optimal_policy(cfg, {"oracle": easy}, n_bins=2, n_boot=20, seed=1)
    rat = r.ratios.set_index("policy")
    # best single strategy: budget 4 for every problem, accuracy 1 at 4 FLOPs. With oracle bins the easy
    # half takes budget 1 and the hard half budget 4: accuracy 1 at (1 + 4) / 2 = 2.5 FLOPs, ratio 1.6.
    assert rat.loc["oracle bins", "target_accuracy"] == pytest.approx(1.0)
    assert rat.loc["oracle bins", "flops_best_single"] == pytest.approx(4.0)
    assert rat.loc["oracle bins", "flops_policy"] == pytest.approx(2.5)
    assert rat.loc["oracle bins", "flops_ratio"] == pytest.approx(1.6)
    assert rat.loc["no bins", "flops_ratio"] == pytest.approx(1.0)  # without bins it is the single strategy
    # a replicate with easy share e has ratio 4 / (e + 4 (1 - e)): the CI brackets 1.6, above 1
    assert 1.0 < rat.loc["oracle bins", "ratio_low"] < 1.6 < rat.loc["oracle bins", "ratio_high"] < 4.0
    top = r.curves[r.curves["curve"] == "oracle bins"].iloc[-1]
    assert top["accuracy"] == pytest.approx(1.0) and top["flops"] == pytest.approx(2.5)
    top_budget = r.curves["budget_flops"].max()
    ch = r.choices[(r.choices["policy"] == "oracle bins") & (r.choices["budget_flops"] == top_budget)]
    assert dict(zip(ch["bin"], ch["budget"])) == {1: 4, 2: 1}  # hardest bin first


def test_cross_fitting_is_out_of_sample():
    """Pure-noise values (each configuration right half the time): picking the best configuration
    in-sample looks better than chance; the cross-fitted policy stays at chance on average."""
    n, c = 60, 12
    table = pd.DataFrame(dict(sampler=[f"s{j}" for j in range(c)], metric="maj@k", budget=1))
    table["strategy"] = table["sampler"] + " maj@k"
    cross, in_sample = [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        values = rng.integers(0, 2, size=(n, c)).astype(float)
        cfg = Configs(np.arange(n).astype(str), table, values, np.ones((n, c)))
        r = compute_optimal_policy(cfg, {"oracle": rng.random(n)}, n_bins=2, n_boot=0, seed=seed)
        cross.append(r.curves[r.curves["curve"] == "oracle bins"]["accuracy"].iloc[-1])
        in_sample.append(values.mean(axis=0).max())
    assert abs(np.mean(cross) - 0.5) < 0.04
    assert np.mean(in_sample) > np.mean(cross) + 0.08


def test_reach_flops_interpolates_and_reports_never():
    assert reach_flops(0.5, np.array([1.0, 100.0]), np.array([0.0, 1.0])) == pytest.approx(10.0)
    assert np.isnan(reach_flops(0.9, np.array([1.0, 2.0]), np.array([0.1, 0.2])))


def test_too_few_problems_for_the_bins_is_an_error():
    cfg, easy = two_level_configs(n=6)
    with pytest.raises(Exception, match="bins"):
        compute_optimal_policy(cfg, {"oracle": easy}, n_bins=5, n_boot=0)


EXPR = re.compile(r"problem: ([-+\d\s]+)=")


class ConfidentFake(FakeBackend):
    """Right with a per-problem probability; the log-probability of every token grows with it."""

    def __init__(self):
        super().__init__(self.solve)

    @staticmethod
    def p(prompt):
        m = EXPR.search(prompt)
        return 0.05 + 0.9 * (zlib.crc32(m.group(1).encode()) % 100) / 100 if m else 0.0

    def solve(self, prompt, rng):
        m = EXPR.search(prompt)
        value = eval(m.group(1))  # digits, spaces, + and - only (the regex admits nothing else)
        answer = value if rng.random() < self.p(prompt) else value + rng.choice([-2, -1, 1, 2])
        return f"The answer is \\boxed{{{answer}}}"

    def generate(self, prompts, params, n):
        out = super().generate(prompts, params, n)
        if not params.logprobs:
            return out
        res = []
        for prompt, comps in zip(prompts, out):
            lp = float(np.log(self.p(prompt[-1]["content"] if isinstance(prompt, list) else prompt)))
            res.append([Completion(c.text, c.prompt_tokens, c.generated_tokens, c.finish_reason,
                                   (lp,) * c.generated_tokens) for c in comps])
        return res


@pytest.fixture(scope="module")
def policy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    cfg = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=("smollm2-135m",),
                                      samplers=("sample", "best_of_n"), budgets=(1, 2, 4, 8), limit=24),
                    out=str(out))
    return run_sweep(cfg, backend_factory=lambda m, c: ConfidentFake(), progress=False).root


def test_policy_from_a_stored_run(policy_run):
    from ttc.analysis.policy import policy_from_runs
    from ttc.store.runstore import load_run

    r, cfg, diff = policy_from_runs([policy_run], n_bins=3, n_boot=20)
    assert set(cfg.table["strategy"]) == {"sample maj@k", "best_of_n best@k", "best_of_n wmaj@k", "best_of_n maj@k"}
    # the predicted score is the stored mean log-probability, which this backend ties to the solve rate
    assert diff["predicted"].notna().all()
    assert np.corrcoef(diff["predicted"], diff["oracle"])[0, 1] > 0.5
    assert set(r.ratios["policy"]) == {"no bins", "oracle bins", "predicted bins"}
    assert r.n_problems == 24
    # difficulty comes from the sample sampler's records (no gold beyond grading is read)
    df = load_run(policy_run)
    s = df[df["sampler"] == "sample"].groupby("problem_id")["correct"].mean()
    assert np.allclose(diff["oracle"], s.loc[diff.index])
    # a problem held by two runs is read once (from the first)
    _, cfg2, diff2 = policy_from_runs([policy_run, policy_run], n_bins=3, n_boot=0)
    assert len(cfg2.problems) == 24 and np.allclose(diff2["oracle"], diff["oracle"])


def test_fit_cli_policy(policy_run, capsys, tmp_path):
    from ttc.cli.analysis import fit_main

    assert fit_main([str(policy_run), "--policy", "--bins", "3", "--n-boot", "10",
                     "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "compute-optimal policy" in out and "flops_ratio" in out and "oracle bins" in out
    assert (tmp_path / "policy.png").exists()


def test_config_matrix_keeps_problems_every_configuration_scored():
    pp = pd.DataFrame(dict(task="t", model="m", sampler=["a", "a", "b"], problem_id=["1", "2", "1"],
                           budget=1, metric="maj@k", value=[1.0, 0.0, 1.0], flops=1.0))
    with pytest.raises(Exception, match="at least 4"):
        config_matrix(pp)
    recs = pd.DataFrame(dict(sampler="sample", problem_id=["1", "1"], sample_index=[0, 1], correct=[True, False],
                             extra=[{}, {}], decode_flops=1.0, prefill_flops=1.0))
    d = difficulty_scores(recs, ["1"])
    assert d.loc["1", "oracle"] == 0.5 and np.isnan(d.loc["1", "predicted"])


def test_too_few_problems_per_bin_and_half_is_said():
    from ttc.analysis.policy import MIN_PER_BIN, min_problems

    assert MIN_PER_BIN == 10 and min_problems(5) == 100 and min_problems(2) == 40 and min_problems(1) == 20
    cfg, easy = two_level_configs(n=8)
    r = compute_optimal_policy(cfg, {"oracle": easy}, n_bins=2, n_boot=0)
    assert len(r.notes) == 1 and "8 problems" in r.notes[0] and "40 problems for 2 bins" in r.notes[0]
    cfg, easy = two_level_configs(n=40)
    assert compute_optimal_policy(cfg, {"oracle": easy}, n_bins=2, n_boot=0).notes == ()


def test_fit_cli_policy_warns_below_the_minimum(policy_run, capsys, tmp_path):
    from ttc.cli.analysis import fit_main

    assert fit_main([str(policy_run), "--policy", "--bins", "3", "--n-boot", "0", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("warning: 24 problems give about 4 per difficulty bin") and "(60 problems" in out[1]

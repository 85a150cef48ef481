"""``ttc compare``: two tiny runs with hand-chosen correctness, one swept by ttc (scripted backend) and one imported
from another harness's log, sharing four problems: the table's values against hand-computed ones, the figure as a
PNG that decodes (no browser), the problems whose verdict differs, and the refusals."""

from __future__ import annotations

import collections

import numpy as np
import pandas as pd
import pytest

from tasks import get_task, load_problems
from ttc.analysis import compare as cmp
from ttc.backends.fake import FakeBackend
from ttc.cli.compare import main
from ttc.importers.common import Imported, ImportedProblem, ImportedSample, label_of
from ttc.importers.write import write_run
from ttc.sweep.config import RunConfig, SweepConfig
from ttc.sweep.runner import run_sweep

LIMIT = 5
# correct samples of 2 per problem (index into chain_sum's first five problems)
NATIVE = {0: 2, 1: 0, 2: 0, 3: 1, 4: 0}
IMPORTED = {1: 1, 2: 1, 3: 2, 4: 1}  # and one problem of its own, "chain_sum-extra"


def wrong(gold: str) -> str:
    return str(int(gold) + 1000)


@pytest.fixture(scope="module")
def problems():
    return load_problems(get_task("chain_sum"), LIMIT, 0, None)


@pytest.fixture(scope="module")
def native(tmp_path_factory, problems):
    """A ttc sweep on chain_sum whose i-th problem gets NATIVE[i] right answers of 2 (the first ones)."""
    by_question = {p.question: (i, p.gold) for i, p in enumerate(problems)}
    seen = collections.Counter()

    def script(prompt, rng):
        i, gold = next(v for q, v in by_question.items() if q in prompt)
        seen[i] += 1
        return f"so it is \\boxed{{{gold if seen[i] <= NATIVE[i] else wrong(gold)}}}"

    cfg = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), budgets=(1, 2), limit=LIMIT),
                    out=str(tmp_path_factory.mktemp("native")))
    return run_sweep(cfg, backend_factory=lambda m, c: FakeBackend(script), progress=False).root


@pytest.fixture(scope="module")
def imported(tmp_path_factory, problems, tiny_model_dir):
    """The same task's problems 1-4 and one more, imported as another harness's log (FLOPs from a model
    config, so the runs share an x axis)."""
    def sample(gold, ok):
        answer = gold if ok else wrong(gold)
        return ImportedSample(text=f"answer: {answer}", answer=answer, answer_strict=answer, correct=ok,
                              prompt_tokens=30, generated_tokens=5, finish_reason="stop")

    probs = [ImportedProblem(label=label_of("x"), id=problems[i].id, gold=problems[i].gold, prompt=problems[i].question,
                             samples=(sample(problems[i].gold, c >= 1), sample(problems[i].gold, c >= 2)))
             for i, c in IMPORTED.items()]
    probs.append(ImportedProblem(label=label_of("x"), id="chain_sum-extra", gold="1", prompt="1 + 0 = ?",
                                 samples=(sample("1", True), sample("1", True))))
    imp = Imported(fmt="lm_eval", task="chain_sum", model="other-harness", problems=probs,
                   source={"format": "test"}, digest="0123456789abcdef", temperature=0.7)
    return write_run(imp, tmp_path_factory.mktemp("imported"), imp.digest, model_config=tiny_model_dir)[0]


def test_differences_against_hand_computed_values(native, imported):
    c = cmp.compare_runs([native, imported])
    assert c.shared == 4 and c.problems == {native.name: 5, imported.name: 5}
    t = cmp.differences(c, n_boot=2000, seed=0).set_index(["metric", "budget"])
    assert set(t["problems"]) == {4}
    # Per shared problem (1, 2, 3, 4) the baseline has 0, 0, 1, 0 correct of 2 and the import 1, 1, 2, 1.
    # mean@k = c/2: 0.125 against 0.625; every problem's difference is 0.5, so the paired interval is [0.5, 0.5]
    # (two independent means would give a wide one). pass@1 and maj@1 are c/2 as well. maj@2: the vote of both
    # samples, 0 for (wrong, wrong), 0.5 for a tie, 1 for (right, right): 0.125 against 0.625, again 0.5 each.
    for metric, k in [("mean@k", 1), ("mean@k", 2), ("pass@k", 1), ("maj@k", 1), ("maj@k", 2)]:
        row = t.loc[(metric, k)]
        assert (row["baseline_value"], row["value"]) == pytest.approx((0.125, 0.625)), (metric, k)
        assert (row["difference"], row["ci_low"], row["ci_high"]) == pytest.approx((0.5, 0.5, 0.5)), (metric, k)
    # pass@2 = 1 when a problem has a right sample: 0.25 against 1.0, differences 1, 1, 0, 1. Resampling 4
    # problems, the mean difference is X/4 with X ~ Binomial(4, 3/4): P(X <= 0) = 1/256 < 2.5% < P(X <= 1) =
    # 13/256, and P(X = 4) = 81/256 > 2.5%, so the 95% interval is [0.25, 1.0].
    row = t.loc[("pass@k", 2)]
    assert (row["baseline_value"], row["value"], row["difference"]) == pytest.approx((0.25, 1.0, 0.75))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.25, 1.0))


def test_curves_are_over_the_shared_problems(native, imported):
    c = cmp.compare_runs([native, imported])
    curves = cmp.curves(c, n_boot=200)
    assert list(dict.fromkeys(curves["series"])) == [native.name, imported.name]
    assert set(curves["problems"]) == {4}
    pas = curves[(curves["metric"] == "pass@k") & (curves["budget"] == 2)].set_index("series")["value"]
    assert pas.to_dict() == pytest.approx({native.name: 0.25, imported.name: 1.0})
    assert (curves["flops_per_problem"] > 0).all()
    assert (curves["ci_low"] <= curves["value"] + 1e-12).all() and (curves["value"] <= curves["ci_high"] + 1e-12).all()


def test_ttc_compare_draws_tabulates_and_lists_differing_verdicts(native, imported, tmp_path, capsys):
    import matplotlib.image as mpimg

    out = tmp_path / "cmp"
    assert main([str(native), str(imported), "--samples", "--out", str(out), "--name", "ab"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("4 problems shared by every run, matched on (task, problem_id)")
    # the figure: written, decodes as a PNG of the size asked for (7.5 x 4.8 in at 150 dpi), not blank
    png = out / "ab.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(png)
    assert image.shape[:2] == (720, 1125)
    assert np.unique(image.reshape(-1, image.shape[-1]), axis=0).shape[0] > 20  # lines, bands and text drawn
    # the table as printed and as written
    table = pd.read_csv(out / "ab.csv")
    assert len(table) == 3 * 2 and set(table["problems"]) == {4}
    assert "+0.750 [+0.250, +1.000]" in printed
    # verdicts (the vote is right): problem 3 is a tie in the baseline (wrong) and right in the import; on 1, 2
    # and 4 both are wrong (all wrong against a tie)
    diff = pd.read_csv(out / "ab_differing.csv", dtype=str)
    assert diff["problem_id"].tolist() == ["chain_sum-0-3"]
    row = diff.iloc[0]
    assert (row["baseline_verdict"], row["verdict"], row["baseline_correct"], row["correct"]) == \
        ("wrong", "right", "1/2", "2/2")
    assert row["answer"] == row["gold"] == "-4"
    assert row["baseline_answer"] in {"-4 (tie of 2)", wrong("-4") + " (tie of 2)"}
    assert "problems whose verdict differs (the majority vote is right or not): 1 of 4" in printed


def test_runs_on_flops_less_imports_are_drawn_against_the_budget(native, problems, tmp_path, capsys):
    probs = [ImportedProblem(label=label_of("x"), id=problems[1].id, gold=problems[1].gold, prompt="q",
                             samples=(ImportedSample(text="a", answer=problems[1].gold, answer_strict=None, correct=True),
                                      ImportedSample(text="b", answer="9", answer_strict=None, correct=False)))]
    imp = Imported(fmt="inspect", task="chain_sum", model="m", problems=probs, source={}, digest="fedcba9876543210")
    bare = write_run(imp, tmp_path / "imp", imp.digest)[0]  # no model config: FLOPs unknown
    assert main([str(native), str(bare), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no FLOPs recorded" in err and "--x budget" in err
    assert main([str(native), str(bare), "--out", str(tmp_path / "o"), "--x", "budget"]) == 0
    assert capsys.readouterr().out.startswith("1 problems shared by every run")


def test_runs_that_share_no_problem_are_refused_before_anything_is_written(native, tmp_path, capsys):
    probs = [ImportedProblem(label=label_of("x"), id="elsewhere-1", gold="1", prompt="q",
                             samples=(ImportedSample(text="a", answer="1", answer_strict=None, correct=True),))]
    imp = Imported(fmt="inspect", task="gsm8k", model="m", problems=probs, source={}, digest="00aa00aa00aa00aa")
    other = write_run(imp, tmp_path / "imp", imp.digest)[0]
    out = tmp_path / "nothing"
    assert main([str(native), str(other), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the runs share no problem (problems are matched on (task, problem_id))")
    assert "gsm8k:elsewhere-1" in err and err.count("\n") == 1
    assert not out.exists()
    assert main([str(native), str(native)]) == 2
    assert "a run is given twice" in capsys.readouterr().err


def store_run(out, run_id, models, correct):
    """A run written with the store API: for each model, problems p0..p3 with ``correct[model][i]`` of 2 right."""
    from ttc.store.records import SCHEMA_VERSION, SampleRecord
    from ttc.store.runstore import RunStore
    from ttc.sweep.runner import finish

    cfg = RunConfig(sweep=SweepConfig(tasks=("custom:number",), models=tuple(models), budgets=(1, 2), limit=4),
                    out=str(out))
    store = RunStore.open(out, run_id, {"schema_version": SCHEMA_VERSION, "run_id": run_id, "config_hash": run_id,
                                        "config": cfg.to_dict(), "seed": 0, "models": {}})
    for model in models:
        for i, c in enumerate(correct[model]):
            store.shard("custom:number", model, "sample").append_problem([SampleRecord(
                task="custom:number", model=model, sampler="sample", problem_id=f"p{i}", sample_index=j, n_samples=2,
                text="t", answer="1" if j < c else "2", answer_strict=None, gold="1", correct=j < c, prompt_tokens=5,
                generated_tokens=5, finish_reason="stop", prefill_flops=1e6, decode_flops=1e6, prefill_shared=True,
                seed=0) for j in range(2)])
    finish(store, cfg)
    return store.root


def test_a_run_of_several_models_gives_one_series_each(tmp_path):
    both = store_run(tmp_path / "a", "family", ["small", "large"], {"small": [0, 1, 0, 1], "large": [2, 2, 1, 2]})
    other = store_run(tmp_path / "b", "other", ["m"], {"m": [1, 1, 1, 1]})
    c = cmp.compare_runs([both, other])
    assert c.series == ["family:large/sample", "family:small/sample", "other"] and c.shared == 4
    t = cmp.differences(c, n_boot=500).set_index(["series", "metric", "budget"])
    # mean@k: large 7/8, small 2/8, other 4/8; differences to the first series (large)
    assert t.loc[("family:small/sample", "mean@k", 1), "difference"] == pytest.approx(2 / 8 - 7 / 8)
    assert t.loc[("other", "mean@k", 2), "difference"] == pytest.approx(4 / 8 - 7 / 8)
    diff = cmp.differing([both, other], c)
    # verdicts: large right on p0, p1, p3 (p2 a tie); small wrong everywhere (ties or all wrong); other: ties
    assert diff[diff["series"] == "family:small/sample"]["problem_id"].tolist() == ["p0", "p1", "p3"]
    assert diff[diff["series"] == "other"]["problem_id"].tolist() == ["p0", "p1", "p3"]

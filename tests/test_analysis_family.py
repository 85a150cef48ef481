"""Measured pretraining curves: the family table, pretraining tokens of revisions, and a family of three
tiny fixture models of growing size (and skill, by construction) fitted on the run's own task."""

import json

import numpy as np
import pytest
from conftest import build_tiny_model

from ttc.analysis.family import load_families, parse_pretrain_tokens, pretrain_tokens
from ttc.errors import TTCError


def test_family_table_has_sources_and_pythia_tokens_per_step():
    fam = load_families()
    assert fam["source"].str.startswith("http").all()
    py = fam[fam["family"] == "Pythia"]
    assert len(py) == 8 and (py["tokens_per_step"] == 2097152).all() and (py["tokens"] == 299892736000).all()


def test_pretrain_tokens_of_checkpoints_and_overrides():
    assert pretrain_tokens("EleutherAI/pythia-160m")[0] == 299892736000
    assert pretrain_tokens("EleutherAI/pythia-160m@step3000")[0] == 3000 * 2097152
    assert pretrain_tokens("EleutherAI/pythia-160m@step143000")[0] == 299892736000  # the last step is the model
    assert pretrain_tokens("allenai/OLMo-7B-hf@step452000-tokens2000B")[0] == 2000e9
    # the embedded model is found through the original it was exported from
    assert pretrain_tokens("smollm2-135m", {"original": "HuggingFaceTB/SmolLM2-135M-Instruct"})[0] == 2e12
    assert pretrain_tokens("my/model", overrides={"my/model": 5e9}) == (5e9, "--pretrain-tokens")
    with pytest.raises(TTCError, match="--pretrain-tokens 'my/model=D'"):
        pretrain_tokens("my/model")
    with pytest.raises(TTCError, match="revision weird"):
        pretrain_tokens("HuggingFaceTB/SmolLM2-135M@weird")
    assert parse_pretrain_tokens(["a/b@step1=3e9"]) == {"a/b@step1": 3e9}
    for bad in ("a/b", "a/b=-1", "a/b=lots", "=3"):
        with pytest.raises(TTCError, match="MODEL=TOKENS"):
            parse_pretrain_tokens([bad])


SIZES = {"s": (1, 32, 0.5), "m": (2, 64, 1.5), "l": (3, 96, 4.0)}  # n_layer, d_model, skill
TOKENS = {"s": 1e9, "m": 2e9, "l": 4e9}


@pytest.fixture(scope="module")
def family_run(tmp_path_factory):
    from ttc.sweep.config import RunConfig, SamplingConfig, SweepConfig
    from ttc.sweep.runner import run_sweep

    root = tmp_path_factory.mktemp("family")
    dirs = {k: str(build_tiny_model(root / f"tiny-{k}", n_layer=n, d_model=d, skill=s))
            for k, (n, d, s) in SIZES.items()}
    data = root / "sevens.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": f"What is {i} + {7 - i}?", "answer": "7"}) + "\n"
                            for i in range(24)))
    cfg = RunConfig(sweep=SweepConfig(tasks=("custom:number",), models=tuple(dirs.values()), budgets=(1, 2, 4),
                                      limit=24, data_file=str(data)),
                    sampling=SamplingConfig(max_tokens=12), out=str(root / "runs"))
    return run_sweep(cfg, progress=False).root, dirs


def test_measured_family_curve_on_fixture_models(family_run):
    from ttc.analysis.family import family_members, measured_family
    from ttc.analysis.runs import run_per_problem

    run, dirs = family_run
    pp, header = run_per_problem(run)
    members = family_members(header["models"], list(dirs.values()),
                             overrides={dirs[k]: TOKENS[k] for k in dirs})
    # N is each model's parameter count as loaded: it grows with the fixture sizes
    assert members.set_index("model").loc[[dirs["s"], dirs["m"], dirs["l"]], "params"].is_monotonic_increasing
    curve, ex, matched = measured_family(pp, members, "custom:number", "maj@k", n_boot=40)
    acc1 = curve.rows.set_index("model")["accuracy"]
    assert acc1[dirs["s"]] < acc1[dirs["l"]]
    assert curve.fit.params["slope"] > 0 and "slope" in curve.fit.ci
    lo, hi = curve.fit.ci["slope"]
    assert lo <= curve.fit.params["slope"] <= hi
    # anchored at each member's own k = 1: C_eff = C_0 and density 1 there
    k1 = ex[ex["budget"] == 1]
    assert np.allclose(k1["multiplier"], 1.0) and np.allclose(k1["density"], 1.0)
    # raw reading: the k = 1 accuracy read off the curve fitted through the members' k = 1 points
    small = ex[(ex["model"] == dirs["s"]) & (ex["budget"] == 1)].iloc[0]
    assert curve.fit.predict(small["C_eff_raw"]) == pytest.approx(small["accuracy"], abs=1e-9)
    # FLOPs-matched rows compare each member with every larger one at its measured accuracy
    assert set(matched["larger_model"]) == {dirs["m"], dirs["l"]}
    t = matched[(matched["model"] == dirs["s"]) & (matched["larger_model"] == dirs["l"])].iloc[0]
    assert t["target_accuracy"] == pytest.approx(acc1[dirs["l"]])


def test_fit_cli_measured_reading_and_unknown_tokens(family_run, capsys):
    from ttc.cli.analysis import fit_main

    run, dirs = family_run
    assert fit_main([str(run), "--n-boot", "20"]) == 2  # auto: three models, D unknown -> error, no guess
    err = capsys.readouterr().err
    assert err.startswith("error: pretraining tokens of") and "--pretrain-tokens" in err
    args = [str(run), "--n-boot", "20", "--reading", "measured"]
    for k, d in dirs.items():
        args += ["--pretrain-tokens", f"{d}={TOKENS[k]:g}"]
    assert fit_main(args) == 0
    out = capsys.readouterr().out
    assert "measured family curve on custom:number" in out and "FLOPs-matched" in out
    assert "published-score reading" not in out


def test_pretrain_tokens_of_later_stages_and_untrained_checkpoints():
    # OLMo 2 stage-2 revisions name the tokens of stage 2 only; stage 1 ended at step 928,646 of 1,024 x 4,096
    d, where = pretrain_tokens("allenai/OLMo-2-1124-7B@stage2-ingredient1-step11931-tokens50B")
    assert d == 928646 * 1024 * 4096 + 50e9 and "before stage2" in where
    assert pretrain_tokens("allenai/OLMo-2-1124-7B@stage1-step928646-tokens3896B")[0] == 3896e9
    assert pretrain_tokens("allenai/OLMo-2-1124-13B@stage2-ingredient3-step11931-tokens100B")[0] == \
        596057 * 2048 * 4096 + 100e9
    with pytest.raises(TTCError, match="tokens of its own training stage .stage2. only"):
        pretrain_tokens("allenai/OLMo-2-0325-32B@stage2-ingredient1-step100-tokens1B")  # not checked: refused
    for untrained in ("EleutherAI/pythia-160m@step0", "allenai/OLMo-1B-hf@step0-tokens0B"):
        with pytest.raises(TTCError, match="has seen 0 pretraining tokens"):
            pretrain_tokens(untrained)

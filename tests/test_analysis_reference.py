"""The shipped reference table: sources on every row, the embedded model's facts, family fits."""

import numpy as np
import pytest

from ttc.analysis.fits import FitError
from ttc.analysis.reference import family_curve, family_curves, load_reference, pretraining_flops


def test_every_row_has_a_source_and_a_setting():
    ref = load_reference()
    assert ref["source"].str.startswith("https://").all()
    assert ref["source_table"].str.len().gt(10).all()
    assert ref["setting"].notna().all() and ref["benchmark"].isin(["gsm8k", "math"]).all()
    assert not ref.duplicated(["model", "benchmark", "setting"]).any()
    assert ((ref["score"] > 0) & (ref["score"] < 100)).all()


def test_embedded_model_row():
    ref = load_reference()
    row = ref[ref["model"] == "SmolLM2-135M-Instruct"].iloc[0]
    assert row["params"] == 135e6 and row["tokens"] == 2e12 and row["score"] == 1.4
    assert row["compute"] == pytest.approx(6 * 135e6 * 2e12)
    assert row["accuracy"] == pytest.approx(0.014)


def test_pretraining_flops_is_6nd():
    assert pretraining_flops(1e9, 2e10) == pytest.approx(1.2e20)


def test_family_curves_fit_like_with_like():
    curves = {c.label: c for c in family_curves()}
    assert "SmolLM2 gsm8k (instruct_5shot)" in curves and "SmolLM2 gsm8k (base_5shot)" in curves
    for c in curves.values():
        assert set(c.rows["setting"]) == {c.setting} and set(c.rows["benchmark"]) == {c.benchmark}
        assert c.fit.params["floor"] == 0.0 and c.fit.params["ceiling"] == 1.0
        assert c.fit.params["slope"] > 0 and c.fit.r2 > 0.8
        # the curve inverts itself
        acc = c.rows["accuracy"].to_numpy()
        assert c.fit.predict(c.compute_for(acc)) == pytest.approx(acc, rel=1e-6)


def test_smollm2_tokens_trend_passes_near_its_models():
    c = family_curve("SmolLM2", "gsm8k", "instruct_5shot")
    assert c.tokens_slope > 0  # bigger SmolLM2 models saw more tokens
    pred = c.tokens_for(c.rows["params"].to_numpy())
    assert np.allclose(np.log(pred), np.log(c.rows["tokens"].to_numpy()), atol=0.2)


def test_unknown_family_is_an_error():
    with pytest.raises(FitError, match="no reference rows"):
        family_curve("Nope", "gsm8k", "base")

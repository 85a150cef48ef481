import pytest

from ttc.errors import TTCError
from ttc.sweep.config import RunConfig, SamplingConfig, SweepConfig, parse_budgets


def test_parse_budgets():
    assert parse_budgets("1,2,4") == (1, 2, 4)
    assert parse_budgets("4,1,4") == (1, 4)
    for bad in ["", "1,x", "0,1", "-2", "1.5"]:
        with pytest.raises(TTCError):
            parse_budgets(bad)


@pytest.mark.parametrize("kwargs", [dict(limit=0), dict(budgets=()), dict(budgets=(2, 1)), dict(tasks=()),
                                    dict(tasks=("a", "a"))])
def test_sweep_validation(kwargs):
    with pytest.raises(TTCError):
        SweepConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [dict(temperature=-1), dict(top_p=0), dict(max_tokens=0)])
def test_sampling_validation(kwargs):
    with pytest.raises(TTCError):
        SamplingConfig(**kwargs)


def test_run_id_is_stable_and_ignores_out_dir():
    a = RunConfig(out="x")
    b = RunConfig(out="y")
    assert a.run_id == b.run_id
    assert a.run_id == RunConfig.from_dict(a.to_dict()).run_id
    assert RunConfig(sampling=SamplingConfig(seed=1)).run_id != a.run_id
    assert a.run_id.startswith("chain_sum-smollm2-135m-sample-")

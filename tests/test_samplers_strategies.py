"""best_of_n, budget_forcing, beam and dvts on a scripted backend: control flow and FLOPs by hand.

Hand counts use the fake spec: N = 1000 non-embedding parameters, 2 layers, d_attn = 8, d_model = 8,
vocab 50, so a trunk token at context c costs 2000 + 32 c and an output head row 800.
The rendered prompt "user: what is 3+4? assistant:" is 5 tokens (words).
"""

import dataclasses

import pandas as pd
import pytest
from stepfake import StepFake

from samplers.best_of_n import BestOfN
from samplers.budget_forcing import BudgetForcing, scaling
from samplers.search import DVTS, BeamSearch
from tasks.answers import numeric_answer
from tasks.base import Problem
from ttc.backends.base import GenParams
from ttc.metrics.flops import prefill_flops
from ttc.sweep.config import StrategyConfig
from ttc.sweep.context import ModelContext
from ttc.sweep.problem import make_records

PROMPT = [{"role": "user", "content": "what is 3+4?"}]
PROBLEM = Problem(id="p0", question="what is 3+4?", gold="7")
P = 5  # prompt tokens
PREFILL = 5 * 2000 + 32 * (0 + 1 + 2 + 3 + 4)  # 10320


class Task:
    name = "toy"

    def prompt(self, problem):
        return PROMPT

    def extract(self, text):
        return numeric_answer(text)

    def grade(self, answer, problem):
        return answer == problem.gold


def run(strategy, backend, params):
    return strategy.run(ModelContext(backend, params), Task(), PROBLEM, params.seed)


def records_frame(sampler, backend, outputs, params):
    recs = make_records(Task(), PROBLEM, sampler.name, "fake", backend.shares_prefill, params.seed, outputs)
    return pd.DataFrame([r.to_dict() for r in recs])


def three_steps(rng):
    """step 1 (2 words), step 2 (2 words), then the answer: right or wrong at random."""
    return ["a", "b", "|", "c", "d", "|", "so", "\\boxed{" + rng.choice(["7", "8"]) + "}"]


def test_prefill_constant():
    from ttc.backends.fake import FAKE_SPEC

    assert prefill_flops(FAKE_SPEC, P) == PREFILL


def test_beam_search_flops_by_hand():
    strategy = StrategyConfig(verifier="oracle", step_delimiter=" |", beam_width=2, max_steps=10)
    beam = BeamSearch("oracle", strategy, budgets=(2,))
    backend = StepFake(three_steps)
    params = GenParams(temperature=1.0, max_tokens=50, seed=3)
    out = run(beam, backend, params)
    # N=2, M=2: iteration 0 samples 2 first steps from the prompt (one call, n=2), keeps 1 and expands it
    # by 2 (one call, n=2), keeps 1, expands by 2 final steps: 3 calls, 6 steps in all
    assert [n for _, n in backend.calls] == [2, 2, 2]
    # steps: 2 words + delimiter = 3 tokens at contexts 5..7; 3 tokens at 8..10; "so \boxed{}" + EOS = 3 at 11..13
    step1 = 3 * 2800 + 32 * (5 + 6 + 7)  # 8976
    step2 = 3 * 2800 + 32 * (8 + 9 + 10)  # 9264
    step3 = 3 * 2800 + 32 * (11 + 12 + 13)  # 9552
    gen = 2 * (step1 + step2 + step3)  # 55584
    df = records_frame(beam, backend, out, params)
    assert len(df) == 2 and df["decode_flops"].sum() == pytest.approx(gen)
    assert df["verifier_flops"].sum() == 0.0  # the oracle is free
    rows = {r["metric"]: r for r in beam.evaluate(df, (2,)).to_dict("records")}
    assert rows["best@k"]["flops"] == pytest.approx(PREFILL + gen)
    assert rows["best@k"]["tokens"] == 18
    # the oracle ranks a right final path first whenever the search found one
    assert rows["best@k"]["value"] == rows["pass@k"]["value"]
    assert all(t.startswith(" a b | c d | so") for t in df["text"])


def test_beam_search_counts_verifier_and_lookahead():
    strategy = StrategyConfig(verifier="self-judge", step_delimiter=" |", beam_width=2, lookahead=1, max_steps=10)
    beam = BeamSearch("self-judge", strategy, budgets=(2,))
    backend = StepFake(three_steps)
    params = GenParams(temperature=1.0, max_tokens=50, seed=3)
    out = run(beam, backend, params)
    df = records_frame(beam, backend, out, params)
    calls = df["extra"].iloc[0]["verifier_calls"]
    # every candidate step is judged once: 2 + 2 + 2
    assert calls == 6
    assert df["verifier_flops"].sum() > 0
    # with lookahead, 4 unfinished candidates each roll out one greedy step (n=1 calls)
    assert sum(1 for _, n in backend.calls if n == 1) == 4
    no_look = BeamSearch("self-judge", dataclasses.replace(strategy, lookahead=0), budgets=(2,))
    out2 = run(no_look, StepFake(three_steps), params)
    df2 = records_frame(no_look, backend, out2, params)
    assert df["decode_flops"].sum() > df2["decode_flops"].sum()


def test_dvts_runs_independent_subtrees():
    strategy = StrategyConfig(verifier="oracle", step_delimiter=" |", beam_width=2, max_steps=10)
    dvts = DVTS("oracle", strategy, budgets=(4,))
    backend = StepFake(three_steps)
    params = GenParams(temperature=1.0, max_tokens=50, seed=1)
    assert dvts.n_generations((4,)) == 2
    out = run(dvts, backend, params)
    # 2 subtrees x 3 iterations, each expanding its path by M=2
    assert [n for _, n in backend.calls] == [2] * 6
    df = records_frame(dvts, backend, out, params)
    step = 2 * (3 * 2800 + 32 * (5 + 6 + 7) + 3 * 2800 + 32 * (8 + 9 + 10) + 3 * 2800 + 32 * (11 + 12 + 13))
    assert df["decode_flops"].sum() == pytest.approx(2 * step)
    # with the oracle each subtree keeps a right final step when one of its 2 samples is right
    assert set(df["answer"]) <= {"7", "8"}


def test_budget_forcing_by_hand():
    def thinker(rng):
        return ["t"] * 6 + ["\\boxed{7}"]  # 7 words, then end of sequence: 8 tokens of thought

    bf = BudgetForcing(think_budgets=(4, 8, 16), chains=1)
    backend = StepFake(thinker, answer="7")
    params = GenParams(temperature=1.0, max_tokens=64, seed=0)
    out = run(bf, backend, params)
    df = records_frame(bf, backend, out, params)
    e = list(df["extra"])
    assert [x["think_budget"] for x in e] == [4, 8, 16]
    # cap 4: 4 thought tokens, forced; "Final answer:" inserted (2 tokens), answer "7" + end of sequence (2)
    assert (e[0]["think_tokens"], e[0]["forced"], e[0]["inserted_tokens"], e[0]["answer_tokens"]) == (4, True, 2, 2)
    # trunk over 4 + 2 + 2 = 8 tokens at contexts 5..12, output head over the 6 generated ones
    assert df["decode_flops"].iloc[0] == 8 * 2000 + 32 * sum(range(5, 13)) + 6 * 800
    # cap 8: the chain ends on its own with its 8th token (the end of sequence): nothing forced or inserted
    assert (e[1]["think_tokens"], e[1]["forced"], e[1]["inserted_tokens"]) == (8, False, 0)
    assert df["decode_flops"].iloc[1] == 8 * 2000 + 32 * sum(range(5, 13)) + 8 * 800
    assert e[2] == {**e[1], "think_budget": 16}  # the same run at a larger cap
    assert list(df["correct"]) == [True, True, True]
    assert df["text"].iloc[0] == " t t t t\n\nFinal answer:  7"
    rows = {(r["budget"], r["metric"]): r for r in bf.evaluate(df, ()).to_dict("records")}
    assert rows[(4, "acc")]["flops"] == PREFILL + df["decode_flops"].iloc[0]
    assert rows[(4, "natural")]["value"] == 0.0 and rows[(8, "natural")]["value"] == 1.0
    assert rows[(4, "control")]["value"] == 1.0
    assert rows[(16, "scaling")]["value"] == 0.0


def test_budget_forcing_wait_and_think_end():
    def thinker(rng):
        return ["x", "y", "</think>", "\\boxed{3}"]

    bf = BudgetForcing(think_budgets=(10,), think_end=" </think>", num_wait=2, chains=1)
    backend = StepFake(thinker, answer="7")
    out = run(bf, backend, GenParams(max_tokens=64))
    comp, extra = out[0].completion, out[0].fields
    assert extra["waits"] == 2
    # three rounds of "x y </think>" (3 tokens each; the fake continues its script after what is written)
    assert comp.text.startswith(" x y Wait")
    assert comp.text.count("</think>") == 1 and extra["forced"] is False
    assert extra["inserted_tokens"] == 2 + 1  # two "Wait"s and the delimiter before the answer


def test_budget_forcing_records_stay_within_max_tokens():
    """--max-tokens bounds every record: thought (up to the cap) plus the answer, where every chain thinks past
    its cap and is forced."""
    def thinker(rng):
        return ["t"] * 200 + ["\\boxed{7}"]

    bf = BudgetForcing(think_budgets=(16, 32), chains=2, answer_tokens=16, num_wait=1, think_end=" </think>")
    backend = StepFake(thinker, answer="7")
    out = run(bf, backend, GenParams(temperature=1.0, max_tokens=48, seed=0))
    assert {o.fields["think_budget"] for o in out} == {16, 32}
    assert all(o.completion.generated_tokens <= o.fields["think_budget"] + 16 <= 48 for o in out)
    assert all(o.fields["forced"] and o.fields["think_tokens"] == o.fields["think_budget"] for o in out)


def test_budget_forcing_refuses_caps_that_max_tokens_cannot_hold(tmp_path, capsys):
    """The default caps (32, 64, 128) with 16 answer tokens at --max-tokens 48: refused before the run
    directory exists, with what fits."""
    from ttc.cli.run import main

    rc = main(["--sampler", "budget_forcing", "--max-tokens", "48", "--out", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert err == ("error: --think-budget 64,128 with --answer-tokens 16 exceeds --max-tokens 48: a budget_forcing "
                   "record generates up to its think budget plus its answer, and --max-tokens bounds every record; "
                   "give --think-budget values up to 32 or raise --max-tokens to 144\n")
    assert list(tmp_path.iterdir()) == []
    rc = main(["--sampler", "budget_forcing", "--max-tokens", "8", "--think-budget", "4", "--out", str(tmp_path)])
    assert rc == 2 and "exceeds --max-tokens 8" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


def test_scaling_by_hand():
    # pairs: (0.2-0.1)/(64-32), (0.4-0.1)/(128-32), (0.4-0.2)/(128-64) per 1000 tokens
    expected = (0.1 / 32 + 0.3 / 96 + 0.2 / 64) / 3 * 1000
    assert scaling([32, 64, 128], [0.1, 0.2, 0.4]) == pytest.approx(expected)


def test_best_of_n_self_judge_costs_and_scores():
    backend = StepFake(three_steps, judge=(-0.1, -2.3))
    bon = BestOfN("self-judge", StrategyConfig(verifier="self-judge"), budgets=(4,))
    params = GenParams(temperature=1.0, max_tokens=50, seed=0)
    out = run(bon, backend, params)
    df = records_frame(bon, backend, out, params)
    import math

    p_yes = math.exp(-0.1) / (math.exp(-0.1) + math.exp(-2.3))
    assert all(e["score"] == pytest.approx(p_yes) for e in df["extra"])
    # the judge prompt: "user: <question> Proposed solution: <solution> <judge question> assistant:"
    n = df["extra"].iloc[0]["verifier_tokens"]
    assert n == len(("user: what is 3+4? Proposed solution: " + df["text"].iloc[0]
                     + " Is this answer correct? Answer Yes or No. assistant:").split())
    assert df["verifier_flops"].iloc[0] == n * 2000 + 32 * n * (n - 1) / 2 + 800
    rows = {(r["budget"], r["metric"]): r for r in bon.evaluate(df, (1, 2, 4)).to_dict("records")}
    dec = df["decode_flops"].mean()
    assert rows[(2, "best@k")]["flops"] == pytest.approx(PREFILL + 2 * dec + 2 * df["verifier_flops"].mean())
    # equal scores: best-of-k is the mean accuracy
    assert rows[(2, "best@k")]["value"] == pytest.approx(df["correct"].mean())


def test_best_of_n_self_logprob_is_free_and_prefers_likely_samples():
    def script(rng):
        return ["so", "\\boxed{" + rng.choice(["7", "8"]) + "}"]

    backend = StepFake(script, logprob=lambda w: -0.1 if "7" in w else -3.0)
    bon = BestOfN("self-logprob", StrategyConfig(), budgets=(8,))
    params = GenParams(temperature=1.0, max_tokens=50, seed=0)
    out = run(bon, backend, params)
    df = records_frame(bon, backend, out, params)
    assert df["verifier_flops"].sum() == 0.0
    assert 0 < df["correct"].sum() < 8  # both answers were sampled
    rows = {(r["budget"], r["metric"]): r["value"] for r in bon.evaluate(df, (1, 8)).to_dict("records")}
    assert rows[(8, "best@k")] == 1.0 and rows[(8, "wmaj@k")] == 1.0
    assert rows[(1, "best@k")] == pytest.approx(df["correct"].mean())


def test_search_and_budget_forcing_batch_their_paths_and_chains():
    strategy = StrategyConfig(verifier="oracle", step_delimiter=" |", beam_width=2, max_steps=10)
    backend = StepFake(three_steps)
    run(BeamSearch("oracle", strategy, budgets=(4,)), backend, GenParams(temperature=1.0, max_tokens=50, seed=3))
    # N=4, M=2: 4 first steps in one request, then each iteration expands its 2 kept paths in one batch
    # (3 steps: the 4 paths finish at the third)
    assert backend.batches == [1, 2, 2]

    def thinker(rng):
        return ["t"] * 6 + ["\\boxed{7}"]

    backend = StepFake(thinker)
    run(BudgetForcing(think_budgets=(2, 4), chains=3), backend, GenParams(temperature=1.0, max_tokens=64, seed=0))
    # cap 2: 3 chains from the prompt (one request); cap 4: the 3 chains continue in one batch with cap 2's
    # 3 forced answers; then cap 4's 3 forced answers in one batch
    assert backend.batches == [1, 6, 3]

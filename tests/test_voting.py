"""Exact estimators against brute-force enumeration, and at sizes where only counting can answer."""

import random
from math import comb

import numpy as np
import pytest
from conftest import brute_vote

from ttc.metrics.estimators import (
    best_of_k,
    majority_at_k,
    pass_at_k,
    pass_at_k_array,
    weighted_majority_at_k,
    weighted_majority_with_se,
)


def random_case(rng, n_max=11):
    n = rng.randint(1, n_max)
    pool = ["a", "b", "c", "d", "e"][: rng.randint(1, 5)] + [None] * rng.randint(0, 2)
    answers = [rng.choice(pool) for _ in range(n)]
    right = set(rng.sample(["a", "b", "c", "d", "e"], rng.randint(0, 2)))  # 0, 1 or 2 correct strings
    return answers, [a in right for a in answers], rng.randint(1, n)


def test_majority_matches_enumeration_on_random_cases():
    rng = random.Random(0)
    for _ in range(400):
        answers, correct, k = random_case(rng)
        assert majority_at_k(answers, correct, k) == pytest.approx(brute_vote(answers, correct, k), abs=1e-9)


def test_class_weighted_vote_matches_enumeration():
    rng = random.Random(1)
    for _ in range(300):
        answers, correct, k = random_case(rng)
        wmap = {a: rng.choice([0.0, 0.25, 0.5, 1.0, 1.5, 2.0]) for a in "abcde"}
        weights = [wmap[a] if a else rng.random() for a in answers]  # unparsed samples' weights never count
        got, se = weighted_majority_with_se(answers, weights, correct, k, exact_limit=0)
        assert se == 0.0  # one weight per answer: counted exactly, even with enumeration ruled out
        assert got == pytest.approx(brute_vote(answers, correct, k, weights), abs=1e-9)


def test_hypergeometric_reference_at_n_200():
    # Three answers (90 right, 70, 20) and 20 unparsed: P(right wins) summed over the exact law of the
    # counts of a random k-subset, by hand with big integers.
    m, u = [90, 70, 20], 20
    n = sum(m) + u
    for k in (1, 3, 16, 101, 199):
        total = 0
        for x in range(0, min(m[0], k) + 1):
            for y in range(0, min(m[1], k - x) + 1):
                rest = k - x - y
                for z in range(0, min(m[2], rest) + 1):
                    w = rest - z
                    if w > u:
                        continue
                    top = max(x, y, z)
                    if x == 0 or x < top:
                        continue
                    ties = (y == x) + (z == x)
                    total += comb(m[0], x) * comb(m[1], y) * comb(m[2], z) * comb(u, w) * 6 // (ties + 1)
        expected = total / (6 * comb(n, k))
        answers = ["r"] * m[0] + ["w"] * m[1] + ["v"] * m[2] + [None] * u
        correct = [True] * m[0] + [False] * (n - m[0])
        assert majority_at_k(answers, correct, k) == pytest.approx(expected, abs=1e-9), k


def test_many_answers_at_n_10000_stay_a_probability():
    rng = np.random.default_rng(0)
    labels = rng.zipf(1.6, size=10_000) % 400
    answers = [str(a) for a in labels]
    correct = [a == "1" for a in answers]
    values = [majority_at_k(answers, correct, k) for k in (1, 2, 64, 4096, 9999, 10_000)]
    assert values[0] == pytest.approx(np.mean(correct), abs=1e-9)  # maj@1 is the mean accuracy
    assert all(0.0 <= v <= 1.0 for v in values)
    assert values[-1] == 1.0 and values[-2] == pytest.approx(1.0, abs=1e-9)  # "1" is by far the most common


def test_weighted_vote_with_scores_that_differ_within_an_answer_reports_its_error():
    rng = np.random.default_rng(2)
    answers = [str(a) for a in rng.integers(0, 4, size=40)]
    weights = rng.random(40).tolist()
    correct = [a == "2" for a in answers]
    value, se = weighted_majority_with_se(answers, weights, correct, 20, n_draws=4000, seed=1)
    assert 0 < se < 0.02
    exact = weighted_majority_with_se(answers[:14], weights[:14], correct[:14], 7)  # C(14, 7) = 3432 subsets
    assert exact[1] == 0.0
    assert exact[0] == pytest.approx(brute_vote(answers[:14], correct[:14], 7, weights[:14]), abs=1e-12)
    assert weighted_majority_at_k(answers, weights, correct, 40) == brute_vote(answers, correct, 40, weights)


def test_pass_at_k_array_matches_the_scalar_form():
    n = np.array([1, 4, 10, 10, 1024, 10_000, 10_000])
    c = np.array([0, 1, 3, 10, 17, 0, 9_999])
    for k in (1, 2, 4, 10, 1000, 20_000):
        got = pass_at_k_array(n, c, k)
        for ni, ci, g in zip(n, c, got):
            if k > ni:
                assert np.isnan(g)
            else:
                assert g == pytest.approx(pass_at_k(int(ni), int(ci), k), abs=1e-12)


def test_best_of_k_closed_form_at_large_n():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 50, size=3000).astype(float)  # many ties
    correct = rng.random(3000) < 0.3
    order = sorted(range(3000), key=lambda i: -scores[i])
    for k in (1, 7, 1500, 3000):
        # the definition with exact integers: rank r tops a random k-subset with C(n-1-r, k-1) / C(n, k)
        ranked = [float(correct[i]) for i in order]
        s = [scores[i] for i in order]
        means = {}
        for v in set(s):
            grp = [ranked[i] for i in range(3000) if s[i] == v]
            means[v] = sum(grp) / len(grp)
        total = comb(3000, k)
        # exact rational weights, summed in floating point only at the end
        expected = sum(comb(2999 - r, k - 1) * 10**18 // total * means[s[r]] for r in range(3001 - k)) / 10**18
        assert best_of_k(scores.tolist(), correct.tolist(), k) == pytest.approx(expected, abs=1e-9)


def test_vote_values_leaves_a_weighted_vote_with_differing_weights_to_the_caller():
    import pandas as pd

    from ttc.metrics.tables import Problems, vote_values

    df = pd.DataFrame(dict(problem_id=["p"] * 4, sample_index=range(4), answer=["1", "1", "2", None],
                           correct=[True, True, False, False]))
    out = vote_values(Problems.of(df), (1, 2), weights=np.array([0.9, 0.2, 0.5, 0.1]))
    assert np.isnan(out[1][0]) and np.isnan(out[2][0])  # "1" has weights 0.9 and 0.2: not class-weighted
    same = vote_values(Problems.of(df), (1, 2), weights=np.array([0.9, 0.9, 0.5, 0.1]))
    assert same[1][0] == pytest.approx(brute_vote(["1", "1", "2", None], [True, True, False, False], 1,
                                                  [0.9, 0.9, 0.5, 0.1]))


def test_vote_classes_are_each_problems_answers_in_order_of_first_appearance():
    """Counted as a dict per problem would count them, whatever order the records come in; a problem
    whose samples are all unparsed has no classes."""
    import pandas as pd

    from ttc.metrics.tables import Problems, vote_classes

    rng = random.Random(3)
    rows = [dict(problem_id=f"p{p}", sample_index=i, answer=rng.choice(["x", "y", "10", None] if p else [None]),
                 correct=rng.random() < 0.3) for p in range(6) for i in range(rng.randint(1, 9))]
    df = pd.DataFrame(rows).sample(frac=1, random_state=1)
    p = Problems.of(df.reset_index(drop=True))
    weights = np.where(p.df["answer"] == "x", 0.5, 0.25)  # weights go with the records in the problems' order
    for pid, (counts, good, unparsed, cw) in zip(p.ids, vote_classes(p, weights)):
        mine = [r for r in rows if r["problem_id"] == pid]
        order = list(dict.fromkeys(r["answer"] for r in mine if r["answer"] is not None))
        assert counts.tolist() == [sum(r["answer"] == a for r in mine) for a in order]
        assert good.tolist() == [any(r["correct"] for r in mine if r["answer"] == a) for a in order]
        assert unparsed == sum(r["answer"] is None for r in mine)
        assert (cw is None) if not order else cw.tolist() == [0.5 if a == "x" else 0.25 for a in order]


def exact_majority(sizes, unparsed, k):
    """P(answer 0 wins a random k-subset's vote), ties scoring 1/t: a count over subsets with exact integers
    (for each count v of answer 0, the other answers drawn at most v times, tracking how many tie)."""
    from fractions import Fraction

    total = Fraction(0)
    for v in range(1, min(sizes[0], k) + 1):
        ways = {(0, 0): 1}  # (samples drawn, answers tied at v) -> number of ways
        for m in list(sizes[1:]) + [None]:
            nxt: dict = {}
            for (drawn, ties), w in ways.items():
                top = min(v if m is not None else unparsed, k - v - drawn, m if m is not None else unparsed)
                for x in range(0, top + 1):
                    key = (drawn + x, ties + (m is not None and x == v))
                    nxt[key] = nxt.get(key, 0) + w * comb(m if m is not None else unparsed, x)
            ways = nxt
        total += comb(sizes[0], v) * sum(Fraction(w, t + 1) for (drawn, t), w in ways.items() if drawn == k - v)
    return total / comb(sum(sizes) + unparsed, k)


@pytest.mark.parametrize("sizes, unparsed, ks", [
    ([5] + [4] * 30, 7, (2, 3, 5, 10, 40, 100)),  # many answers tie at every count
    ([12, 12, 11] + [1] * 20, 3, (2, 4, 9, 25, 45)),  # a two-way tie at the top, a tail of singletons
    ([2] + [2] * 8 + [1] * 40, 0, (2, 6, 30, 57)),
])
def test_many_tied_answers_match_exact_integers(sizes, unparsed, ks):
    answers = [a for i, m in enumerate(sizes) for a in [f"a{i}"] * m] + [None] * unparsed
    correct = [a == "a0" for a in answers]
    for k in ks:
        assert majority_at_k(answers, correct, k) == pytest.approx(float(exact_majority(sizes, unparsed, k)),
                                                                  abs=1e-9), k


def test_problems_computed_together_equal_each_alone_and_enumeration(monkeypatch):
    """``vote_many`` lays many problems (of several sample counts, with weights, several correct answers
    and unparsed samples) side by side; blocks cut small so that every chunked path runs."""
    import ttc.metrics.voting as voting

    rng = random.Random(7)
    cases, refs, k = [], [], 5
    for _ in range(60):
        answers, correct, _ = random_case(rng, n_max=12)
        if len(answers) < k:
            answers, correct = answers + [None] * (k - len(answers)), correct + [False] * (k - len(answers))
        wmap = {a: rng.choice([0.0, 0.5, 1.0, 2.0]) for a in "abcde"} if rng.random() < 0.3 else None
        counts, good, unparsed, cw = voting.classes(answers, correct, None if wmap is None else
                                                    [wmap.get(a, 1.0) for a in answers])
        if not counts:
            continue
        cases.append((counts, good, unparsed, None if wmap is None else cw))
        refs.append(brute_vote(answers, correct, k, None if wmap is None else [wmap.get(a, 1.0) for a in answers]))
    together = voting.vote_many(cases, k)
    alone = [voting.vote_at_k(*case[:3], k, case[3]) for case in cases]
    monkeypatch.setattr(voting, "CHUNK", 64)
    voting._binomial.cache_clear()
    small_blocks = voting.vote_many(cases, k)
    assert together == pytest.approx(alone, abs=1e-12)
    assert small_blocks == pytest.approx(alone, abs=1e-12)
    assert together == pytest.approx(refs, abs=1e-9)

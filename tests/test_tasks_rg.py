"""reasoning-gym tasks: expression answers, and model text kept away from scorers that evaluate Python."""

import pytest

from tasks import get_task
from tasks.rg import expression_answer, safe_for_scorer

# (model text, flexible, strict)
EXPRESSIONS = [
    ("Using 3, 5 and 3: \\boxed{(3 + 5) * 3}", "(3 + 5) * 3", "(3 + 5) * 3"),
    ("\\boxed{3 \\times 8 = 24}", "3 * 8", "3 * 8"),
    ("First \\boxed{1+2}, no: \\boxed{8 × 3}", "8 * 3", "8 * 3"),
    ("The answer is 6 * 4.", "6 * 4", None),
    ("<think>\\boxed{1}", None, None),
]


@pytest.mark.parametrize("text,flexible,strict", EXPRESSIONS)
def test_expression_answer(text, flexible, strict):
    assert expression_answer(text) == (flexible, strict)


SAFE = [
    ("countdown", "(3 + 5) * 3", True),
    ("countdown", "9**9**9", False),                                  # a power tower would hang sympy
    ("countdown", "__import__('os').system('x')", False),
    ("puzzle24", "x = 24", False),
    ("polynomial_multiplication", "x**2 + 2*x + 1", True),
    ("polynomial_multiplication", "exec(chr(112)+chr(114))", False),  # builtins reachable from parse_expr
    ("simple_integration", "x**3/3 + sin(x) + C", True),
    ("simple_integration", "2**2**2**2**2", False),
    ("simple_integration", "9**(9**9)", False),
    ("simple_integration", "x**1000", False),
    ("chain_sum", "12", True),
    ("chain_sum", "1" * 2000, False),
]


@pytest.mark.parametrize("family,answer,ok", SAFE)
def test_safe_for_scorer(family, answer, ok):
    assert safe_for_scorer(family, answer) is ok


@pytest.mark.parametrize("family", ["string_insertion", "spiral_matrix", "binary_matrix", "n_queens"])
def test_eval_scorers_are_never_called(family, monkeypatch):
    """These scorers ``eval`` the answer for partial credit; ttc grades them by exact match only."""
    task = get_task(f"rg:{family}")
    problem = task.load(1, 0)[0]
    ds = task._dataset(*problem.data["key"])

    def boom(*args, **kwargs):
        raise AssertionError("scorer called")

    monkeypatch.setattr(ds, "score_answer", boom)
    assert task.grade(problem.gold, problem)
    assert not task.grade("[print('evaluated')]", problem)


@pytest.mark.parametrize("name", ["countdown", "puzzle24"])
def test_expression_tasks_accept_their_gold(name):
    task = get_task(name)
    problem = task.load(1, 0)[0]
    flexible, _ = task.extract(f"So \\boxed{{{problem.gold}}}")
    assert task.grade(flexible, problem)


def test_puzzle24_must_use_the_given_numbers():
    task = get_task("puzzle24")
    problem = task.load(1, 0)[0]                      # "Make 24 using 1, 3, 5, 9"
    assert problem.data["entry"]["metadata"]["numbers"] == [1, 3, 5, 9]
    assert task.grade("1*3*5 + 9", problem)
    assert task.grade("9 + 5*3*1", problem)
    assert not task.grade("6*4+1-1", problem)         # reasoning-gym's own scorer accepts this

"""Grading is untrusted-input processing: random and adversarial strings through every extractor and
grader must return quickly, never raise, and never hang."""

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks import TASKS, get_task
from tasks.answers import math_answer, numeric_answer
from tasks.base import Problem
from tasks.choice import choice_answer
from tasks.gsm8k import gsm_answer
from tasks.humaneval import code_answer
from tasks.mathgrade import math_equal
from tasks.rg import expression_answer

EXTRACTORS = [numeric_answer, math_answer, gsm_answer, choice_answer, code_answer, expression_answer]

# Pieces that exercise the patterns: boxes, braces, think tags, fences, answer phrases, confusables.
PIECES = ["\\boxed{", "\\fbox{", "{", "}", "\\frac{1}{2}", "<think>", "</think>", "```", "```python\n", "Answer:",
          "the answer is", "####", "$", "**", "(A)", "Ｂ", "\u2212", "１２", "0.5", "1,000", "9^{9^{9}}", "\\sqrt{",
          "\\left(", "\\right)", "\n", " ", "=", "__import__('os')", "**9**9", "\x00", "\ud800", "é", "٣"]
texts = st.one_of(st.text(max_size=300),
                  st.lists(st.sampled_from(PIECES) | st.text(max_size=5), max_size=60).map("".join))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_extractors_never_raise(text):
    for extract in EXTRACTORS:
        out = extract(text)
        assert isinstance(out, tuple) and len(out) == 2
        assert all(x is None or isinstance(x, str) for x in out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_task_extractors_never_raise(text):
    for task in TASKS.values():
        flexible, strict = task.extract(text)
        assert flexible is None or isinstance(flexible, str)


FAST_GRADERS = ["gsm8k", "gpqa_diamond", "arc_challenge", "chain_sum", "countdown", "puzzle24", "gsm_symbolic",
                "custom:number", "custom:exact", "custom:choice"]


@pytest.fixture(scope="module")
def problems():
    """One real problem per task whose grading runs in this process (rg tasks need their dataset)."""
    out = {}
    for name in ["chain_sum", "countdown", "puzzle24", "gsm_symbolic"]:
        out[name] = TASKS[name].load(1, 0)[0]
    out["gsm8k"] = Problem("g", "q", "18")
    out["gpqa_diamond"] = TASKS["gpqa_diamond"].to_problem(
        {"Question": "q", "Correct Answer": "a", "Incorrect Answer 1": "b", "Incorrect Answer 2": "c",
         "Incorrect Answer 3": "d"}, 0, 0)
    out["arc_challenge"] = Problem("a", "q", "C", {"options": ["1", "2", "3", "4"], "letters": "ABCD"})
    out["custom:number"], out["custom:exact"] = Problem("n", "q", "1000"), Problem("e", "q", "Paris")
    out["custom:choice"] = Problem("c", "q", "B")
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.function_scoped_fixture])
@given(texts)
def test_graders_never_raise(problems, text):
    for name in FAST_GRADERS:
        task = get_task(name)
        flexible, _ = task.extract(text)
        assert task.grade(flexible, problems[name]) in (True, False)
        assert task.grade(text, problems[name]) in (True, False)       # raw text as an answer


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=25).map("".join))
def test_math_verify_grading_never_raises(text):
    assert math_equal(text, "\\frac{1}{2}") in (True, False)
    assert math_equal(math_answer(text)[0], ["42", "x^2"]) in (True, False)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES + ["return ", "import os\n", "while 1: pass\n"]), max_size=20).map("".join))
def test_code_grading_never_raises(text):
    import tasks.humaneval as he

    problem = get_task("humaneval").load(1, 0)[0]
    limit, he.TIMEOUT_S = he.TIMEOUT_S, 2.0   # "while 1: pass" pieces time out; no need to wait 10 s
    try:
        assert get_task("humaneval").grade(code_answer(text)[0], problem) in (True, False)
    finally:
        he.TIMEOUT_S = limit


PATHOLOGICAL = {
    "10 MB of digits": "7" * 10_000_000,
    "1 MB of digits with commas": "1,000," * 170_000,
    "deeply nested braces": "\\boxed{" + "{" * 100_000 + "1" + "}" * 100_000 + "}",
    "unbalanced boxes": "\\boxed{" * 100_000,
    "many think tags": "<think>" * 100_000 + "</think>" * 3 + " \\boxed{3}",
    "answer phrases": "the answer is " * 100_000,
    "fences": "```python\n" * 100_000,
    "confusables": "Ａｎｓｗｅｒ: Ｂ " * 50_000 + "\u2212１２\u200b",
    "huge exponent": "\\boxed{9^{9^{9^{9^{9}}}}}",
    "python in a box": "\\boxed{__import__('os').system('echo pwned')}",
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_inputs(name, problems):
    text = PATHOLOGICAL[name]
    start = time.monotonic()
    for extract in EXTRACTORS:
        extract(text)
    for task in TASKS.values():
        task.extract(text)
    for grader in FAST_GRADERS:
        task = get_task(grader)
        task.grade(task.extract(text)[0], problems[grader])
    assert math_equal(math_answer(text)[0], "3") in (True, False)
    assert time.monotonic() - start < 60, f"{name} took {time.monotonic() - start:.1f}s"


def test_math_verify_timeout_returns_false():
    """A comparison that outlives the limit kills the helper and is graded wrong; the next one works."""
    start = time.monotonic()
    assert math_equal("\\boxed{" * 400 + "1", "1", timeout=0.001) is False
    assert time.monotonic() - start < 30
    assert math_equal("\\frac{1}{2}", "0.5") is True

"""Table-driven math extraction and grading: model text -> (flexible, strict) -> grade against a gold."""

import pytest

from tasks import get_task
from tasks.answers import after_think, math_answer
from tasks.base import Problem
from tasks.champ import champ_golds
from tasks.gsm8k import gsm_answer, gsm_gold
from tasks.mathgrade import math_equal

# (model text, flexible, strict)
EXTRACT = [
    ("So the total is \\boxed{42}.", "42", "42"),
    ("First I get \\boxed{3}. Wait, that is wrong: \\boxed{5}", "5", "5"),                # last, not first
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", "\\frac{1}{2}"),                              # nested braces
    ("The answer is $\\frac{3}{4}$.", "\\frac{3}{4}", None),                                # stated, no box
    ("Answer: 17\nI hope this helps.", "17", None),
    ("**Final answer:** 12 apples.", "12 apples", None),
    ("We have 12 apples and 30 pears, 42 in all", "42", None),                              # last number
    ("<think>maybe \\boxed{9}</think>So it is \\boxed{10}", "10", "10"),                    # think ignored
    ("<think>I guess \\boxed{9} but I keep thinking", None, None),                          # never answered
    ("<think>done</think>", None, None),
    ("", None, None),
    ("\\boxed{3", "3", None),                                                              # unbalanced box
]


@pytest.mark.parametrize("text,flexible,strict", EXTRACT)
def test_math_answer(text, flexible, strict):
    assert math_answer(text) == (flexible, strict)


GSM_EXTRACT = [
    ("She earns 16 - 3 - 4 = 9 eggs, 9 * 2 = 18 dollars.\n#### 18", "18", "18"),
    ("#### 1,000", "1000", "1000"),
    ("The answer is 18. \\boxed{18}", "18", "18"),
    ("So 5 + 7 = 12 and she pays 20 dollars", "20", None),
]


@pytest.mark.parametrize("text,flexible,strict", GSM_EXTRACT)
def test_gsm_answer(text, flexible, strict):
    assert gsm_answer(text) == (flexible, strict)


def test_gsm_gold():
    assert gsm_gold("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72") == "72"
    assert gsm_gold("... so 1,250 in all\n#### 1,250") == "1250"


# (answer, gold, equal?)
EQUAL = [
    ("0.5", "\\frac{1}{2}", True),          # the classic trap: a decimal vs a boxed fraction
    ("\\frac{1}{2}", "0.5", True),
    ("\\dfrac{1}{2}", "\\frac{1}{2}", True),
    ("1,000", "1000", True),
    ("1000.0", "1000", True),
    ("10 \\text{ cm}", "10", True),           # units in \text{}
    ("$18", "18", True),
    ("18 dollars", "18", True),               # units after a number
    ("12 apples.", "12", True),
    ("50\\%", "50", True),
    ("6 pi", "6", False),                     # not a unit
    ("１２", "12", True),                      # fullwidth digits
    ("5x", "5", False),
    ("2", "\\frac{1}{2}", False),
    ("\\left(3, \\frac{\\pi}{2}\\right)", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
    ("(3, \\pi/2)", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
    ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}", True),
    ("x^2+2x+1", "(x+1)^2", True),
    ("17", "71", False),
    (None, "1", False),
    ("", "1", False),
    ("x" * 5000, "1", False),                  # too long to be an answer
]


@pytest.mark.parametrize("answer,gold,ok", EQUAL)
def test_math_equal(answer, gold, ok):
    assert math_equal(answer, gold) is ok


def test_after_think():
    assert after_think("plain") == "plain"
    assert after_think("<think>a</think>b") == "b"
    assert after_think("<think>a</think>b<think>c</think>d") == "d"
    assert after_think("<think>never closed") is None


def _grade(task_name: str, text: str, problem: Problem) -> bool:
    task = get_task(task_name)
    flexible, _ = task.extract(text)
    return task.grade(flexible, problem)


# (task, completion, gold, correct?) -- realistic completions end to end through the task object
END_TO_END = [
    ("gsm8k", "Janet has 16 - 3 - 4 = 9 eggs left. 9 * $2 = $18.\nThe answer is \\boxed{18}.", "18", True),
    ("gsm8k", "16 - 3 - 4 = 9, and 9 * 2 = 18. So she makes $18 every day.", "18", True),
    ("gsm8k", "The total is \\boxed{18} ... wait, 16 - 3 = 13, 13 - 4 = 9 eggs: \\boxed{9}", "18", False),
    ("gsm8k", "It takes \\boxed{1,000} steps", "1000", True),
    ("math500", "Thus $r=3$, $\\theta=\\pi/2$, so \\boxed{\\left(3,\\frac{\\pi}{2}\\right)}",
     "\\left( 3, \\frac{\\pi}{2} \\right)", True),
    ("math500", "The probability is \\boxed{0.5}", "\\frac{1}{2}", True),
    ("math500", "The probability is \\boxed{\\frac{1}{3}}", "\\frac{1}{2}", False),
    ("aime2024", "<think>Try 104... no.</think>Therefore the answer is \\boxed{204}.", "204", True),
    ("aime2024", "<think>It is \\boxed{204}", "204", False),                  # cut off while thinking
    ("aime2025", "The answer is $\\boxed{070}$", "70", True),
]


@pytest.mark.parametrize("task,text,gold,ok", END_TO_END)
def test_math_tasks_end_to_end(task, text, gold, ok):
    assert _grade(task, text, Problem(id="p", question="q", gold=gold)) is ok


CHAMP = [
    ("@@C(10, 5)@@, or equivalently @@252@@", ["C(10, 5)", "252", "C(10, 5), or equivalently 252"]),
    ("239", ["239"]),
    ("@@(a^3+2b)/(3a)@@", ["(a^3+2b)/(3a)"]),
]


@pytest.mark.parametrize("raw,golds", CHAMP)
def test_champ_golds(raw, golds):
    assert champ_golds(raw) == golds


@pytest.mark.parametrize("text,raw_gold,ok", [
    ("There are \\boxed{252} such strings.", "@@C(10, 5)@@, or equivalently @@252@@", True),
    ("So $x^2+y^2 = \\boxed{\\frac{a^3+2b}{3a}}$", "@@(a^3+2b)/(3a)@@", True),
    ("\\boxed{251}", "@@C(10, 5)@@, or equivalently @@252@@", False),
])
def test_champ_grading(text, raw_gold, ok):
    p = Problem(id="p", question="q", gold=raw_gold.replace("@@", ""), data={"golds": champ_golds(raw_gold)})
    assert _grade("champ", text, p) is ok


def test_champ_loads_from_package():
    problems = get_task("champ").load(3, 0)
    assert [p.id for p in problems] == ["P_Combinatorics_1", "P_Combinatorics_2", "P_Combinatorics_3"]
    assert problems[0].gold == "239" and "@@" not in problems[1].question
    assert get_task("champ").size == 270


def test_custom_graders(tmp_path):
    f = tmp_path / "qa.jsonl"
    f.write_text('{"question": "1/2+1/4?", "answer": "\\\\frac{3}{4}"}\n{"id": "b", "question": "Capital of France?", '
                 '"answer": "Paris"}\n')
    math, exact = get_task("custom:math"), get_task("custom:exact")
    problems = math.load(10, 0, data_file=str(f))
    assert [p.id for p in problems] == ["custom-0", "b"]
    assert math.grade(math.extract("so \\boxed{0.75}")[0], problems[0])
    assert not math.grade(math.extract("so \\boxed{0.7}")[0], problems[0])
    assert exact.grade(exact.extract("The answer is  paris.")[0], problems[1])
    assert get_task("custom:number").grade("1,000", Problem("x", "q", "1000"))

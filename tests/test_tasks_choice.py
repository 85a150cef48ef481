"""Multiple choice: the last letter stated as the answer, option shuffling, and the two MC tasks."""

import pytest

from tasks import get_task
from tasks.base import Problem
from tasks.choice import choice_answer

# (model text, flexible, strict)
CASES = [
    ("Answer: B", "B", "B"),
    ("The mitochondria makes ATP.\nAnswer: (C)", "C", "C"),
    ("**Answer:** D", "D", "D"),
    ("I first thought Answer: A, but rechecking the units...\nAnswer: C", "C", "C"),     # last, not first
    ("Answer: B\nWait, actually the answer is D.", "D", "B"),
    ("The correct answer is (C) because...", "C", None),
    ("Therefore, the answer is $\\boxed{A}$.", "A", None),
    ("So the best choice is **B**.", "B", None),
    ("Option D is correct.", "D", None),
    ("I think the answer is a bit subtle. Options (A) x and (B) y are wrong.", "B", None),  # no statement
    ("Answer: Ｃ", "C", "C"),                                                              # fullwidth letter
    ("<think>Answer: A</think>\nAnswer: B", "B", "B"),
    ("<think>Answer: A ... still thinking", None, None),
    ("No idea.", None, None),
    ("Answer: F", None, None),                                                             # not an option
]


@pytest.mark.parametrize("text,flexible,strict", CASES)
def test_choice_answer(text, flexible, strict):
    assert choice_answer(text, "ABCDE") == (flexible, strict)


GPQA_ROW = {"Record ID": "rec1", "Question": "Which particle is a lepton?", "Correct Answer": "muon",
            "Incorrect Answer 1": "proton", "Incorrect Answer 2": "neutron", "Incorrect Answer 3": "pion"}


def test_gpqa_shuffle_is_seeded_and_recorded():
    task = get_task("gpqa_diamond")
    p0, p0b, p1 = task.to_problem(GPQA_ROW, 0, 0), task.to_problem(GPQA_ROW, 0, 0), task.to_problem(GPQA_ROW, 0, 1)
    assert p0.data["options"] == p0b.data["options"]                     # same seed, same order
    assert sorted(p0.data["options"]) == sorted(["muon", "proton", "neutron", "pion"])
    assert p0.data["options"]["ABCD".index(p0.gold)] == "muon"          # gold letter follows the shuffle
    assert p1.data["options"]["ABCD".index(p1.gold)] == "muon"
    assert p0.data["shuffle_seed"] == "gpqa|0|rec1" and p0.data["order"][p0.data["options"].index("muon")] == 0
    orders = {tuple(task.to_problem(dict(GPQA_ROW, **{"Record ID": f"r{i}"}), i, 0).data["order"]) for i in range(40)}
    assert len(orders) > 5                                             # the correct answer is not always first


def test_gpqa_prompt_and_grade():
    task = get_task("gpqa_diamond")
    p = task.to_problem(GPQA_ROW, 0, 0)
    text = task.prompt(p)[0]["content"]
    assert "Which particle is a lepton?" in text and f"{p.gold}) muon" in text and "Answer: X" in text
    wrong = next(x for x in "ABCD" if x != p.gold)
    assert task.grade(task.extract(f"Leptons include muons.\nAnswer: {p.gold}")[0], p)
    assert not task.grade(task.extract(f"Answer: {p.gold}\nNo wait.\nAnswer: {wrong}")[0], p)


ARC_ROW = {"id": "Mercury_7175875", "question": "An astronomer observes that a planet rotates faster after a "
           "meteorite impact. Which is the most likely effect of this increase in rotation?",
           "choices": {"text": ["Planetary density will decrease.", "Planetary years will become longer.",
                                "Planetary days will become shorter.", "Planetary gravity will become stronger."],
                       "label": ["A", "B", "C", "D"]}, "answerKey": "C"}


def test_arc_numeric_labels_become_letters():
    task = get_task("arc_challenge")
    row = dict(ARC_ROW, choices={"text": ["a", "b", "c"], "label": ["1", "2", "3"]}, answerKey="2")
    p = task.to_problem(row, 0, 0)
    assert p.gold == "B" and p.data["letters"] == "ABC"
    assert task.grade(task.extract("Answer: B")[0], p)


def test_arc_grade():
    task = get_task("arc_challenge")
    p = task.to_problem(ARC_ROW, 0, 0)
    assert p.id == "Mercury_7175875" and p.gold == "C"
    assert task.grade(task.extract("Faster rotation means shorter days.\nAnswer: C")[0], p)
    assert not task.grade(task.extract("Answer: A")[0], p)
    assert not task.grade(None, p)


def test_custom_choice():
    task = get_task("custom:choice")
    p = Problem("q", "Pick one: A) 1 B) 2", "B")
    assert task.grade(task.extract("Answer: B")[0], p) and not task.grade(task.extract("Answer: A")[0], p)

"""What the free-form math tasks share: a boxed-answer prompt, ``math_answer`` extraction and
``math_equal`` (math-verify) grading. Each benchmark module only says where its rows come from."""

from __future__ import annotations

from tasks.answers import math_answer
from tasks.base import Problem
from tasks.mathgrade import math_equal

INSTRUCTION = "Solve the problem step by step. Put your final answer within \\boxed{}."


def pick(row: dict, *names: str):
    """The first of ``names`` present in ``row`` (hub copies of a benchmark differ in column names)."""
    for n in names:
        if n in row and row[n] is not None:
            return row[n]
    return None


class MathMixin:
    def prompt(self, problem: Problem) -> list[dict]:
        return [{"role": "user", "content": f"{problem.question}\n\n{INSTRUCTION}"}]

    def extract(self, text: str) -> tuple[str | None, str | None]:
        return math_answer(text)

    def grade(self, answer: str | None, problem: Problem) -> bool:
        return math_equal(answer, problem.data.get("golds") or problem.gold)

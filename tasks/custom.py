"""Custom tasks without code: a JSONL file of ``{"question": ..., "answer": ...}`` rows (optional
``id``) passed with ``--data-file``, and a grader chosen in the task name, ``custom:<grader>``:

* ``custom:math``: boxed-answer prompt, math-verify equivalence (``\\frac{1}{2}`` = ``0.5``);
* ``custom:number``: boxed-answer prompt, numeric equality after normalisation (``1,000`` = ``1000``);
* ``custom:exact``: boxed-answer prompt, string equality after trimming, case-folding and collapsing
  spaces;
* ``custom:choice``: the question lists its own options; the answer is a letter A-E.

Example row (``custom:math``)::

    {"id": "q1", "question": "What is 1/2 + 1/4?", "answer": "\\\\frac{3}{4}"}
"""

from __future__ import annotations

import re

from tasks.answers import math_answer
from tasks.base import Problem
from tasks.choice import INSTRUCTION as CHOICE_INSTRUCTION
from tasks.choice import choice_answer
from tasks.hub import read_data_file, require
from tasks.mathgrade import math_equal, numeric_equal
from tasks.mathtask import INSTRUCTION as MATH_INSTRUCTION
from ttc.errors import TTCError


def _exact(answer: str, gold: str) -> bool:
    norm = lambda s: re.sub(r"\s+", " ", s.strip().strip("$").strip()).casefold()  # noqa: E731
    return norm(answer) == norm(gold)


GRADERS = {
    "math": lambda answer, gold: math_equal(answer, gold),
    "number": lambda answer, gold: bool(numeric_equal(answer, gold)),
    "exact": _exact,
    "choice": lambda answer, gold: answer.strip().upper() == gold.strip().upper(),
}


class CustomTask:
    source = "user file (--data-file)"
    licence = "the file's own"
    split = "file"
    size = None
    takes_data_file = True

    def __init__(self, grader: str):
        if grader not in GRADERS:
            raise TTCError(f"unknown custom grader {grader!r}; known: {', '.join(GRADERS)} (custom:<grader>)")
        self.grader = grader
        self.name = f"custom:{grader}"
        self.description = (f"Your JSONL of question/answer rows (--data-file), graded by '{grader}'. "
                            f"Graders: {', '.join(GRADERS)}.")

    def load(self, limit: int, seed: int, data_file: str | None = None) -> list[Problem]:
        if not data_file:
            raise TTCError(f"{self.name} needs --data-file with JSONL rows {{\"question\": ..., \"answer\": ...}}")
        problems = []
        for i, row in enumerate(read_data_file(data_file)[:limit]):
            require(row, ("question", "answer"), f"--data-file {data_file}")
            problems.append(Problem(id=str(row.get("id", f"custom-{i}")), question=str(row["question"]),
                                    gold=str(row["answer"]).strip()))
        return problems

    def prompt(self, problem: Problem) -> list[dict]:
        if self.grader == "choice":
            instruction = CHOICE_INSTRUCTION.format(letters="A, B, C, D, E")
        else:
            instruction = MATH_INSTRUCTION
        return [{"role": "user", "content": f"{problem.question}\n\n{instruction}"}]

    def extract(self, text: str) -> tuple[str | None, str | None]:
        if self.grader == "choice":
            return choice_answer(text, "ABCDE")
        return math_answer(text)

    def grade(self, answer: str | None, problem: Problem) -> bool:
        if not isinstance(answer, str) or not answer.strip():
            return False
        try:
            return bool(GRADERS[self.grader](answer, problem.gold))
        except Exception:  # odd text is a wrong answer, never a crash
            return False

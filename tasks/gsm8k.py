"""GSM8K (Cobbe et al. 2021, "Training Verifiers to Solve Math Word Problems"): grade-school word
problems with an integer answer. Hub ``openai/gsm8k``, config ``main``, split ``test``, 1319 problems,
MIT licence. Columns: ``question``, ``answer`` (a worked solution ending in ``#### <number>``).

Example::

    Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins
    for her friends every day with four. She sells the remainder at the farmers' market daily for $2
    per fresh duck egg. How much in dollars does she make every day at the farmers' market?   gold: 18

Extraction (lm-eval's two filters): strict is the last ``\\boxed{}`` or ``#### N``; flexible falls back
to the last "answer is" statement, then the last number. Grading: numeric normalisation, then math-verify.
"""

from __future__ import annotations

import re

from tasks.answers import after_think, last_match, math_answer, normalize_number
from tasks.base import Problem
from tasks.hub import HubSource, HubTask
from tasks.mathtask import MathMixin

GSM_HASHES = re.compile(r"####\s*([^\n]{1,100})")


def gsm_gold(solution: str) -> str:
    """The reference number after ``####`` in a GSM8K solution, commas removed."""
    m = last_match(GSM_HASHES, solution)
    raw = m.group(1) if m else solution
    return normalize_number(raw) or raw.strip()


def gsm_answer(text: str) -> tuple[str | None, str | None]:
    flexible, strict = math_answer(text)
    body = after_think(text)
    if strict is None and body is not None:
        hashes = last_match(GSM_HASHES, body[-(1 << 16):])
        if hashes:
            raw = hashes.group(1).strip().rstrip(".")
            strict = flexible = normalize_number(raw) or raw
    return flexible, strict


class GSM8K(MathMixin, HubTask):
    name = "gsm8k"
    src = HubSource("openai/gsm8k", "main", "test", 1319, "MIT")
    summary = "GSM8K grade-school math word problems (Cobbe et al. 2021)."
    columns = ("question", "answer")

    def to_problem(self, row: dict, index: int, seed: int) -> Problem:
        return Problem(id=f"gsm8k-{index}", question=str(row["question"]), gold=gsm_gold(str(row["answer"])),
                       data={"solution": row["answer"]})

    def extract(self, text: str) -> tuple[str | None, str | None]:
        return gsm_answer(text)

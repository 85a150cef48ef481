"""Procedurally generated problems from reasoning-gym (Apache-2.0), graded by its own scorers.

Problems are generated offline and reproducibly from the run seed, so every machine sees the same items.
Any reasoning-gym family can be run as ``rg:<family>`` (e.g. ``rg:leg_counting``); a few are registered
under short names.

Example (``chain_sum``)::

    State the final answer to the following arithmetic problem: 4 - 1 - 7 =      gold: -4
"""

from __future__ import annotations

import re

from tasks.answers import after_think, last_boxed, numeric_answer, stated_answer
from tasks.base import Problem
from ttc.errors import TTCError

INSTRUCTION = "Put your final answer within \\boxed{}."
MAX_ANSWER = 1000  # characters handed to a reasoning-gym scorer at most
# Families whose answer is an arithmetic expression (``(3 + 5) * 3``), not a number. Their scorers run
# sympy's ``parse_expr``, which evaluates Python: only plain arithmetic (no ``**``) is passed to them.
EXPRESSION_FAMILIES = {"countdown", "puzzle24"}
ARITHMETIC = re.compile(r"[0-9+\-*/×÷() .]{1,200}")
# Scorers that call Python's ``eval`` on the answer, but only to give partial credit (0.1 or 0.5); full
# credit is an exact match, which is all ttc counts, so these are graded by that match alone.
EXACT_ONLY_FAMILIES = {"string_insertion", "spiral_matrix", "binary_matrix", "n_queens"}
# Scorers that run sympy's ``parse_expr`` (Python ``eval`` underneath) on the answer: it reaches them only
# as plain math (letters, digits, operators, parentheses; named functions from a short list; no power
# towers), which cannot call anything else or run for long.
SYMPY_FAMILIES = {"simple_integration", "intermediate_integration", "polynomial_multiplication"}
PLAIN_MATH = re.compile(r"[0-9A-Za-z+\-*/^() .,]{1,300}")
MATH_NAMES = {"sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan", "sinh", "cosh", "tanh", "exp",
              "log", "ln", "sqrt", "pi", "oo"}
POWER_TOWER = re.compile(r"(?:\*\*|\^)\s*(?:\(|[\w.]+\s*(?:\*\*|\^))|(?:\*\*|\^)\s*\d{3,}")


def expression_answer(text: str) -> tuple[str | None, str | None]:
    """``(flexible, strict)`` for expression answers: the last box's content as written (not reduced to
    a number); flexible falls back to the last "answer is" statement. ``×``/``÷`` become ``*``/``/``
    and a trailing ``= 24`` is dropped."""
    body = after_think(text)
    if body is None:
        return None, None
    strict = last_boxed(body)
    flexible = strict or stated_answer(body)

    def fix(s: str) -> str:  # "3 \\times 8 = 24" -> "3 * 8"
        s = s.replace("×", "*").replace("÷", "/").replace("\\times", "*").replace("\\div", "/")
        return s.split("=", 1)[0].strip()

    return (fix(flexible) if flexible else None), (fix(strict) if strict else None)


def safe_for_scorer(family: str, answer: str) -> bool:
    """Whether ``answer`` may be handed to the family's scorer (see ``EXPRESSION_FAMILIES`` and
    ``SYMPY_FAMILIES``); other families' scorers compare text and numbers."""
    if len(answer) > MAX_ANSWER or "__" in answer:
        return False
    if family in EXPRESSION_FAMILIES:
        return bool(ARITHMETIC.fullmatch(answer)) and "**" not in answer and "//" not in answer
    if family in SYMPY_FAMILIES:
        names = re.findall(r"[A-Za-z]+", answer)
        return (bool(PLAIN_MATH.fullmatch(answer)) and not POWER_TOWER.search(answer)
                and all(len(n) == 1 or n in MATH_NAMES for n in names))
    return True


def uses_given_numbers(answer: str, entry: dict) -> bool:
    """puzzle24's scorer checks only how many numbers an answer uses and their range, so ``6*4+1-1``
    passed for the numbers 1, 3, 5, 9; an answer must use exactly the given numbers."""
    given = (entry.get("metadata") or {}).get("numbers")
    return given is None or sorted(int(n) for n in re.findall(r"\d+", answer)) == sorted(given)


def exact_match(answer: str, entry: dict) -> bool:
    """Full credit of the ``EXACT_ONLY_FAMILIES`` scorers, without their ``eval``."""
    valid = (entry.get("metadata") or {}).get("valid_answers")
    return answer in valid if valid else answer == entry["answer"]


class ReasoningGymTask:
    takes_data_file = False  # generated from the seed: there is no data file

    def __init__(self, family: str, name: str | None = None, summary: str = "", **config):
        self.family = family
        self.name = name or f"rg:{family}"
        self.config = config
        self.description = (f"reasoning-gym '{family}' (Apache-2.0): procedurally generated from the run "
                            f"seed, any size. {summary}").strip()
        self.source = f"reasoning-gym {family} (generated)"
        self.licence = "Apache-2.0"
        self.split = "generated from --seed"
        self.size = None  # any
        self._datasets: dict = {}

    def _dataset(self, limit: int, seed: int):
        import reasoning_gym

        key = (limit, seed)
        if key not in self._datasets:
            try:
                self._datasets[key] = reasoning_gym.create_dataset(self.family, size=limit, seed=seed,
                                                                   **self.config)
            except (KeyError, ValueError) as e:
                raise TTCError(f"reasoning-gym cannot build {self.family!r}: {e}") from None
        return self._datasets[key]

    def load(self, limit: int, seed: int) -> list[Problem]:
        ds = self._dataset(limit, seed)
        problems = []
        for i in range(limit):
            e = ds[i]
            problems.append(Problem(id=f"{self.family}-{seed}-{i}", question=e["question"],
                                    gold=str(e["answer"]), data={"entry": e, "key": (limit, seed)}))
        return problems

    def prompt(self, problem: Problem) -> list[dict]:
        return [{"role": "user", "content": f"{problem.question}\n\n{INSTRUCTION}"}]

    def extract(self, text: str) -> tuple[str | None, str | None]:
        if self.family in EXPRESSION_FAMILIES:
            return expression_answer(text)
        return numeric_answer(text)

    def grade(self, answer: str | None, problem: Problem) -> bool:
        if not isinstance(answer, str) or not safe_for_scorer(self.family, answer):
            return False
        if self.family in EXACT_ONLY_FAMILIES:
            return exact_match(answer, problem.data["entry"])
        if self.family == "puzzle24" and not uses_given_numbers(answer, problem.data["entry"]):
            return False
        ds = self._dataset(*problem.data["key"])
        try:
            return float(ds.score_answer(answer, problem.data["entry"])) >= 1.0
        except Exception:  # a scorer choking on odd model text is a wrong answer, not a crash
            return False


def family_names() -> list[str]:
    import reasoning_gym

    return sorted(reasoning_gym.factory.DATASETS)

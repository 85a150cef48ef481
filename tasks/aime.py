"""AIME 2024 and AIME 2025: the American Invitational Mathematics Examination, 30 problems a year
(parts I and II), each answer an integer from 0 to 999.

* ``aime2024``: hub ``HuggingFaceH4/aime_2024``, split ``train``, 30 problems.
* ``aime2025``: hub ``yentinglin/aime_2025``, split ``train``, 30 problems.

Columns: ``problem`` (or ``question``), ``answer``, optional ``id``. Licence: none stated on the dataset
cards; the problems are (c) the Mathematical Association of America. Graded by math-verify.

Example (2024 I, problem 1)::

    Every morning Aya goes for a 9-kilometer-long walk and stops at a coffee shop afterwards. ...
    gold: 204
"""

from __future__ import annotations

from tasks.base import Problem
from tasks.hub import HubSource, HubTask
from tasks.mathtask import MathMixin, pick
from ttc.errors import TTCError


class AIME(MathMixin, HubTask):
    columns = ("answer",)

    def __init__(self, year: int, hub_id: str):
        self.year = year
        self.name = f"aime{year}"
        self.src = HubSource(hub_id, None, "train", 30, "not stated (problems (c) MAA)")
        self.summary = f"AIME {year} I and II, integer answers 0-999."

    def to_problem(self, row: dict, index: int, seed: int) -> Problem:
        question = pick(row, "problem", "question", "Problem")
        if question is None:
            raise TTCError(f"{self.name}: rows need a 'problem' (or 'question') column")
        pid = pick(row, "id", "ID")
        return Problem(id=f"aime{self.year}-{pid if pid is not None else index}", question=str(question),
                       gold=str(row["answer"]).strip())

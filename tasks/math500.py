"""MATH-500 (Lightman et al. 2023, "Let's Verify Step by Step"): 500 problems of the MATH test set
(Hendrycks et al. 2021) at five difficulty levels. Hub ``HuggingFaceH4/MATH-500``, split ``test``,
500 problems, MIT licence (as MATH). Columns: ``problem``, ``answer`` (LaTeX), ``solution``,
``subject``, ``level``, ``unique_id``.

Example::

    Convert the point $(0,3)$ in rectangular coordinates to polar coordinates. ...
    gold: \\left( 3, \\frac{\\pi}{2} \\right)

Graded by math-verify: ``\\frac{1}{2}`` = ``0.5``, ``\\dfrac`` = ``\\frac``, tuples, intervals, units.
"""

from __future__ import annotations

from tasks.base import Problem
from tasks.hub import HubSource, HubTask
from tasks.mathtask import MathMixin, pick


class Math500(MathMixin, HubTask):
    name = "math500"
    src = HubSource("HuggingFaceH4/MATH-500", None, "test", 500, "MIT")
    summary = "MATH-500 competition math, LaTeX answers (Lightman et al. 2023)."
    columns = ("problem", "answer")

    def to_problem(self, row: dict, index: int, seed: int) -> Problem:
        pid = str(pick(row, "unique_id") or f"math500-{index}")
        return Problem(id=pid, question=str(row["problem"]), gold=str(row["answer"]),
                       data={"subject": row.get("subject"), "level": row.get("level")})

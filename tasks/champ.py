"""CHAMP (Mao et al. 2024, "CHAMP: A Competition-level Dataset for Fine-Grained Analyses of LLMs'
Mathematical Reasoning Capabilities"): 270 competition problems (number theory, polynomials,
sequences, inequalities, combinatorics) with free-form final answers. Read offline from the
``champ-dataset`` package (``champ_dataset/dataset_files/v0.json``), all 270 problems (no split), MIT.

Example (``P_Combinatorics_1``)::

    Let a string consist of digit 1, 2, 3. How many such strings of length 6 have adjacent digit
    differing by less than or equal to 1?                                          gold: 239

Answers are free text with the math marked ``@@...@@`` (``@@C(10, 5)@@, or equivalently @@252@@``); a
completion is right when math-verify finds its answer equal to any marked expression or to the whole
answer. Answers that are prose ("0 is the only possible value") or sets described in words are only
matched when the model's answer parses to the same thing, so this grader undercounts them; the CHAMP
paper graded with a model instead.
"""

from __future__ import annotations

import json
import re

from tasks.base import Problem
from tasks.hub import read_data_file
from tasks.mathtask import MathMixin
from ttc.errors import TTCError

MARKED = re.compile(r"@@(.+?)@@", re.DOTALL)


def champ_golds(raw_answer: str) -> list[str]:
    """The marked expressions of a CHAMP answer, then the whole answer without markers."""
    golds = [m.group(1).strip() for m in MARKED.finditer(raw_answer)]
    whole = raw_answer.replace("@@", "").strip()
    return [g for g in golds if g] + ([whole] if whole not in golds else [])


class CHAMP(MathMixin):
    name = "champ"
    source = "champ-dataset package (CHAMP, Mao et al. 2024)"
    licence = "MIT"
    split = "all"
    size = 270
    description = ("CHAMP competition math with free-form answers (Mao et al. 2024). Source: the "
                   "champ-dataset package, all 270 problems (no split), licence MIT.")
    takes_data_file = True  # a JSONL of {identifier, _raw_text, _raw_answer} rows replaces the package

    def __init__(self):
        self._rows: list[dict] | None = None

    def _packaged(self) -> list[dict]:
        if self._rows is None:
            try:
                from importlib.resources import files

                path = files("champ_dataset") / "dataset_files" / "v0.json"
                data = json.loads(path.read_text(encoding="utf-8"))
            except (ModuleNotFoundError, FileNotFoundError):
                raise TTCError("champ needs the champ-dataset package: pip install champ-dataset") from None
            self._rows = list(data["problems"].values())
        return self._rows

    def load(self, limit: int, seed: int, data_file: str | None = None) -> list[Problem]:
        rows = read_data_file(data_file) if data_file else self._packaged()
        problems = []
        for i, row in enumerate(rows[:limit]):
            text, answer = row.get("_raw_text") or row.get("text"), row.get("_raw_answer") or row.get("answer")
            if not isinstance(text, str) or not isinstance(answer, str):
                raise TTCError(f"champ: row {i} needs '_raw_text' and '_raw_answer' strings")
            golds = champ_golds(answer)
            problems.append(Problem(id=str(row.get("identifier") or f"champ-{i}"), question=text.replace("@@", ""),
                                    gold=answer.replace("@@", ""),
                                    data={"golds": golds, "category": row.get("category")}))
        return problems

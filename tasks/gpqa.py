"""GPQA-Diamond (Rein et al. 2023, "GPQA: A Graduate-Level Google-Proof Q&A Benchmark"): 198
graduate-level biology, physics and chemistry questions with four options. Hub ``Idavidrein/gpqa``
(gated: accept its terms and set a token), config ``gpqa_diamond``, split ``train``, CC-BY-4.0.
Columns: ``Question``, ``Correct Answer``, ``Incorrect Answer 1..3``, ``Record ID``.

The hub rows list the correct answer first, so options are shuffled per problem from the run seed
(``random.Random(f"gpqa|{seed}|{record id}")``); the order is stored in ``Problem.data`` (``order``,
``shuffle_seed``) and so in every record's gold letter.

Example::

    A large gene has dozens of exons, of which the central ones code for folded triple helical
    repeats ... Which of the following structures is not involved in the proposed therapy?
    A) lariat  B) polyA tail  C) antisense  D) R-loops          gold: the letter of "R-loops"
"""

from __future__ import annotations

import random

from tasks.base import Problem
from tasks.choice import ChoiceMixin
from tasks.hub import HubSource, HubTask

LETTERS = "ABCD"


class GPQADiamond(ChoiceMixin, HubTask):
    name = "gpqa_diamond"
    src = HubSource("Idavidrein/gpqa", "gpqa_diamond", "train", 198, "CC-BY-4.0")
    summary = "GPQA-Diamond graduate-level science, 4 options shuffled from the seed (Rein et al. 2023)."
    columns = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")

    def to_problem(self, row: dict, index: int, seed: int) -> Problem:
        rid = str(row.get("Record ID") or index)
        options = [str(row["Correct Answer"]).strip()] + [str(row[f"Incorrect Answer {i}"]).strip()
                                                            for i in (1, 2, 3)]
        order = list(range(4))
        shuffle_seed = f"gpqa|{seed}|{rid}"
        random.Random(shuffle_seed).shuffle(order)
        shuffled = [options[i] for i in order]
        gold = LETTERS[order.index(0)]
        return Problem(id=f"gpqa-{rid}", question=str(row["Question"]).strip(), gold=gold,
                       data={"options": shuffled, "letters": LETTERS, "order": order,
                             "shuffle_seed": shuffle_seed})

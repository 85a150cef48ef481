"""ARC-Challenge (Clark et al. 2018, "Think you have Solved Question Answering? Try ARC"): grade-school
science questions that retrieval and co-occurrence baselines get wrong; 3-5 options. Hub
``allenai/ai2_arc``, config ``ARC-Challenge``, split ``test``, 1172 problems, CC-BY-SA-4.0.
Columns: ``id``, ``question``, ``choices`` (``{"text": [...], "label": [...]}``), ``answerKey``.

Some rows label options ``1``-``4`` instead of ``A``-``D``; options are always shown as letters and the
gold is mapped to its letter.

Example::

    An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most
    likely effect of this increase in rotation?
    A) Planetary density will decrease.  B) Planetary years will become longer.
    C) Planetary days will become shorter.  D) Planetary gravity will become stronger.      gold: C
"""

from __future__ import annotations

from tasks.base import Problem
from tasks.choice import ChoiceMixin
from tasks.hub import HubSource, HubTask
from ttc.errors import TTCError

LETTERS = "ABCDE"


class ARCChallenge(ChoiceMixin, HubTask):
    name = "arc_challenge"
    src = HubSource("allenai/ai2_arc", "ARC-Challenge", "test", 1172, "CC-BY-SA-4.0")
    summary = "ARC-Challenge grade-school science, multiple choice (Clark et al. 2018)."
    columns = ("question", "choices", "answerKey")

    def to_problem(self, row: dict, index: int, seed: int) -> Problem:
        choices = row["choices"]
        texts, labels = list(choices.get("text", [])), [str(x) for x in choices.get("label", [])]
        key = str(row["answerKey"]).strip()
        if not texts or len(texts) != len(labels) or len(texts) > len(LETTERS) or key not in labels:
            raise TTCError(f"arc_challenge: row {index} has malformed choices or answerKey {key!r}")
        letters = LETTERS[:len(texts)]
        return Problem(id=str(row.get("id") or f"arc-{index}"), question=str(row["question"]).strip(),
                       gold=letters[labels.index(key)],
                       data={"options": [str(t) for t in texts], "letters": letters, "labels": labels})

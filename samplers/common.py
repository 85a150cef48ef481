"""Helpers the strategies share: derived seeds, grading a candidate text, the answers of stored records."""

from __future__ import annotations

import pandas as pd

# Salts that keep derived seeds apart from the sampling seeds of the same path or chain.
LOOKAHEAD_SALT = 7  # beam search's greedy lookahead steps
ANSWER_SALT = 999  # budget forcing's answer after the thinking


def sub_seed(seed: int, *parts: int) -> int:
    """A seed derived from ``seed`` and integer ``parts`` (a path, an iteration, a cap): a fixed mix, so a
    strategy's every draw depends only on the problem's seed and where in the strategy it happens."""
    h = seed
    for p in parts:
        h = (h * 1_000_003 + p + 1) & 0x7FFFFFFF
    return h


def grade_text(task, problem, text: str) -> bool:
    """Whether ``text``'s extracted answer is correct (the oracle verifier reads it)."""
    return bool(task.grade(task.extract(text)[0], problem))


def record_answers(group: pd.DataFrame) -> list:
    """The stored answers of records, None where none was extracted."""
    return [a if isinstance(a, str) else None for a in group["answer"]]

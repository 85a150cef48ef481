"""What every task provides: problems, a prompt per problem, ``extract`` and ``grade``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Problem:
    """One benchmark item. ``gold`` is the reference answer as text; ``data`` is whatever the grader
    needs beyond it (the source entry, test code, options ...)."""

    id: str
    question: str
    gold: str
    data: dict = field(default_factory=dict, compare=False, hash=False)


class Task(Protocol):
    name: str
    description: str  # source, licence, split and size, for `ttc tasks`
    takes_data_file: bool  # load() also takes ``data_file=``: a local file replaces the packaged or hub data

    def load(self, limit: int, seed: int) -> list[Problem]:
        """The first ``limit`` problems (deterministic for a given seed); a task that ``takes_data_file``
        is called as ``load(limit, seed, data_file=path_or_None)``."""
        ...

    def prompt(self, problem: Problem) -> list[dict]:
        """Chat messages asking the question."""
        ...

    def extract(self, text: str) -> tuple[str | None, str | None]:
        """``(flexible, strict)`` answers from a completion; ``flexible`` is the one that is graded."""
        ...

    def grade(self, answer: str | None, problem: Problem) -> bool:
        ...

"""Procedurally generated problems from reasoning-gym (Apache-2.0), graded by its own scorers.

Problems are generated offline and reproducibly from the run seed, so every machine sees the same items.
Any reasoning-gym family can be run as ``rg:<family>`` (e.g. ``rg:leg_counting``); a few are registered
under short names.

Example (``chain_sum``)::

    State the final answer to the following arithmetic problem: 4 - 1 - 7 =      gold: -4
"""

from __future__ import annotations

from tasks.answers import numeric_answer
from tasks.base import Problem
from ttc.errors import TTCError

INSTRUCTION = "Put your final answer within \\boxed{}."


class ReasoningGymTask:
    def __init__(self, family: str, name: str | None = None, summary: str = "", **config):
        self.family = family
        self.name = name or f"rg:{family}"
        self.config = config
        self.description = (f"reasoning-gym '{family}' (Apache-2.0): procedurally generated from the run "
                            f"seed, any size. {summary}").strip()
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
        return numeric_answer(text)

    def grade(self, answer: str | None, problem: Problem) -> bool:
        if answer is None:
            return False
        ds = self._dataset(*problem.data["key"])
        try:
            return float(ds.score_answer(answer, problem.data["entry"])) >= 1.0
        except Exception:  # a scorer choking on odd model text is a wrong answer, not a crash
            return False


def family_names() -> list[str]:
    import reasoning_gym

    return sorted(reasoning_gym.factory.DATASETS)

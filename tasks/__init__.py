"""Task registry: a plain dict from name to task object, plus ``rg:<family>`` for any reasoning-gym
family and ``custom:<grader>`` for a user's JSONL file (see ``tasks/custom.py``).

``ttc tasks`` lists them with source, licence, split and size.
"""

from __future__ import annotations

from tasks.aime import AIME
from tasks.arc import ARCChallenge
from tasks.base import Problem, Task
from tasks.champ import CHAMP
from tasks.custom import GRADERS, CustomTask
from tasks.gpqa import GPQADiamond
from tasks.gsm8k import GSM8K
from tasks.humaneval import HumanEval
from tasks.math500 import Math500
from tasks.rg import ReasoningGymTask
from ttc.errors import TTCError

TASKS: dict[str, Task] = {
    # Sized so that a 135M model is right sometimes and sampling helps; `rg:chain_sum` is the
    # library's default (2-6 terms of 1-4 digits).
    "chain_sum": ReasoningGymTask("chain_sum", name="chain_sum", min_terms=2, max_terms=4, min_digits=1,
                                  max_digits=2, summary="Sums and differences of 2-4 integers of 1-2 digits."),
    "basic_arithmetic": ReasoningGymTask("basic_arithmetic", name="basic_arithmetic",
                                         summary="Expressions with + - * / and parentheses."),
    "gsm_symbolic": ReasoningGymTask("gsm_symbolic", name="gsm_symbolic",
                                     summary="GSM8K-derived word problems with re-sampled numbers "
                                             "(GSM-Symbolic, Mirzadeh et al. 2024)."),
    "countdown": ReasoningGymTask("countdown", name="countdown",
                                  summary="Reach a target number from given numbers with + - * /; the answer "
                                          "is an expression."),
    "puzzle24": ReasoningGymTask("puzzle24", name="puzzle24",
                                 summary="Make 24 from four numbers with + - * /; the answer is an expression."),
    "gsm8k": GSM8K(),
    "math500": Math500(),
    "aime2024": AIME(2024, "HuggingFaceH4/aime_2024"),
    "aime2025": AIME(2025, "yentinglin/aime_2025"),
    "gpqa_diamond": GPQADiamond(),
    "arc_challenge": ARCChallenge(),
    "humaneval": HumanEval(),
    "champ": CHAMP(),
}


def get_task(name: str) -> Task:
    if name in TASKS:
        return TASKS[name]
    if name.startswith("rg:"):
        from tasks.rg import family_names

        family = name[3:]
        if family not in family_names():
            raise TTCError(f"unknown reasoning-gym family {family!r}")
        return ReasoningGymTask(family)
    if name.startswith("custom:"):
        return CustomTask(name[len("custom:"):])
    raise TTCError(f"unknown task {name!r}; known: {', '.join(sorted(TASKS))}, rg:<family>, "
                   f"or custom:<grader> ({'|'.join(GRADERS)}) with --data-file")


def load_problems(task: Task, limit: int, seed: int, data_file: str | None = None) -> list[Problem]:
    """``task.load`` with ``data_file`` passed to the tasks that take one (``takes_data_file``); a
    ``TTCError`` if no problem is left or two problems share an id (their records could not be told apart)."""
    if task.takes_data_file:
        problems = task.load(limit, seed, data_file=data_file)
    else:
        problems = task.load(limit, seed)
    where = f"--data-file {data_file}" if data_file and task.takes_data_file else task.name
    if not problems:
        raise TTCError(f"{where}: no problems to run")
    seen = set()
    for p in problems:
        if p.id in seen:
            raise TTCError(f"{where}: the id {p.id!r} is used by two problems; ids must be unique")
        seen.add(p.id)
    return problems


__all__ = ["TASKS", "Problem", "Task", "get_task", "load_problems"]

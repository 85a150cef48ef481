"""Task registry: a plain dict from name to task object, plus ``rg:<family>`` for any reasoning-gym family."""

from __future__ import annotations

from tasks.base import Problem, Task
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
    raise TTCError(f"unknown task {name!r}; known: {', '.join(sorted(TASKS))}, or rg:<family>")


__all__ = ["TASKS", "Problem", "Task", "get_task"]

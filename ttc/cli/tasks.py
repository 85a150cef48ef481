"""``ttc tasks``: list the registered tasks with source, licence, split and size.

Also runnable: ``rg:<family>`` for any reasoning-gym family (``--families`` lists them) and
``custom:<grader>`` for a JSONL file of question/answer rows passed with ``--data-file``.
"""

from __future__ import annotations

import sys

from tasks import TASKS
from tasks.custom import GRADERS
from ttc.errors import OneLineParser

COLUMNS = ("name", "source", "licence", "split", "size")


def task_rows() -> list[dict]:
    rows = []
    for name, task in TASKS.items():
        size = getattr(task, "size", None)
        rows.append({"name": name, "source": getattr(task, "source", ""), "licence": getattr(task, "licence", ""),
                     "split": getattr(task, "split", ""), "size": "any" if size is None else str(size),
                     "description": task.description})
    rows.append({"name": "rg:<family>", "source": "reasoning-gym <family> (generated)", "licence": "Apache-2.0",
                 "split": "generated from --seed", "size": "any",
                 "description": "Any reasoning-gym family by name, e.g. rg:leg_counting."})
    rows.append({"name": "custom:<grader>", "source": "user file (--data-file)", "licence": "the file's own",
                 "split": "file", "size": "file",
                 "description": f"JSONL rows with question/answer; graders: {', '.join(GRADERS)}."})
    return rows


def format_table(rows: list[dict], columns=COLUMNS) -> str:
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines.append("  ".join("-" * widths[c] for c in columns))
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None, prog: str = "ttc tasks") -> int:
    p = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("--long", action="store_true", help="also print each task's description")
    p.add_argument("--families", action="store_true", help="list the reasoning-gym families usable as rg:<family>")
    args = p.parse_args(argv)
    if args.families:
        from tasks.rg import family_names

        print("\n".join(family_names()))
        return 0
    rows = task_rows()
    print(format_table(rows))
    if args.long:
        print()
        for r in rows:
            print(f"{r['name']}: {r['description']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

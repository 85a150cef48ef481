"""The math-verify helper process (see ``tasks/mathgrade.py``): reads one JSON request per line on
stdin, ``{"answer": str, "golds": [str, ...]}``, and writes ``true`` or ``false`` per line on stdout.

Run as a script (``python -I mathverify_worker.py``); standard library plus ``math_verify`` only. Its
main thread uses math-verify's ``signal.alarm`` timeouts; memory is capped with ``RLIMIT_AS``.
"""

import json
import logging
import resource
import sys

MEMORY = 2 << 30


def equal(parse, verify, configs, expr_only, answer: str, golds: list) -> bool:
    pred = parse(f"\\boxed{{{answer}}}", configs, parsing_timeout=3)
    if not pred:
        return False
    for g in golds:
        target = parse(f"\\boxed{{{g}}}", configs, parsing_timeout=3)
        if all(isinstance(t, str) for t in target):
            # not LaTeX: a gold written as a plain expression (CHAMP's ``2^floor(n/2)``)
            target = target + parse(g, expr_only, parsing_timeout=3)
        if target and verify(target, pred, timeout_seconds=3):
            return True
    return False


def main() -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    except (ValueError, OSError):
        pass
    logging.disable(logging.CRITICAL)  # math-verify logs every parse failure and timeout
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    configs = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    expr_only = [ExprExtractionConfig()]
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        try:
            req = json.loads(line)
            ok = equal(parse, verify, configs, expr_only, str(req["answer"]), [str(g) for g in req["golds"]])
        except BaseException:  # MemoryError, RecursionError, math-verify internals: a wrong answer
            ok = False
        sys.stdout.write("true\n" if ok else "false\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

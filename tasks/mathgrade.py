"""Math answer equivalence: ``math_equal(answer, gold)`` (extraction is ``tasks.answers.math_answer``).

Equivalence is decided by ``math-verify`` (Hugging Face; parse + verify: LaTeX and plain expressions,
fractions vs decimals, sets, intervals, units in ``\\text{}``) after a cheap numeric fast path
(``1,000`` = ``1000``, ``2.0`` = ``2``, ``18 dollars`` = ``18``).

Model text is untrusted. math-verify's own timeouts use ``signal.alarm``: they work only in the main
thread (elsewhere it refuses to run) and cannot interrupt a long C-level operation. So every math-verify
call here runs in one long-lived helper process (``tasks/mathverify_worker.py``, started on first use,
memory-capped with ``RLIMIT_AS``) that uses those timeouts in its own main thread; the caller waits at most
``TIMEOUT_S`` seconds and otherwise kills the helper (a fresh one starts on the next call) and grades the
answer wrong. Answers longer than ``MAX_ANSWER`` characters are wrong without being parsed.
"""

from __future__ import annotations

import atexit
import json
import re
import select
import subprocess
import sys
import threading
import unicodedata
from pathlib import Path

from tasks.answers import normalize_number

TIMEOUT_S = 10.0  # the caller's hard limit per comparison (the helper's own limits are tighter)
MAX_ANSWER = 1000  # characters
STARTUP_S = 60.0  # the helper imports sympy once
WORKER = Path(__file__).with_name("mathverify_worker.py")


class _Helper:
    """One math-verify process (``tasks/mathverify_worker.py``) per ttc process, talking JSON lines over
    pipes; restarted after a timeout or a crash. Thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None

    def _start(self) -> bool:
        self.proc = subprocess.Popen([sys.executable, "-I", str(WORKER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     encoding="utf-8", errors="replace", bufsize=1)
        return self._read(STARTUP_S) == "ready"

    def _read(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        return self.proc.stdout.readline().strip()

    def _stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
        self.proc = None

    def equal(self, answer: str, golds: list[str], timeout: float) -> bool:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._stop()
                if not self._start():
                    self._stop()
                    return False
            try:
                self.proc.stdin.write(json.dumps({"answer": answer, "golds": golds}) + "\n")
                self.proc.stdin.flush()
                reply = self._read(timeout)
            except (OSError, ValueError):
                reply = None
            if reply in ("true", "false"):
                return reply == "true"
            self._stop()
            return False

    def close(self) -> None:
        with self.lock:
            self._stop()


_HELPER = _Helper()
atexit.register(_HELPER.close)


TEXT_GROUP = re.compile(r"\\(?:text|mbox|mathrm|textbf)\s*\{[^{}]{0,80}\}")
UNITS = re.compile(r"^\s*(\$?\s*[-\u2212]?[\d,]*\.?\d+)\s*(?:\\?%|\^\s*\{?\\circ\}?|°|((?:[A-Za-z]{2,}\.?\s+){0,2}[A-Za-z]{2,}))?"
                   r"\s*\.?\s*$")
MATH_WORDS = {"pi", "sqrt", "log", "ln", "exp", "sin", "cos", "tan", "cot", "sec", "csc", "infty", "inf", "and", "or",
              "times", "cdot", "frac", "mod", "pmod", "choose", "factorial"}


def strip_units(s: str) -> str:
    """``"18 dollars"`` -> ``"18"``, ``"10\\text{ cm}"`` -> ``"10"``, ``"50\\%"`` -> ``"50"``; anything else
    (``"6 pi"``, ``"5x"``, ``"2 and 3"``) unchanged. Unit words have two letters or more and are not math."""
    if len(s) > 200:
        return s
    t = TEXT_GROUP.sub(" ", s)
    m = UNITS.match(t)
    if not m:
        return s
    words = (m.group(2) or "").lower().replace(".", " ").split()
    return s if any(w in MATH_WORDS for w in words) else m.group(1)


def numeric_equal(answer: str, gold: str) -> bool | None:
    """True/False when both are plain numbers, else None (undecided). Units after the answer's number are
    dropped (``18 dollars`` vs gold ``18``); the gold is taken as written."""
    if len(answer) > MAX_ANSWER or len(gold) > MAX_ANSWER:
        return None
    a, g = normalize_number(strip_units(answer)), normalize_number(gold)
    if a is None or g is None:
        return None
    return a == g or float(a) == float(g)


def math_equal(answer: str | None, gold: str | list[str], timeout: float = TIMEOUT_S) -> bool:
    """Whether ``answer`` equals ``gold`` (or any of a list of accepted golds). Never raises."""
    if not isinstance(answer, str) or not answer.strip() or len(answer) > MAX_ANSWER:
        return False
    answer = unicodedata.normalize("NFKC", answer)  # fullwidth digits and letters read as ASCII
    golds = [gold] if isinstance(gold, str) else list(gold)
    for g in golds:
        if numeric_equal(answer, g):
            return True
    if all(numeric_equal(answer, g) is False for g in golds):
        return False
    try:
        return _HELPER.equal(answer, golds, timeout)
    except Exception:
        return False

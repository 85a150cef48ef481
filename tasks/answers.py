"""Answer extraction shared by tasks: pure functions over untrusted model text.

Every extractor takes the **last** match (first-match extraction silently loses a large share of
correct answers when models restate the question or self-correct), and none backtracks catastrophically:
the patterns are linear, and the brace scanner is a single pass over at most the last 1 MiB.
"""

from __future__ import annotations

import re

BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
THINK_END = re.compile(r"</think\s*>", re.IGNORECASE)
THINK_START = re.compile(r"<think\s*>", re.IGNORECASE)
ANSWER_IS = re.compile(r"(?i)\banswer\s*(?:is|:|=)[ \t:]*")
NUMBER = re.compile(r"(?<![\w.])[-\u2212]?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])")
MAX_SCAN = 1 << 20  # extraction looks at most at the last 1 MiB of a completion


def last_match(pattern: re.Pattern, text: str) -> re.Match | None:
    """The last non-overlapping match of ``pattern`` in ``text``, or None (one linear pass)."""
    found = None
    for found in pattern.finditer(text):
        pass
    return found


def after_think(text: str) -> str | None:
    """The text after the last ``</think>``; the text itself if it has no think block; None when a
    ``<think>`` is never closed (the model ran out of tokens while thinking: nothing was answered)."""
    tail = text[-MAX_SCAN:]
    end = last_match(THINK_END, tail)
    if end is not None:
        return tail[end.end():]
    if THINK_START.search(text):
        return None
    return text


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` with balanced braces, or None. One linear pass."""
    text = text[-MAX_SCAN:]
    box_open = {m.end() - 1 for m in BOXED.finditer(text)}  # index of each box's "{"
    stack: list[int] = []
    best: tuple[int, int] | None = None
    for i, c in enumerate(text):
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            start = stack.pop()
            if start in box_open and (best is None or start > best[0]):
                best = (start, i)
    return text[best[0] + 1: best[1]].strip() if best else None


def last_number(text: str) -> str | None:
    """The last integer or decimal in the text (thousands separators allowed), normalised."""
    found = last_match(NUMBER, text[-MAX_SCAN:])
    return normalize_number(found.group(0)) if found is not None else None


def normalize_number(s: str) -> str | None:
    """``"$1,000.0"`` -> ``"1000"``, ``"−3"`` -> ``"-3"``, ``"0.50"`` -> ``"0.5"``; None if not a number."""
    t = s.strip().replace("\u2212", "-").replace("$", "").replace(",", "").replace(" ", "")
    t = t.rstrip(".")
    if not re.fullmatch(r"-?\d+(?:\.\d+)?", t):
        return None
    neg = t.startswith("-")
    t = t.lstrip("-")
    if "." in t:
        t = t.rstrip("0").rstrip(".")
    t = t.lstrip("0") or "0"
    if t.startswith("."):
        t = "0" + t
    return "-" + t if neg and t != "0" else t


def numeric_answer(text: str) -> tuple[str | None, str | None]:
    """``(flexible, strict)`` for tasks whose answer is a number: strict is the last box's content
    (normalised when it is a number), flexible falls back to the last number in the text."""
    boxed = last_boxed(text)
    strict = None
    if boxed:
        # "x = 12" -> "12"; LaTeX such as \frac{1}{2} is kept whole rather than cut to a number
        strict = normalize_number(boxed) or ("\\" not in boxed and last_number(boxed)) or boxed
    return (strict if strict is not None else last_number(text)), strict


def stated_answer(body: str) -> str | None:
    """What follows the last "answer is" / "Answer:" on its line, without ``$``, ``**`` and a final period."""
    tail = body[-(1 << 16):]
    last = last_match(ANSWER_IS, tail)
    if last is None:
        return None
    line = tail[last.end():last.end() + 200].split("\n", 1)[0]
    line = line.replace("**", "").strip().rstrip(".").strip()
    if line.startswith("$") and line.count("$") >= 2:
        line = line.strip("$").split("$", 1)[0]
    return line.strip() or None


def math_answer(text: str) -> tuple[str | None, str | None]:
    """``(flexible, strict)`` for a math completion: strict is the last ``\\boxed{}``; flexible falls
    back to the last "answer is X" / "Answer: X" statement, then to the last number."""
    body = after_think(text)
    if body is None:
        return None, None
    strict = last_boxed(body)
    if strict:
        return strict, strict
    found = stated_answer(body)
    if found:
        return found, None
    return last_number(body), None

"""Answer extraction shared by tasks: pure functions over untrusted model text.

Every extractor takes the **last** match (first-match extraction silently loses a large share of
correct answers when models restate the question or self-correct), and none backtracks catastrophically:
the patterns are linear, and the brace scanner is a single pass over at most the last 1 MiB.
"""

from __future__ import annotations

import re

BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
NUMBER = re.compile(r"(?<![\w.])[-\u2212]?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])")
MAX_SCAN = 1 << 20  # extraction looks at most at the last 1 MiB of a completion


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
    text = text[-MAX_SCAN:]
    found = None
    for m in NUMBER.finditer(text):
        found = m.group(0)
    return normalize_number(found) if found is not None else None


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

"""Multiple-choice answers: the last letter option stated as the answer.

``choice_answer(text, letters)`` returns ``(flexible, strict)``:

* strict: the last ``Answer: X`` line (the format the prompt asks for; simple-evals' pattern);
* flexible: the last answer statement of any usual form (``Answer: X``, ``the answer is (X)``,
  ``\\boxed{X}``, ``**X**``, ``option X``), else the last parenthesised letter ``(X)`` in the text.

Text is NFKC-normalised first, so fullwidth ``Ｂ`` reads as ``B``; answers inside an unclosed
``<think>`` do not count, and those in a closed one are ignored when something follows it.
"""

from __future__ import annotations

import re
import unicodedata

from tasks.answers import after_think

MAX_SCAN = 1 << 16  # the answer is stated near the end; look at most at the last 64 KiB

# Letters are matched upper-case only ("the answer is a bit long" states no option); words in any case.
STRICT = re.compile(r"(?m)^[ \t*#>_]*(?i:answer)[ \t*]*:[ \t*$(]*([A-J])\b")
STATED = re.compile(
    r"(?i:answer)[ \t*]*(?:(?i:is)|:)[ \t*:$]*(?:(?i:option|choice)[ \t]*)?\(?([A-J])\b"
    r"|\\boxed\{[ \t]*(?:\\text\{)?[ \t]*\(?([A-J])\)?[ \t]*\}?[ \t]*\}"
    r"|\*\*\(?([A-J])\)?\*\*"
    r"|\b(?i:option|choice)[ \t]+\(?([A-J])\)?(?=[ \t]*(?:(?i:is)[ \t]+(?:(?i:the)[ \t]+)?(?i:correct)|[.!\n]|$))")
PAREN = re.compile(r"\(([A-J])\)")


def _last(pattern: re.Pattern, text: str, letters: str) -> str | None:
    found = None
    for m in pattern.finditer(text):
        letter = next((g for g in m.groups() if g), None)
        if letter and letter.upper() in letters:
            found = letter.upper()
    return found


def choice_answer(text: str, letters: str = "ABCD") -> tuple[str | None, str | None]:
    body = after_think(text[-MAX_SCAN:])
    if body is None:
        return None, None
    body = unicodedata.normalize("NFKC", body)
    strict = _last(STRICT, body, letters)
    flexible = _last(STATED, body, letters) or strict or _last(PAREN, body, letters)
    return flexible, strict


def format_options(options: list[str], letters: str) -> str:
    return "\n".join(f"{letter}) {text}" for letter, text in zip(letters, options))


INSTRUCTION = ("Think step by step, then give your final answer on the last line in the form "
               "'Answer: X', where X is one of {letters}.")


class ChoiceMixin:
    """Prompt, extract and grade for a task whose problems carry ``data['options']``."""

    letters = "ABCDE"  # the most options any registered multiple-choice task has

    def prompt(self, problem) -> list[dict]:
        letters = problem.data["letters"]
        text = (f"{problem.question}\n\n{format_options(problem.data['options'], letters)}\n\n"
                + INSTRUCTION.format(letters=", ".join(letters)))
        return [{"role": "user", "content": text}]

    def extract(self, text: str) -> tuple[str | None, str | None]:
        return choice_answer(text, self.letters)

    def grade(self, answer: str | None, problem) -> bool:
        return isinstance(answer, str) and answer.strip().upper() == problem.gold

"""lm-evaluation-harness's filters and ``exact_match``, re-done per completion (lm-eval 0.4.x semantics).

A filter (``filter_list`` in the task config that ``results_<date>.json`` keeps under ``configs``) is a
pipeline over a document's k completions. ttc splits it into the steps that map each completion to an answer
(``regex``, ``remove_whitespace``, ``lowercase``, ``uppercase``, ``map``) and the reduction that follows
(``take_first``, ``take_first_k``, ``majority_vote``), and reports lm-eval's value as the metric of the run that
equals it (``Plan.metric``): no reduction is the mean over completions (``mean@k``); ``take_first`` the first
completion (``vote@k`` at k=1, see ``samplers.imported``); ``majority_vote`` the vote of all n (``vote@k`` at n);
``take_first_k`` k + ``majority_vote`` the vote of the first k.

``ExactMatch`` is lm-eval's ``exact_match`` with the task's options (``regexes_to_ignore``, ``ignore_case``,
``ignore_punctuation``, ``ignore_numbers``), applied to prediction and reference alike, in lm-eval's order.
Anything else (another metric, a custom ``process_results``, a filter function not listed here) is not
reproduced: ``unsupported`` says why, and the importer says so instead of grading.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

INVALID = "[invalid]"
PER_COMPLETION = ("regex", "remove_whitespace", "lowercase", "uppercase", "map")
EXACT_MATCH_OPTIONS = ("regexes_to_ignore", "ignore_case", "ignore_punctuation", "ignore_numbers")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_DIGITS = str.maketrans("", "", string.digits)


@dataclass(frozen=True)
class Plan:
    """One lm-eval filter, as ttc re-applies it: per-completion ``steps``, then ``reduce`` over the first
    ``k`` completions (``none``: every completion is scored, lm-eval's value is their mean)."""

    name: str
    steps: tuple[dict, ...]
    reduce: str  # none | first | vote
    k: int | None = None  # vote / first over the first k completions; None: all of them

    def metric(self, n: int) -> tuple[str, int]:
        """``(metric, budget)`` of ttc's summary that equals lm-eval's value for this filter at n completions."""
        if self.reduce == "none":
            return "mean@k", 1
        if self.reduce == "first":
            return "vote@k", 1
        return "vote@k", min(self.k or n, n)

    def fallback(self) -> str:
        return next((str(s.get("fallback", INVALID)) for s in self.steps if s.get("function") == "regex"), INVALID)


def plan(cfg: dict) -> Plan | str:
    """The ``Plan`` of a ``filter_list`` entry, or a one-phrase reason why ttc cannot re-apply it."""
    name = str(cfg.get("name", "none"))
    steps = list(cfg.get("filter") or [])
    i = 0
    while i < len(steps) and steps[i].get("function") in PER_COMPLETION:
        i += 1
    per, tail = steps[:i], [s.get("function") for s in steps[i:]]
    for s in per:
        if s.get("function") == "map" and not all(isinstance(v, str) for v in (s.get("mapping_dict") or {}).values()):
            return f"filter {name!r}: a map to values that are not text"
    k = None
    if tail[:1] == ["take_first_k"]:
        k = steps[i].get("k")
        if not isinstance(k, int) or k < 1:
            return f"filter {name!r}: take_first_k without a positive k"
        tail = tail[1:]
        if not tail:
            return f"filter {name!r}: take_first_k without a vote (a mean of the first k)"
    if tail == []:
        return Plan(name, tuple(per), "none")
    if tail == ["take_first"]:
        return Plan(name, tuple(per), "first", 1) if k is None else f"filter {name!r}: take_first after take_first_k"
    if tail in (["majority_vote"], ["majority_vote", "take_first"]):
        return Plan(name, tuple(per), "vote", k)
    other = [f for f in tail if f not in ("take_first", "majority_vote", "take_first_k")] or tail
    return f"filter {name!r}: step(s) {', '.join(map(str, other))} (ttc re-applies {', '.join(PER_COMPLETION)}, " \
           f"take_first, take_first_k, majority_vote)"


def apply(steps: tuple[dict, ...], text: str) -> str:
    """lm-eval's per-completion filter steps on one completion (``RegexFilter`` gives its ``fallback``,
    ``[invalid]`` by default, when nothing matches)."""
    out = text if isinstance(text, str) else ""
    for s in steps:
        fn = s["function"]
        if fn == "regex":
            matches = re.findall(s.get("regex_pattern", r"#### (\-?[0-9\.\,]+)"), out)
            fallback = s.get("fallback", INVALID)
            if not matches:
                out = fallback
                continue
            m = matches[int(s.get("group_select", 0))]
            if isinstance(m, tuple):
                m = next((x for x in m if x), fallback)
            out = m.strip()
        elif fn == "remove_whitespace":
            out = out.strip()
        elif fn == "lowercase":
            out = out.lower()
        elif fn == "uppercase":
            out = out.upper()
        elif fn == "map":
            out = (s.get("mapping_dict") or {}).get(out, s.get("default_value"))
            out = "None" if out is None else out
    return out


def reduce_answers(p: Plan, answers: list[str]) -> str:
    """The one answer lm-eval keeps for a reducing filter (``Counter.most_common``: ties to the first seen)."""
    first = answers[:p.k] if p.k else answers
    if p.reduce == "first":
        return first[0]
    counts: dict[str, int] = {}
    for a in first:
        counts[a] = counts.get(a, 0) + 1
    return max(counts, key=counts.get)  # max keeps the first of equal counts, in insertion order


@dataclass(frozen=True)
class ExactMatch:
    regexes_to_ignore: tuple[str, ...] = ()
    ignore_case: bool = False
    ignore_punctuation: bool = False
    ignore_numbers: bool = False

    @classmethod
    def from_metric(cls, cfg: dict) -> "ExactMatch | str":
        """From a ``metric_list`` entry, or the reason it is not reproduced."""
        extra = [k for k in cfg if k not in ("metric", "aggregation", "higher_is_better", *EXACT_MATCH_OPTIONS)]
        if extra:
            return f"exact_match option(s) {', '.join(extra)}"
        regexes = cfg.get("regexes_to_ignore") or ()
        if isinstance(regexes, str):
            regexes = (regexes,)
        return cls(tuple(map(str, regexes)), bool(cfg.get("ignore_case")), bool(cfg.get("ignore_punctuation")),
                   bool(cfg.get("ignore_numbers")))

    def __post_init__(self):
        object.__setattr__(self, "_ignore", tuple(re.compile(r) for r in self.regexes_to_ignore))

    def normalize(self, text: str) -> str:
        for r in self._ignore:
            text = r.sub("", text)
        if self.ignore_case:
            text = text.lower()
        if self.ignore_punctuation:
            text = text.translate(_PUNCTUATION)
        if self.ignore_numbers:
            text = text.translate(_DIGITS)
        return text

    def __call__(self, prediction: str, target) -> bool:
        """lm-eval's score of one prediction: a list target (``multiple_target``) matches any of its items."""
        return self.grader(target)(prediction)

    def grader(self, target):
        """``prediction -> bool`` for one target, its normalised form computed once (a document's k answers)."""
        golds = {self.normalize(str(g)) for g in (target if isinstance(target, list) else [target])}
        return lambda prediction: self.normalize(str(prediction)) in golds

    def describe(self) -> str:
        opts = [f"{k}={getattr(self, k)!r}" for k in EXACT_MATCH_OPTIONS if getattr(self, k)]
        return f"exact_match({', '.join(opts) or 'no options'})"

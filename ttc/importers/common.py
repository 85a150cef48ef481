"""What every importer produces (``Imported``, a stream of ``ImportedProblem``) and the helpers they share:
the model's shape from a ``config.json`` (for FLOPs), a tokenizer to count tokens a log lacks, the budgets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from ttc.errors import TTCError
from ttc.metrics.flops import ModelSpec

LABEL_PREFIX = "imported:"  # sampler label of an imported answer column: imported:<filter or scorer>


@dataclass(frozen=True)
class ImportedSample:
    text: str
    answer: str | None
    correct: bool
    answer_strict: str | None = None
    prompt_tokens: int | None = None  # None: the log has no count
    generated_tokens: int | None = None
    finish_reason: str | None = None  # None: the log does not say
    extra: dict = field(default_factory=dict)  # what else the log holds about this sample


@dataclass(frozen=True)
class ImportedProblem:
    label: str  # the sampler label, ``imported:<name>``
    id: str
    gold: str
    prompt: str  # what the model read (the question as posed), for the report and for counting tokens
    samples: tuple[ImportedSample, ...]
    extra: dict = field(default_factory=dict)  # stored on the problem's first record (doc id, the harness's metrics)


@dataclass
class Imported:
    """One task of one model from another harness's log. ``problems`` is read once, as the run is written:
    readers stream the log through it, and may add to ``assumptions``, ``notes`` and ``source`` as they go."""

    fmt: str
    task: str
    model: str
    problems: Iterable[ImportedProblem]
    source: dict
    assumptions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # printed when the import ends (disagreements, skipped filters)
    digest: str = ""  # a hash of the source content: the run id derives from it
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    model_dir: str | None = None  # a local checkpoint the log names: config and tokenizer come from it
    # the harness's own numbers, to compare with the run's: {"label", "metric", "budget", "value", "name"}
    reported: list[dict] = field(default_factory=list)
    texts_label: str | None = None  # a label that holds every completion once (what `ttc rescore` re-grades)


def label_of(name: str) -> str:
    return LABEL_PREFIX + str(name)


def spec_from_config_json(path: str | Path) -> ModelSpec:
    """``ModelSpec`` from a Hugging Face ``config.json`` (or the directory holding one), read as JSON."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    try:
        raw = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise TTCError(f"--model-config {path}: cannot read a config.json ({e})") from None

    def ns(d: dict) -> SimpleNamespace:
        return SimpleNamespace(**{k: ns(v) if k == "text_config" and isinstance(v, dict) else v for k, v in d.items()})

    c = ns(raw)
    c.model_type = getattr(c, "model_type", "")
    try:
        return ModelSpec.from_hf_config(c)
    except (AttributeError, TypeError) as e:
        raise TTCError(f"--model-config {path}: not a decoder-only model config ({e})") from None


class TokenCounter:
    """Counts tokens with a Hugging Face tokenizer (prompt with special tokens, completion without)."""

    def __init__(self, path: str):
        from transformers import AutoTokenizer

        try:
            self.tok = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as e:
            raise TTCError(f"--tokenizer {path}: cannot load a tokenizer ({e})") from None

    def prompt(self, text: str) -> int:
        return len(self.tok(text).input_ids)

    def completion(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False).input_ids)


def budgets_for(n: int) -> tuple[int, ...]:
    """Powers of two below n, and n: the budgets every smaller k is derived at."""
    b, k = [], 1
    while k < n:
        b.append(k)
        k *= 2
    return tuple(b + [n])


def slug(text: str, width: int = 80) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:width]


def number(value) -> float | None:
    """A score value as a number (inspect's C/I/P/N letters, booleans, numbers), None when it is none."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    letters = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}
    if isinstance(value, str) and value.upper() in letters:
        return letters[value.upper()]
    try:
        return float(value)
    except (TypeError, ValueError):
        return None

"""inspect_ai eval logs (``EvalLog``) with ``epochs``: each dataset sample appears once per epoch.

A ``.json`` log is read as JSON (inspect's documented log format: ``eval``, ``plan``, ``results``, ``samples``;
each sample with ``id``, ``epoch``, ``input``, ``target``, ``output`` (``choices``, ``completion``,
``usage``) and ``scores`` (per scorer: ``value``, ``answer``)). A ``.eval`` log (a zip of JSON files
compressed with zstd) is read with ``inspect_ai.log.read_eval_log``, so it needs inspect_ai installed.

Per record: the text is the output's completion, the answer the chosen scorer's ``answer``, correct when its
value is ``C`` (inspect's CORRECT) or a number >= 1, token counts from ``output.usage``, the finish reason
from the choice's ``stop_reason`` (``max_tokens`` and ``model_length`` become ``length``).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

from ttc.errors import TTCError
from ttc.importers.common import Imported, ImportedProblem, ImportedSample

LENGTH_REASONS = {"max_tokens", "model_length", "length"}


def load_log(path: Path) -> dict:
    """The log as a dict in inspect's JSON layout."""
    if path.suffix == ".eval":
        try:
            from inspect_ai.log import read_eval_log
        except ImportError:
            raise TTCError(f"{path}: a .eval log needs inspect_ai (pip install inspect_ai), or convert it with "
                           f"`inspect log convert --to json`") from None
        return read_eval_log(str(path)).model_dump(mode="json", exclude_none=True)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise TTCError(f"{path}: not an inspect JSON log ({e})") from None


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(str(c.get("text", "")) for c in content if isinstance(c, dict) and c.get("type", "text") == "text")
    return "" if content is None else str(content)


def _prompt(inp) -> str:
    if isinstance(inp, list):
        return "\n\n".join(f"{m.get('role', '')}: {_text(m.get('content'))}" for m in inp if isinstance(m, dict))
    return _text(inp)


def _correct(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value >= 1
    return str(value).upper() == "C"


def read_inspect(path: Path, scorer: str | None = None) -> list[Imported]:
    path = Path(path)
    log = load_log(path)
    ev = log.get("eval") or {}
    samples = log.get("samples")
    if not isinstance(samples, list) or not ev:
        raise TTCError(f"{path}: no eval header or no samples (was the eval run with log_samples?)")
    scorers = [s.get("name") for s in ev.get("scorers") or [] if s.get("name")]
    if not scorers:
        scorers = list(dict.fromkeys(k for s in samples for k in (s.get("scores") or {})))
    chosen = scorer or (scorers[0] if scorers else None)
    if chosen is None:
        raise TTCError(f"{path}: the samples carry no scores; nothing says which are correct")
    by_id: dict[str, list[dict]] = defaultdict(list)
    for s in samples:
        by_id[str(s.get("id"))].append(s)
    assumptions = [f"answers and correctness: inspect scorer {chosen!r} (scorers in the log: {', '.join(scorers)}); "
                   f"correct = value C or a number >= 1",
                   "answer_strict: inspect keeps one answer per scorer; left empty",
                   "prefill: each epoch read its prompt again (counted once per record)"]
    problems, no_usage, no_score = [], 0, 0
    for sid, group in by_id.items():
        group.sort(key=lambda s: int(s.get("epoch", 1)))
        recs = []
        for s in group:
            out = s.get("output") or {}
            choices = out.get("choices") or []
            text = out.get("completion") or (_text((choices[0].get("message") or {}).get("content")) if choices else "")
            score = (s.get("scores") or {}).get(chosen)
            if score is None:
                no_score += 1
            answer = (score or {}).get("answer")
            usage = out.get("usage") or {}
            if not usage:
                no_usage += 1
            stop = choices[0].get("stop_reason") if choices else None
            recs.append(ImportedSample(
                text=str(text), answer=str(answer) if answer not in (None, "") else None, answer_strict=None,
                correct=_correct(score.get("value")) if score else False,
                prompt_tokens=usage.get("input_tokens"), generated_tokens=usage.get("output_tokens"),
                finish_reason=("length" if stop in LENGTH_REASONS else ("stop" if stop == "stop" else (stop or "unknown")))))
        target = group[0].get("target")
        gold = target[0] if isinstance(target, list) and len(target) == 1 else (
            " | ".join(map(str, target)) if isinstance(target, list) else str(target))
        problems.append(ImportedProblem(id=sid, gold=str(gold), prompt=_prompt(group[0].get("input")), samples=tuple(recs)))
    if no_score:
        assumptions.append(f"{no_score} samples have no {chosen!r} score: graded wrong")
    if no_usage:
        assumptions.append(f"{no_usage} samples have no output.usage (token counts)")
    gen = ev.get("model_generate_config") or {}
    model = str(ev.get("model", "inspect_model"))
    local = model.split("/", 1)[1] if model.startswith("hf/") else None
    source = {"format": "inspect_ai eval log", "file": str(path), "task": ev.get("task"),
              "inspect_version": (ev.get("packages") or {}).get("inspect_ai"), "model": model,
              "epochs": (ev.get("config") or {}).get("epochs"), "scorer": chosen, "status": log.get("status")}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return [Imported(fmt="inspect", task=str(ev.get("task", "inspect_task")), model=model.replace("/", "_").strip("_"),
                     problems=problems, source=source, assumptions=assumptions, digest=digest,
                     temperature=gen.get("temperature"), top_p=gen.get("top_p"), max_tokens=gen.get("max_tokens"),
                     seed=gen.get("seed"),
                     model_dir=local if local and Path(local).is_dir() else None)]

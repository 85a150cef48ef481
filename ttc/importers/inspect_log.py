"""inspect_ai eval logs (``EvalLog``) with ``epochs``: each dataset sample appears once per epoch.

A ``.eval`` log (a zip of JSON files) is read one sample at a time with ``inspect_ai.log.read_eval_log_samples``,
so it needs inspect_ai installed; a ``.json`` log (inspect's JSON layout: ``eval``, ``plan``, ``results``,
``samples``) is read as JSON, whole.

Per record: the text is the output's completion, the answer the chosen scorer's ``answer``, correct when its
value is ``C`` (inspect's CORRECT) or a number >= 1; every scorer's value, answer and explanation go into
``extra["scores"]``, with the messages and the timings (``total_time``, ``working_time``, the output's
``time``). Token counts come from ``output.usage``, the finish reason from the choice's ``stop_reason``
(``max_tokens`` and ``model_length`` become ``length``; ``unknown`` is inferred from the token limit).

Loud, not quiet: a log whose eval did not end with status ``success``, or with samples that carry an
``error``, is refused (naming the status and the count) unless ``allow_errors``, which imports the good
samples and lists the rest in the header. The summary's ``mean@k`` at k=1 is inspect's ``accuracy`` under its
default ``mean`` epoch reducer (``reported`` holds inspect's value beside it).
"""

from __future__ import annotations

import json
from pathlib import Path

from ttc.backends.models import sha256_file
from ttc.errors import TTCError
from ttc.importers.common import Imported, ImportedProblem, ImportedSample, label_of, number

LENGTH_REASONS = {"max_tokens", "model_length", "length"}
SKIP_FIELDS = {"events", "store", "attachments"}
# inspect's epoch reducer -> (metric, budget) of ttc's summary that equals its accuracy (n: the epochs)
REDUCERS = {None: ("mean@k", 1), "mean": ("mean@k", 1), "max": ("pass@k", "n"), "mode": ("vote@k", "n")}


def _need_inspect(path: Path):
    try:
        import inspect_ai.log as log
    except ImportError:
        raise TTCError(f"{path}: a .eval log needs inspect_ai (pip install inspect_ai), or convert it with "
                       f"`inspect log convert --to json`") from None
    return log


def _dump(obj) -> dict:
    return obj.model_dump(mode="json", exclude_none=True, exclude=SKIP_FIELDS) if hasattr(obj, "model_dump") else obj


class _Log:
    """The header of a log and a way to stream its samples, for either layout."""

    def __init__(self, path: Path):
        self.path = path
        if path.suffix == ".eval":
            log = _need_inspect(path)
            try:
                head = log.read_eval_log(str(path), header_only=True)
            except Exception as e:  # noqa: BLE001 - a damaged zip or a newer format: one line
                raise TTCError(f"{path}: not an inspect .eval log ({type(e).__name__}: {e})") from None
            self.header = _dump(head)
            self._samples = None
            self._summaries = [_dump(s) for s in log.read_eval_log_sample_summaries(str(path))]
        else:
            try:
                raw = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise TTCError(f"{path}: not an inspect JSON log ({e})") from None
            if not isinstance(raw, dict):
                raise TTCError(f"{path}: not an inspect JSON log (a JSON object is expected)")
            self._samples = raw.pop("samples", None)
            self.header = raw
            self._summaries = self._samples if isinstance(self._samples, list) else []
        if not self.header.get("eval") or (self._samples is None and path.suffix != ".eval"):
            raise TTCError(f"{path}: no eval header or no samples (was the eval run with log_samples?)")

    def summaries(self) -> list[dict]:
        return self._summaries

    def samples(self):
        if self._samples is not None:
            yield from self._samples
            return
        log = _need_inspect(self.path)
        for s in log.read_eval_log_samples(str(self.path), all_samples_required=False, exclude_fields=SKIP_FIELDS):
            yield _dump(s)


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


def _finish(stop) -> str | None:
    if stop in LENGTH_REASONS:
        return "length"
    return stop or None


def _message(error) -> str:
    """An inspect error as text (a sample summary holds a string, a sample and the header an ``EvalError``)."""
    return str(error.get("message", "")) if isinstance(error, dict) else str(error or "")


def check_status(path: Path, log: _Log, allow_errors: bool) -> dict:
    """Refuse a log that is not a complete, error-free eval unless ``allow_errors``; return what was wrong."""
    status = log.header.get("status")
    summaries = log.summaries()
    errored = [s for s in summaries if s.get("error")]
    ev = log.header["eval"]
    epochs = int((ev.get("config") or {}).get("epochs") or 1)
    expected = len((ev.get("dataset") or {}).get("sample_ids") or []) * epochs or None
    good = len(summaries) - len(errored)
    problems = {"status": status, "samples_with_error": len(errored), "samples_in_log": len(summaries),
                "samples_expected": expected,
                "errors": sorted({_message(s.get("error"))[:200] for s in errored})[:5]}
    if log.header.get("error"):
        problems["eval_error"] = _message(log.header["error"])[:500]
    bad = status not in (None, "success") or errored
    if bad and (not allow_errors or good == 0):
        detail = f"{len(errored)} of {len(summaries)} samples carry an error" if errored else \
            f"{len(summaries)} of {expected or '?'} samples are in the log"
        why = problems.get("eval_error") or (problems["errors"][0] if problems["errors"] else "")
        fix = f"--allow-errors imports the {good} good samples and records the rest in the header" if good else \
            "no sample finished without an error: nothing to import"
        raise TTCError(f"{path}: the eval ended with status {status!r}: {detail}{f' ({why})' if why else ''}; {fix}")
    return problems if bad else {}


def read_inspect(path: Path, scorer: str | None = None, allow_errors: bool = False) -> list[Imported]:
    path = Path(path)
    log = _Log(path)
    errors = check_status(path, log, allow_errors)
    ev = log.header["eval"]
    scorers = [s.get("name") for s in ev.get("scorers") or [] if s.get("name")]
    if not scorers:
        scorers = list(dict.fromkeys(k for s in log.summaries() for k in (s.get("scores") or {})))
    chosen = scorer or (scorers[0] if scorers else None)
    if chosen is None:
        raise TTCError(f"{path}: the samples carry no scores; nothing says which are correct")
    if scorer is not None and scorers and scorer not in scorers:
        raise TTCError(f"{path}: no scorer {scorer!r}; the log has {', '.join(scorers)}")
    gen = ev.get("model_generate_config") or {}
    model = str(ev.get("model", "inspect_model"))
    local = model.split("/", 1)[1] if model.startswith("hf/") else None
    epochs = int((ev.get("config") or {}).get("epochs") or 1)
    source = {"format": "inspect_ai eval log", "file": str(path), "task": ev.get("task"),
              "inspect_version": (ev.get("packages") or {}).get("inspect_ai"), "model": model,
              "epochs": epochs, "dataset_samples": (ev.get("dataset") or {}).get("samples"), "scorer": chosen, "scorers": scorers, "status": log.header.get("status"),
              "generate_config": gen or None, **({"errors": errors} if errors else {})}
    assumptions = [f"answers and correctness: inspect scorer {chosen!r} (the sampler label imported:{chosen}; "
                   f"every scorer's value is in extra['scores']); correct = value C or a number >= 1",
                   "answer_strict: inspect keeps one answer per scorer; left empty",
                   "prefill: each epoch read its prompt again (counted once per record)"]
    if errors:
        assumptions.append(f"--allow-errors: the eval ended with status {errors['status']!r}; "
                           f"{errors['samples_with_error']} samples with an error left out (listed under "
                           f"source.errors)")
    stop = gen.get("stop_seqs")
    imp = Imported(fmt="inspect", task=str(ev.get("task", "inspect_task")), model=model.replace("/", "_").strip("_"),
                   problems=(), source=source, assumptions=assumptions, digest=sha256_file(path),
                   temperature=gen.get("temperature"), top_p=gen.get("top_p"), top_k=gen.get("top_k"),
                   max_tokens=gen.get("max_tokens"), seed=gen.get("seed"),
                   stop=tuple(stop) if isinstance(stop, list) else (), model_dir=local if local and Path(local).is_dir()
                   else None, texts_label=label_of(chosen))
    for sc in (log.header.get("results") or {}).get("scores") or []:
        acc = ((sc.get("metrics") or {}).get("accuracy") or {}).get("value")
        reducer = sc.get("reducer")
        if sc.get("name") == chosen and isinstance(acc, (int, float)) and reducer in REDUCERS:
            metric, budget = REDUCERS[reducer]
            imp.reported.append({"label": label_of(chosen), "name": f"{chosen}/accuracy ({reducer or 'mean'})",
                                 "value": float(acc), "metric": metric, "budget": epochs if budget == "n" else budget})
    imp.problems = _problems(imp, log, chosen)
    return [imp]


def _sample(s: dict, chosen: str, counts: dict) -> ImportedSample:
    out = s.get("output") or {}
    choices = out.get("choices") or []
    text = out.get("completion") or (_text((choices[0].get("message") or {}).get("content")) if choices else "")
    scores = s.get("scores") or {}
    score = scores.get(chosen)
    if score is None:
        counts["no_score"] += 1
    value = (score or {}).get("value")
    if isinstance(value, dict):
        raise TTCError(f"scorer {chosen!r} gives several values per sample ({', '.join(value)}); ttc needs one: "
                       f"choose another --scorer")
    v = number(value)
    if v is not None and 0 < v < 1:
        counts["partial"] += 1
    answer = (score or {}).get("answer")
    usage = out.get("usage") or {}
    if not usage:
        counts["no_usage"] += 1
    timing = {k: s[k] for k in ("total_time", "working_time", "started_at", "completed_at") if k in s}
    if "time" in out:
        timing["generate_time"] = out["time"]
    extra = {"scores": {k: {f: v for f, v in sc.items() if f in ("value", "answer", "explanation")}
                        for k, sc in scores.items() if isinstance(sc, dict)},
             "messages": [{"role": m.get("role"), "text": _text(m.get("content"))} for m in s.get("messages") or []
                          if isinstance(m, dict)],
             **({"timing": timing} if timing else {}), "epoch": s.get("epoch")}
    return ImportedSample(text=str(text), answer=str(answer) if answer not in (None, "") else None,
                          correct=v is not None and v >= 1, prompt_tokens=usage.get("input_tokens"),
                          generated_tokens=usage.get("output_tokens"),
                          finish_reason=_finish(choices[0].get("stop_reason")) if choices else None, extra=extra)


def _problems(imp: Imported, log: _Log, chosen: str):
    """The samples grouped by id (inspect writes each sample's epochs together; a ``.json`` log may not, so a
    group is closed only when its epochs are all in or the log ends)."""
    counts = {"no_score": 0, "partial": 0, "no_usage": 0, "errored": 0}
    epochs = int(imp.source.get("epochs") or 1)
    groups: dict[str, list[dict]] = {}

    def problem(sid: str, group: list[dict]) -> ImportedProblem:
        group.sort(key=lambda s: int(s.get("epoch", 1)))
        target = group[0].get("target")
        gold = target[0] if isinstance(target, list) and len(target) == 1 else (
            " | ".join(map(str, target)) if isinstance(target, list) else str(target))
        samples = tuple(_sample(s, chosen, counts) for s in group)
        return ImportedProblem(label=label_of(chosen), id=sid, gold=str(gold), prompt=_prompt(group[0].get("input")),
                               samples=samples, extra={"inspect_id": group[0].get("id"),
                                                       **({"metadata": group[0]["metadata"]}
                                                          if group[0].get("metadata") else {})})

    for s in log.samples():
        if s.get("error"):
            counts["errored"] += 1
            continue
        sid = str(s.get("id"))
        g = groups.setdefault(sid, [])
        g.append(s)
        if len(g) == epochs:
            yield problem(sid, groups.pop(sid))
    for sid, g in groups.items():
        yield problem(sid, g)
    if counts["no_score"]:
        imp.assumptions.append(f"{counts['no_score']} samples have no {chosen!r} score: graded wrong")
    if counts["partial"]:
        imp.notes.append(f"{counts['partial']} samples have partial credit from {chosen!r} (0 < value < 1): ttc counts "
                         f"them wrong, inspect's accuracy counts the fraction")
        imp.assumptions.append(imp.notes[-1])
    if counts["no_usage"]:
        imp.assumptions.append(f"{counts['no_usage']} samples have no output.usage (token counts)")

"""lm-evaluation-harness ``--log_samples`` output (``samples_<task>_<date>.jsonl`` + ``results_<date>.json``).

Each line of a samples file is one document under one filter: ``doc_id``, ``doc``, ``target``,
``arguments`` (``gen_args_0``: ``arg_0`` the context, ``arg_1`` the generation kwargs), ``resps`` (with
``repeats: k``, one request holding the k completions), ``filtered_resps`` (the filter's output), ``filter``,
``metrics`` and the metric values. A filter that keeps one answer per completion (a ``regex`` without
``take_first``) gives the k answers directly; one that reduces them (``take_first``, ``majority_vote``) is
re-applied per completion from its definition in ``results_<date>.json`` (the regex steps only).

The log holds no token counts, finish reasons or seeds: token counts come from ``--tokenizer`` (or the
local checkpoint the log names), and the header's ``assumptions`` say what was assumed.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from ttc.errors import TTCError
from ttc.importers.common import Imported, ImportedProblem, ImportedSample, same_answer

SAMPLES_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[0-9.\-]+)\.jsonl$")
INVALID = "[invalid]"


def _files(path: Path) -> list[tuple[str, Path, Path | None]]:
    """``(task, samples file, results file or None)`` for every samples file under ``path``."""
    found = [path] if path.is_file() else sorted(path.rglob("samples_*.jsonl"))
    out = []
    for f in found:
        m = SAMPLES_NAME.match(f.name)
        if not m:
            raise TTCError(f"{f}: not an lm-eval samples file (samples_<task>_<date>.jsonl)")
        results = f.with_name(f"results_{m['date']}.json")
        out.append((m["task"], f, results if results.exists() else None))
    return out


def _regex_steps(results: dict | None, task: str, filter_name: str) -> list[dict] | None:
    """The per-completion steps of a filter (regex, whitespace, case), or None when unknown/unsupported."""
    cfg = ((results or {}).get("configs") or {}).get(task) or {}
    for f in cfg.get("filter_list") or []:
        if f.get("name") == filter_name:
            steps = [s for s in f.get("filter", []) if s.get("function") not in ("take_first", "majority_vote")]
            ok = all(s.get("function") in ("regex", "remove_whitespace", "lowercase", "uppercase") for s in steps)
            return steps if ok else None
    return None


def _apply(steps: list[dict], text: str) -> str:
    """lm-eval's ``RegexFilter`` and friends on one completion (``[invalid]`` when nothing matches)."""
    out = text
    for s in steps:
        fn = s["function"]
        if fn == "regex":
            matches = re.findall(s.get("regex_pattern", r"#### (\-?[0-9\.\,]+)"), out)
            if not matches:
                out = s.get("fallback", INVALID)
                continue
            m = matches[int(s.get("group_select", 0))]
            if isinstance(m, tuple):
                m = next((x for x in m if x), s.get("fallback", INVALID))
            out = m.strip()
        elif fn == "remove_whitespace":
            out = out.lstrip()
        elif fn == "lowercase":
            out = out.lower()
        elif fn == "uppercase":
            out = out.upper()
    return out


def _answers(line: dict, texts: list[str], steps: list[dict] | None, fname: str) -> list[str | None]:
    fr = line.get("filtered_resps")
    if isinstance(fr, list) and len(fr) == 1 and isinstance(fr[0], list) and len(fr[0]) == len(texts):
        raw = fr[0]
    elif steps is not None:
        raw = [_apply(steps, t) for t in texts]
    else:
        raise TTCError(f"filter {fname!r} reduces the {len(texts)} completions to one answer and its steps are not "
                       f"in results_*.json (or not regex steps); choose a per-completion filter with --filter")
    return [None if (a is None or str(a) == INVALID or str(a) == "") else str(a) for a in raw]


def read_lm_eval(path: Path, filter_name: str | None = None, strict_filter: str | None = "strict-match") -> list[Imported]:
    out = []
    for task, sfile, rfile in _files(Path(path)):
        results = json.loads(rfile.read_text()) if rfile else None
        lines, digest = [], hashlib.sha256()
        with open(sfile, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                digest.update(raw)
                if raw.strip():
                    try:
                        lines.append(json.loads(raw))
                    except ValueError as e:
                        raise TTCError(f"{sfile}:{lineno}: not JSON ({e})") from None
        if not lines:
            continue
        filters = list(dict.fromkeys(str(x.get("filter", "none")) for x in lines))
        chosen = filter_name or filters[0]
        if chosen not in filters:
            raise TTCError(f"{sfile}: no filter {chosen!r}; the file has {', '.join(filters)}")
        strict = strict_filter if strict_filter in filters and strict_filter != chosen else None
        by_filter: dict[str, dict] = {fl: {} for fl in filters}
        for x in lines:
            for key in ("doc_id", "target", "resps"):
                if key not in x:
                    raise TTCError(f"{sfile}: a line has no {key!r}; not an lm-eval --log_samples file")
            by_filter[str(x.get("filter", "none"))][x["doc_id"]] = x
        assumptions = [f"answers: lm-eval filter {chosen!r} (filters in the log: {', '.join(filters)})",
                       "correct: the answer equals the target after stripping, numbers compared as numbers; "
                       "lm-eval's metric options (ignore_case, regexes_to_ignore) are not applied",
                       "finish reasons: not in the log; 'length' where the counted generated tokens reach "
                       "max_gen_toks, else 'stop' ('unknown' without token counts)",
                       "prefill: each repeat read its prompt again (lm-eval re-encodes the context per repeat)"]
        if strict:
            assumptions.append(f"answer_strict: lm-eval filter {strict!r}")
        else:
            assumptions.append("answer_strict: the log has no second filter to take it from; left empty")
        steps = _regex_steps(results, task, chosen)
        strict_steps = _regex_steps(results, task, strict) if strict else None
        problems, gen_kwargs, disagree = [], {}, 0
        for doc_id, x in sorted(by_filter[chosen].items(), key=lambda kv: kv[0]):
            if len(x["resps"]) != 1 or not isinstance(x["resps"][0], list):
                raise TTCError(f"{sfile}: doc {doc_id} has {len(x['resps'])} requests; only generate_until "
                               f"tasks (one request, its repeats as completions) are imported")
            texts = [str(t) for t in x["resps"][0]]
            answers = _answers(x, texts, steps, chosen)
            stricts = _answers(by_filter[strict][doc_id], texts, strict_steps, strict) if strict else [None] * len(texts)
            target = x["target"]
            gold = str(target[0] if isinstance(target, list) and target else target)
            samples = tuple(ImportedSample(text=t, answer=a, answer_strict=s, correct=same_answer(a, gold))
                            for t, a, s in zip(texts, answers, stricts))
            args = (x.get("arguments") or {}).get("gen_args_0") or {}
            gen_kwargs = args.get("arg_1") or gen_kwargs
            metric = next((x[m] for m in x.get("metrics", []) if isinstance(x.get(m), (int, float))), None)
            if metric is not None and abs(metric - sum(s.correct for s in samples) / len(samples)) > 1e-9:
                disagree += 1
            problems.append(ImportedProblem(id=str(doc_id), gold=gold, prompt=str(args.get("arg_0", "")),
                                            samples=samples))
        if disagree:
            assumptions.append(f"{disagree} of {len(problems)} documents: lm-eval's own per-document metric differs "
                               f"from the mean of ttc's per-completion grading")
        cfg = (results or {}).get("config") or {}
        margs = cfg.get("model_args") or {}
        if isinstance(margs, str):
            margs = dict(kv.split("=", 1) for kv in margs.split(",") if "=" in kv)
        pretrained = margs.get("pretrained") or (results or {}).get("model_name")
        model = Path(str(pretrained)).name if pretrained else "lm_eval_model"
        model_dir = str(pretrained) if pretrained and Path(str(pretrained)).is_dir() else None
        source = {"format": "lm-evaluation-harness --log_samples", "samples_file": str(sfile),
                  "results_file": str(rfile) if rfile else None, "task": task, "filter": chosen,
                  "lm_eval_version": (results or {}).get("lm_eval_version"), "model_args": margs,
                  "repeats": ((results or {}).get("configs") or {}).get(task, {}).get("repeats")}
        if rfile is None:
            assumptions.append("results_<date>.json not found beside the samples file: model name and filter "
                               "definitions unknown")
        temp = gen_kwargs.get("temperature")
        out.append(Imported(fmt="lm_eval", task=task, model=model, problems=problems, source=source,
                            assumptions=assumptions, digest=digest.hexdigest(),
                            temperature=float(temp) if temp is not None and gen_kwargs.get("do_sample", True) else 0.0,
                            top_p=gen_kwargs.get("top_p"), max_tokens=gen_kwargs.get("max_gen_toks"),
                            model_dir=model_dir))
    return out

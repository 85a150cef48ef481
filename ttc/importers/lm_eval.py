"""lm-evaluation-harness ``--log_samples`` output (``samples_<task>_<date>.jsonl`` + ``results_<date>.json``).

Each line of a samples file is one document under one filter: ``doc_id``, ``doc``, ``target``, ``arguments``
(``gen_args_0``: ``arg_0`` the context, ``arg_1`` the generation kwargs), ``resps`` (with ``repeats: k``, one
request holding the k completions), ``filtered_resps`` (the filter's output), ``filter``, ``metrics`` and the
per-document metric values.

Faithful by default: every filter becomes its own sampler label (``imported:<filter>``) holding all k
completions, each with the answer the filter's per-completion steps give (lm-eval's own list where the filter
keeps one answer per completion) and graded with the task's ``exact_match`` options from ``results_*.json``;
the summary then holds lm-eval's number for each filter (``lm_eval_filters.Plan.metric``: ``vote@k`` at 1 for
``take_first``, at n for ``majority_vote``, ``mean@k`` for a filter that keeps every answer). Each document's
recomputed value is checked against the one lm-eval logged, and a difference is reported, never hidden. What
ttc cannot re-do (another metric, a custom ``process_results``, a filter step it does not know) is said in one
line: such a filter is left out, and a task ttc cannot grade at all is refused (``ttc rescore`` grades its
completions with a ttc task instead).

The file is read one line at a time (a 5M-line log converts in bounded memory). The log holds no token counts,
finish reasons or seeds: token counts come from ``--tokenizer`` (or the local checkpoint the log names), and
the header's ``assumptions`` say what was assumed.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from ttc.errors import TTCError
from ttc.importers.common import Imported, ImportedProblem, ImportedSample, label_of
from ttc.importers.lm_eval_filters import ExactMatch, Plan, apply, plan, reduce_answers

SAMPLES_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[0-9.\-]+)\.jsonl$")
REQUIRED = ("doc_id", "target", "resps")


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


def _hash(*paths: Path | None) -> str:
    h = hashlib.sha256()
    for p in paths:
        if p is None:
            continue
        with open(p, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def _task_config(results: dict | None, task: str) -> dict | None:
    """The task's config as lm-eval ran it (``configs`` of results_*.json), None without one."""
    return ((results or {}).get("configs") or {}).get(task)


def grading(results: dict | None, task: str, where: Path) -> tuple[ExactMatch, str]:
    """The task's ``exact_match`` as lm-eval ran it, and a sentence saying where it came from; a ``TTCError``
    naming what ttc cannot reproduce."""
    cfg = _task_config(results, task)
    if cfg is None:
        return ExactMatch(), ("the task's exact_match options are not in the log (no results_*.json beside it); "
                              "graded with lm-eval's defaults, checked against its per-document values")
    fix = f"`ttc rescore {where} --task TASK` grades its completions with a ttc task instead"
    if cfg.get("process_results"):
        raise TTCError(f"{where}: task {task!r} is scored by its own process_results, which ttc cannot "
                       f"reproduce; {fix}")
    if cfg.get("doc_to_choice"):
        raise TTCError(f"{where}: task {task!r} maps targets through doc_to_choice, which ttc cannot reproduce; {fix}")
    metrics = cfg.get("metric_list") or [{"metric": "exact_match"}]
    em = next((m for m in metrics if m.get("metric") == "exact_match"), None)
    if em is None:
        names = ", ".join(str(m.get("metric")) for m in metrics)
        raise TTCError(f"{where}: task {task!r} is scored with lm-eval metric(s) {names}; ttc reproduces "
                       f"exact_match only; {fix}")
    g = ExactMatch.from_metric(em)
    if isinstance(g, str):
        raise TTCError(f"{where}: task {task!r} uses {g}, which ttc cannot reproduce; {fix}")
    return g, f"graded as lm-eval did: {g.describe()} from results_*.json"


def _plans(results: dict | None, task: str) -> dict[str, Plan | str]:
    cfg = _task_config(results, task) or {}
    out: dict[str, Plan | str] = {}
    for f in cfg.get("filter_list") or [{"name": "none", "filter": [{"function": "take_first"}]}]:
        out[str(f.get("name", "none"))] = plan(f)
    return out


def _model(results: dict | None) -> tuple[str, str | None, dict]:
    cfg = (results or {}).get("config") or {}
    margs = cfg.get("model_args") or {}
    if isinstance(margs, str):
        margs = dict(kv.split("=", 1) for kv in margs.split(",") if "=" in kv)
    pretrained = margs.get("pretrained") or (results or {}).get("model_name")
    model = Path(str(pretrained)).name if pretrained else "lm_eval_model"
    model_dir = str(pretrained) if pretrained and Path(str(pretrained)).is_dir() else None
    return model, model_dir, margs


class _Reader:
    """Streams one samples file into ``ImportedProblem``s, one per line (document x filter)."""

    def __init__(self, imp: Imported, sfile: Path, results: dict | None, filters: list[str] | None, plans: dict,
                 em: ExactMatch, id_field: str, grade: bool):
        self.imp, self.sfile, self.results, self.filters, self.plans, self.em = imp, sfile, results, filters, plans, em
        self.id_field, self.grade = id_field, grade
        self.skipped: dict[str, str] = {}
        self.disagree: dict[str, int] = {}
        self.docs: dict[str, int] = {}
        self.n = 0

    def _id(self, x: dict, lineno: int):
        doc = x.get("doc") if isinstance(x.get("doc"), dict) else {}
        if self.id_field == "auto":
            self.id_field = "id" if isinstance(doc.get("id"), (str, int)) and not isinstance(doc.get("id"), bool) \
                else "doc_id"
        if self.id_field == "doc_id":
            return str(x["doc_id"])
        value = doc.get(self.id_field)
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise TTCError(f"{self.sfile}:{lineno}: the doc has no {self.id_field!r} to use as its id; "
                           f"give --id-field doc_id (lm-eval's row number) or another field of the doc")
        return str(value)

    def __iter__(self):
        first_label = None
        with open(self.sfile, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    x = json.loads(raw)
                except ValueError as e:
                    raise TTCError(f"{self.sfile}:{lineno}: not JSON ({e})") from None
                if not isinstance(x, dict) or any(k not in x for k in REQUIRED):
                    raise TTCError(f"{self.sfile}:{lineno}: a line without {', '.join(REQUIRED)}; not an lm-eval "
                                   f"--log_samples file")
                fname = str(x.get("filter", "none"))
                if self.filters is not None and fname not in self.filters or fname in self.skipped:
                    continue
                prob = self._problem(x, fname, lineno, first_label is None or label_of(fname) == first_label)
                if prob is None:
                    continue
                first_label = first_label or prob.label
                self.docs[fname] = self.docs.get(fname, 0) + 1
                yield prob
        self._wrap_up()

    def _problem(self, x: dict, fname: str, lineno: int, keep_doc: bool) -> ImportedProblem | None:
        resps = x["resps"]
        if not (isinstance(resps, list) and len(resps) == 1 and isinstance(resps[0], list)):
            raise TTCError(f"{self.sfile}:{lineno}: doc {x['doc_id']} has {len(resps) if isinstance(resps, list) else 0} "
                           f"requests; only generate_until tasks (one request, its repeats as completions) are imported")
        texts = [t if isinstance(t, str) else "" for t in resps[0]]
        self.n = max(self.n, len(texts))
        fr = x.get("filtered_resps")
        fr0 = fr[0] if isinstance(fr, list) and len(fr) == 1 else fr
        p = self.plans.get(fname)
        if not self.grade:  # the texts only: `ttc rescore` extracts and grades them itself
            raw, p = [""] * len(texts), Plan(fname, (), "none")
        elif isinstance(fr0, list) and len(fr0) == len(texts) and (p is None or isinstance(p, str) or p.reduce == "none"):
            raw = [a if isinstance(a, str) else str(a) for a in fr0]  # lm-eval's own answer per completion
            p = Plan(fname, p.steps if isinstance(p, Plan) else (), "none")
        elif isinstance(p, Plan):
            raw = [apply(p.steps, t) for t in texts]
        else:
            why = p or f"filter {fname!r}: its steps are not in results_*.json and it keeps one answer per document"
            if self.filters is not None:
                raise TTCError(f"{self.sfile}: {why}; ttc cannot re-apply it to each completion (choose another "
                               f"--filter)")
            self.skipped[fname] = why
            return None
        fallback = p.fallback()
        target = x["target"]
        right = self.em.grader(target)
        correct = [right(a) if self.grade else False for a in raw]
        mine = (sum(correct) / len(correct) if correct else 0.0) if p.reduce == "none" else \
            float(right(reduce_answers(p, raw))) if raw else 0.0
        logged = x.get("exact_match")
        if self.grade and isinstance(logged, (int, float)) and abs(float(logged) - mine) > 1e-9:
            self.disagree[fname] = self.disagree.get(fname, 0) + 1
        doc_metrics = {m: x.get(m) for m in (x.get("metrics") or []) if m in x}
        extra = {"doc_id": x["doc_id"], "lm_eval": doc_metrics,
                 **({"lm_eval_filtered": fr0} if p.reduce != "none" else {}),
                 **{k: x[k] for k in ("doc_hash", "prompt_hash", "target_hash") if k in x}}
        if keep_doc and isinstance(x.get("doc"), dict):
            extra["doc"] = x["doc"]
        args = (x.get("arguments") or {}).get("gen_args_0") or {}
        if not self.imp.source.get("gen_kwargs") and isinstance(args.get("arg_1"), dict):
            self.imp.source["gen_kwargs"] = args["arg_1"]
        gold = " | ".join(map(str, target)) if isinstance(target, list) else str(target)
        samples = tuple(ImportedSample(text=t, answer=None if a == fallback or not self.grade else a,
                                       correct=c)
                        for t, a, c in zip(texts, raw, correct))
        return ImportedProblem(label=label_of(fname), id=self._id(x, lineno), gold=gold,
                               prompt=str(args.get("arg_0", "")), samples=samples, extra=extra)

    def _wrap_up(self) -> None:
        imp = self.imp
        for fname, why in self.skipped.items():
            imp.notes.append(f"{why}: ttc cannot re-apply it to each completion; filter left out")
        for fname, count in self.disagree.items():
            imp.notes.append(f"filter {fname!r}: ttc's grading differs from lm-eval's logged value on {count} of "
                             f"{self.docs.get(fname, 0)} documents")
        imp.assumptions += [f"filter {fname!r} left out: {why}" for fname, why in self.skipped.items()]
        imp.assumptions += [f"filter {fname!r}: ttc's grading differs from lm-eval's logged per-document value on "
                            f"{count} of {self.docs.get(fname, 0)} documents" for fname, count in self.disagree.items()]
        imp.source["id_field"] = self.id_field
        values = ((self.results or {}).get("results") or {}).get(imp.task) or {}
        for fname in self.docs:
            p = self.plans.get(fname)
            p = p if isinstance(p, Plan) else Plan(fname, (), "none")
            metric, budget = p.metric(self.n)
            name = f"exact_match,{fname}"
            if isinstance(values.get(name), (int, float)):
                imp.reported.append({"label": label_of(fname), "name": name, "value": float(values[name]),
                                     "metric": metric, "budget": budget})
        gen = imp.source.get("gen_kwargs") or {}
        imp.max_tokens = gen.get("max_gen_toks") if isinstance(gen.get("max_gen_toks"), int) else imp.max_tokens
        until = gen.get("until")
        imp.stop = tuple(until) if isinstance(until, list) else ((until,) if isinstance(until, str) else ())


def read_lm_eval(path: Path, filters: list[str] | None = None, id_field: str = "auto",
                 grade: bool = True) -> list[Imported]:
    """One ``Imported`` per samples file under ``path``; its problems stream as the run is written.
    ``filters``: the filters to import (default: every one ttc can re-apply); ``grade=False`` reads the texts
    only (``ttc rescore`` grades them itself)."""
    out = []
    for task, sfile, rfile in _files(Path(path)):
        try:
            results = json.loads(rfile.read_text()) if rfile else None
        except (OSError, ValueError) as e:
            raise TTCError(f"{rfile}: not an lm-eval results file ({e})") from None
        if grade:
            em, how = grading(results, task, Path(path))
        else:
            em, how = ExactMatch(), "not graded here: `ttc rescore` grades the completions with a ttc task"
        plans = _plans(results, task) if rfile else {}
        if filters is not None:
            unknown = [f for f in filters if plans and f not in plans]
            if unknown:
                raise TTCError(f"{sfile}: no filter {', '.join(map(repr, unknown))}; the task has "
                               f"{', '.join(plans)}")
        model, model_dir, margs = _model(results)
        cfg = _task_config(results, task) or {}
        gen = cfg.get("generation_kwargs") or {}
        counts = (((results or {}).get("n-samples") or {}).get(task) or {})
        source = {"format": "lm-evaluation-harness --log_samples", "file": str(sfile), "samples_file": str(sfile),
                  "results_file": str(rfile) if rfile else None, "task": task,
                  "dataset_samples": counts.get("effective") if isinstance(counts, dict) else None,
                  "lm_eval_version": (results or {}).get("lm_eval_version"), "model_args": margs,
                  "repeats": cfg.get("repeats"), "grading": how, "gen_kwargs": gen or None,
                  "filters": {k: (v.__dict__ if isinstance(v, Plan) else {"not reproduced": v})
                              for k, v in plans.items()}}
        assumptions = [f"answers: each lm-eval filter is the sampler label imported:<filter>, holding every "
                       f"completion with the answer the filter's per-completion steps give ({how})",
                       "prefill: each repeat read its prompt again (lm-eval re-encodes the context per repeat)"]
        if rfile is None:
            assumptions.append("results_<date>.json not found beside the samples file: model name, filter "
                               "definitions and lm-eval's reported values unknown")
        temp = gen.get("temperature")
        imp = Imported(fmt="lm_eval", task=task, model=model, problems=(), source=source, assumptions=assumptions,
                       digest=_hash(sfile, rfile),
                       temperature=float(temp) if isinstance(temp, (int, float)) and gen.get("do_sample", True)
                       else (0.0 if gen else None),
                       top_p=gen.get("top_p"), top_k=gen.get("top_k"),
                       max_tokens=gen.get("max_gen_toks"), model_dir=model_dir)
        reader = _Reader(imp, sfile, results, filters, plans, em, id_field, grade)
        imp.problems = iter(reader)
        out.append(imp)
    return out

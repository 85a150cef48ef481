"""Re-scoring (like ``inspect score``): the stored texts of a run or a log, extracted and graded by a ttc task,
written as a NEW run; the source is never modified.

* A run directory (``ttc run``'s or ``ttc import``'s, either schema): every record's text is re-extracted
  (``task.extract``) and re-graded (``task.grade``); tokens, FLOPs, finish reasons and the strategy's own fields
  are kept, and the record's earlier answer and correctness go into ``extra["source"]``. An imported run holds
  the same completions under each of its labels (one per lm-eval filter): they are re-scored once, as the
  label ``sample`` (repeated sampling), so the result lines up with ``ttc run``'s run of the same problems.
  A ttc run keeps its labels (after a grader changes, its numbers are recomputed with the new grader).
* A log (an lm-eval output directory or samples file, an inspect ``.eval``/``.json``): read as ``ttc import``
  reads it, its completions graded by the task instead of the harness, written like an import.

The problems the task grades against are its own (``task.load`` with the source's problem count and seed, or
``--limit``/``--seed``/``--data-file``), matched by id, so a grader that needs its problem's data (reasoning-gym's
scorers) has it; a problem whose id the task does not have is graded against the source's gold answer, and a
task that cannot grade that way is refused with the ids that did not match.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from ttc.errors import TTCError
from ttc.importers.common import LABEL_PREFIX, Imported, ImportedProblem, slug
from ttc.store.records import SCHEMA_VERSION, SampleRecord

RESCORED_LABEL = "sample"


class Grader:
    """A ttc task's ``extract`` and ``grade``, with the task's own problems matched by id."""

    def __init__(self, task_name: str, limit: int | None, seed: int, data_file: str | None, where: str):
        from tasks import get_task

        self.task = get_task(task_name)
        self.limit, self.seed, self.data_file, self.where = limit, seed, data_file, where
        self._problems: dict | None = None
        self.matched = self.unmatched = self.gold_differs = 0
        self.example_unmatched: str | None = None

    def problems(self) -> dict:
        if self._problems is None:
            from tasks import load_problems

            self._problems = {}
            if self.limit and (self.data_file or not self.task.takes_data_file):
                self._problems = {p.id: p for p in load_problems(self.task, self.limit, self.seed, self.data_file)}
        return self._problems

    def problem(self, pid: str, question: str, gold: str):
        from tasks.base import Problem

        p = self.problems().get(pid)
        if p is None:
            self.unmatched += 1
            self.example_unmatched = self.example_unmatched or pid
            return Problem(id=pid, question=question or "", gold=gold)
        self.matched += 1
        self.gold_differs += str(p.gold) != str(gold)
        return p

    def grade(self, problem, text: str) -> tuple[str | None, str | None, bool]:
        flexible, strict = self.task.extract(text)
        try:
            return flexible, strict, bool(self.task.grade(flexible, problem))
        except (KeyError, TypeError, AttributeError, IndexError) as e:
            raise TTCError(f"{self.where}: task {self.task.name!r} grades with its own problems' data, and problem "
                           f"{problem.id!r} is not among its first {self.limit or 0} problems at seed {self.seed} "
                           f"({type(e).__name__}: {e}); give --limit/--seed (or --data-file), or --task "
                           f"custom:<grader> to grade against the source's gold answers") from None

    def notes(self) -> list[str]:
        out = [f"graded by ttc task {self.task.name!r}: {self.matched} problems matched its own by id"
               + (f" (limit {self.limit}, seed {self.seed})" if self.limit else "")]
        if self.unmatched:
            out.append(f"{self.unmatched} problems (e.g. {self.example_unmatched!r}) are not the task's: graded against "
                       f"the source's gold answer")
        if self.gold_differs:
            out.append(f"{self.gold_differs} matched problems have another gold answer in the source than in the task "
                       f"(the task's is used)")
        return out


def _regraded(problems, grader: Grader, label: str):
    """The log's problems (those of the label that holds every completion once), graded by ``grader``."""
    first = None
    for prob in problems:
        first = first or prob.label
        if prob.label != first:
            continue
        p = grader.problem(str(prob.id), prob.prompt, prob.gold)
        samples = []
        for s in prob.samples:
            flexible, strict, ok = grader.grade(p, s.text)
            samples.append(dataclasses.replace(s, answer=flexible, answer_strict=strict, correct=ok,
                                               extra={**s.extra, "source": {"answer": s.answer, "correct": s.correct}}))
        yield ImportedProblem(label=label, id=prob.id, gold=str(p.gold), prompt=prob.prompt, samples=tuple(samples),
                              extra=prob.extra)


def rescore_log(imp: Imported, grader: Grader, out: Path, options: dict, model: str | None = None,
                model_config: str | None = None, tokenizer: str | None = None) -> Path:
    """A log read by an importer (``grade=False`` is enough), graded by ``grader``, as a new run."""
    from ttc.importers.write import write_run

    source_task = imp.task
    imp.task = grader.task.name
    imp.source = {**imp.source, "rescored_from": {"log": imp.source.get("file"), "task": source_task,
                                                  "format": imp.fmt}}
    imp.problems = _regraded(imp.problems, grader, RESCORED_LABEL)
    imp.reported = []
    imp.fmt = f"rescore-{imp.fmt}"
    imp.assumptions = [a for a in imp.assumptions if not a.startswith(("answers", "answer_strict"))]
    digest = hashlib.sha256(json.dumps([imp.digest, options, _stamp()], sort_keys=True).encode()).hexdigest()

    root, _ = write_run(imp, out, digest, model=model, model_config=model_config, tokenizer=tokenizer,
                        more_assumptions=grader.notes)
    return root


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")


def _run_problems(shard_dir: Path | None, v1_shard=None):
    """Each problem's records (dicts, ``extra`` decoded) of one shard of a run, in stored order, each problem
    once (a shard not yet compacted may hold a problem twice: the first copy is read, as the store reads it)."""
    if v1_shard is not None:
        for _, recs, _ in v1_shard.iter_problems():
            yield [dict(r) for r in recs]
        return
    import pyarrow.parquet as pq

    from ttc.store.runstore import Shard

    seen: set[str] = set()
    for f in Shard(shard_dir, "").files():
        group: list[dict] = []
        for batch in pq.ParquetFile(f).iter_batches(batch_size=8192):
            for row in batch.to_pylist():
                if group and row["problem_id"] != group[0]["problem_id"]:
                    if group[0]["problem_id"] not in seen:
                        seen.add(group[0]["problem_id"])
                        yield group
                    group = []
                group.append(row)
        if group and group[0]["problem_id"] not in seen:
            seen.add(group[0]["problem_id"])
            yield group


def _extra(record: dict) -> dict:
    """A stored record's ``extra`` as a dict (Parquet holds it as JSON text)."""
    extra = record.get("extra")
    return json.loads(extra) if isinstance(extra, str) else (extra or {})


def _shards(root: Path, header: dict) -> list[tuple[str, Path | None, object]]:
    """``(sampler label, Parquet shard dir or None, schema-1 shard or None)`` of every shard of a run."""
    from ttc.store import v1 as store_v1
    from ttc.store.runstore import RECORDS_DIR

    if header.get("schema_version") == 1:
        out = []
        for s in store_v1.shards(root):
            first = next(iter(s.iter_problems()), None)
            if first is not None:
                out.append((first[1][0]["sampler"], None, s))
        return out
    import pyarrow.parquet as pq

    from ttc.store.runstore import Shard

    base = root / RECORDS_DIR
    out = []
    for d in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        files = Shard(d, "").files()
        if files:
            label = pq.ParquetFile(files[0]).read_row_group(0, columns=["sampler"]).column(0)[0].as_py()
            out.append((label, d, None))
    return out


def rescore_run(source: Path, grader: Grader, out: Path) -> Path:
    """A run directory's records re-extracted and re-graded by ``grader``, as a new run beside it."""
    from ttc.importers.write import finish_lean
    from ttc.store.runstore import ARROW_SCHEMA, COLUMNS, RunStore, read_header, records_table, shard_name
    from ttc.store.stream import ShardWriter
    from ttc.sweep.config import RunConfig

    header = read_header(source)
    src = header.get("source") or {}
    shards = _shards(source, header)
    if not shards:
        raise TTCError(f"{source}: the run has no records to re-score")
    imported = all(label.startswith(LABEL_PREFIX) for label, _, _ in shards)
    if imported:  # every label holds the same completions: re-score them once
        keep = src.get("texts_label") or shards[0][0]
        shards = [s for s in shards if s[0] == keep][:1] or shards[:1]
    run_id = f"{slug(header.get('run_id', source.name), 60)}-rescore-{slug(grader.task.name, 30)}-{_stamp()[:18]}"
    tmp_id = f".{run_id}.rescoring-{os.getpid()}"
    new_header = {**{k: v for k, v in header.items() if k not in ("resumed", "cluster", "summary")},
                  "schema_version": SCHEMA_VERSION, "run_id": run_id,
                  "config_hash": hashlib.sha256(run_id.encode()).hexdigest(),
                  "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "rescored_from": {"run": str(source), "run_id": header.get("run_id"), "task": None,
                                    "labels": [s[0] for s in shards]}}
    try:
        store = RunStore.open(out, tmp_id, new_header)
        labels, tasks, n_max = [], set(), 1
        for label, shard_dir, v1_shard in shards:
            new_label = RESCORED_LABEL if imported else label
            labels.append(new_label)
            writer = None
            try:
                for recs in _run_problems(shard_dir, v1_shard):
                    first = recs[0]
                    tasks.add(first["task"])
                    if writer is None:
                        writer = ShardWriter(store.root / "records" / shard_name(grader.task.name, first["model"],
                                                                                  new_label),
                                             store.writer, records_table, ARROW_SCHEMA)
                    extras = [_extra(r) for r in recs]
                    p = grader.problem(str(first["problem_id"]), str(extras[0].get("question", "")),
                                       str(first["gold"]))
                    out_recs = []
                    for r, extra in zip(recs, extras):
                        flexible, strict, ok = grader.grade(p, r["text"] or "")
                        row = {k: r.get(k) for k in COLUMNS if k in r}
                        row.update(task=grader.task.name, sampler=new_label, answer=flexible, answer_strict=strict,
                                   gold=str(p.gold), correct=ok, verifier_flops=r.get("verifier_flops") or 0.0,
                                   extra={**extra, "source": {"answer": r.get("answer"), "correct": r.get("correct")}})
                        out_recs.append(SampleRecord(**row))
                    n_max = max(n_max, len(out_recs))
                    writer.add(out_recs)
                if writer is not None:
                    writer.close()
            except BaseException:
                if writer is not None:
                    writer.abort()
                raise
        cfg = dict(header.get("config") or {})
        sweep = dict(cfg.get("sweep") or {})
        sweep.update(tasks=[grader.task.name], samplers=labels)
        if imported:
            sweep["budgets"] = list(sweep.get("budgets") or [n_max])
        cfg["sweep"] = sweep
        cfg["out"] = str(out)
        config = RunConfig.from_dict(cfg)
        store.update_header(config=config.to_dict(),
                            rescored_from={**new_header["rescored_from"], "task": sorted(tasks)},
                            assumptions=list(header.get("assumptions") or []) + grader.notes()
                            + [f"re-scored from {source}: answers extracted and graded by ttc task "
                               f"{grader.task.name!r}; the source's answer and correctness are in extra['source']"])
        finish_lean(store.root, config, shown=out / run_id)
        os.replace(store.root, out / run_id)
    except BaseException:
        shutil.rmtree(out / tmp_id, ignore_errors=True)
        raise
    return out / run_id

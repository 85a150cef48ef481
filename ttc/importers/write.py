"""An ``Imported`` log becomes a run directory like a sweep's (header, records, summary, curve, report).

The problems stream from the reader into one ``ShardWriter`` per sampler label, so a log of millions of
records is written in bounded memory. Everything is written under a temporary directory beside the run's
and renamed into place at the end: a refusal part way (a malformed line, a repeated id) leaves no run
directory, and a run directory that exists is complete. Importing the same log with the same options again
finds the run and rewrites nothing.

Token counts come from the log, else from a tokenizer (``--tokenizer``, or the local checkpoint the log
names); FLOPs from the counts and the model's shape (``--model-config``, or that checkpoint). What is not
known is stored as missing (null tokens, NaN FLOPs), never as a measured 0, and the header says so.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from ttc.errors import TTCError
from ttc.importers.common import Imported, TokenCounter, budgets_for, slug, spec_from_config_json
from ttc.metrics.flops import FLOPS_CONVENTION, decode_flops, prefill_flops
from ttc.store.provenance import git_state, host_info, library_versions
from ttc.store.records import SCHEMA_VERSION, SampleRecord
from ttc.sweep.config import BackendConfig, RunConfig, SamplingConfig, SweepConfig

FLOPS_UNKNOWN = "FLOPs: unknown"
# report.html holds every problem's row: above this many records the import leaves it to `ttc report`, whose
# page of a 1M-record run is 20 MB and took 1.2 GB to draw (the records, summary and curve are written)
REPORT_MAX_RECORDS = 1_000_000


def run_id_for(imp: Imported, digest: str, model: str | None = None) -> str:
    return f"{slug(f'{imp.fmt}-{imp.task}-{model or imp.model}')}-{digest[:10]}"


def _existing(out: Path, run_id: str, digest: str) -> Path | None:
    """The run directory of an earlier import of the same log with the same options, if it is there."""
    from ttc.store.runstore import read_header

    root = out / run_id
    if not (root / "header.json").exists():
        return None
    if read_header(root).get("config_hash") != digest:
        raise TTCError(f"{root} holds a run with a different config; use another --out")
    return root


def write_run(imp: Imported, out: Path, digest: str, model: str | None = None, model_config: str | None = None,
              tokenizer: str | None = None, more_assumptions: Callable[[], list[str]] | None = None,
              summarize: bool = True) -> tuple[Path, bool]:
    """Write ``imp`` as ``out/<run_id>/``; return ``(run directory, whether it was written now)``.
    ``more_assumptions`` gives lines for the header that are known once the problems are read; without
    ``summarize`` only the records and the header are written (``ttc summary`` and ``ttc report`` do the rest)."""
    out = Path(out)
    model = model or imp.model
    run_id = run_id_for(imp, digest, model)
    from ttc.store.runstore import read_header

    found = _existing(out, run_id, digest)
    if found is not None:
        return found, False
    cfg_path = model_config or (str(Path(imp.model_dir) / "config.json") if imp.model_dir and
                                (Path(imp.model_dir) / "config.json").is_file() else None)
    spec = spec_from_config_json(cfg_path) if cfg_path else None
    tmp_id = f".{run_id}.importing-{os.getpid()}"
    tmp = out / tmp_id
    try:
        root = _write(imp, out, tmp_id, run_id, digest, model, spec, cfg_path, model_config, tokenizer,
                      more_assumptions)
        if summarize:
            finish_lean(root, RunConfig.from_dict(read_header(root)["config"]), shown=out / run_id)
        os.replace(root, out / run_id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # ours, half written: a refusal leaves no run directory
        raise
    return out / run_id, True


class _Tokens:
    """Token counts of a record: the log's, else the tokenizer's (loaded on the first sample that lacks them)."""

    def __init__(self, path: str | None):
        self.path = path
        self.counter = None
        self.counted = 0  # samples counted with the tokenizer
        self.missing = 0  # samples without counts at all

    def of(self, prompt: str, text: str, pt, gt) -> tuple[int | None, int | None, bool]:
        if pt is not None and gt is not None:
            return int(pt), int(gt), False
        if self.path is None:
            self.missing += 1
            return (None if pt is None else int(pt)), (None if gt is None else int(gt)), False
        if self.counter is None:
            self.counter = TokenCounter(self.path)
        self.counted += 1
        return (self.counter.prompt(prompt) if pt is None else int(pt),
                self.counter.completion(text) if gt is None else int(gt), True)


def _finish_reason(given: str | None, gt: int | None, max_tokens: int | None, counted: bool) -> str:
    """The log's finish reason; where it has none (or 'unknown'), 'length' when the generated tokens reach the
    limit, 'stop' when counted tokens stay below it, else 'unknown'."""
    if given and given != "unknown":
        return given
    if gt is not None and max_tokens and gt >= max_tokens:
        return "length"
    if gt is not None and (counted or given is None) and max_tokens:
        return "stop"
    return "unknown"


def _write(imp: Imported, out: Path, tmp_id: str, run_id: str, digest: str, model: str, spec, cfg_path,
           model_config, tokenizer, more_assumptions) -> Path:
    from ttc.store.runstore import ARROW_SCHEMA, RunStore, records_table, shard_name
    from ttc.store.stream import ShardWriter

    header = {"schema_version": SCHEMA_VERSION, "run_id": run_id, "config_hash": digest,
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git": git_state(),
              "versions": library_versions(), "host": host_info(), "source": imp.source}
    store = RunStore.open(out, tmp_id, header)
    tok_path = tokenizer or imp.model_dir
    tokens = _Tokens(tok_path)
    writers: dict[str, ShardWriter] = {}
    problems: dict[str, int] = {}
    n_max, n_min, inferred = 0, None, 0
    try:
        for prob in imp.problems:
            w = writers.get(prob.label)
            if w is None:
                w = writers[prob.label] = ShardWriter(store.root / "records" / shard_name(imp.task, model, prob.label),
                                                      store.writer, records_table, ARROW_SCHEMA)
            n = len(prob.samples)
            if n == 0:
                continue
            n_max, n_min = max(n_max, n), n if n_min is None else min(n_min, n)
            records = []
            for i, s in enumerate(prob.samples):
                pt, gt, counted = tokens.of(prob.prompt, s.text, s.prompt_tokens, s.generated_tokens)
                reason = _finish_reason(s.finish_reason, gt, imp.max_tokens, counted)
                inferred += reason != s.finish_reason
                known = spec is not None and pt is not None and gt is not None
                extra = {**(prob.extra if i == 0 else {}), **s.extra}
                if i == 0 and prob.prompt:
                    extra.setdefault("question", prob.prompt)
                records.append(SampleRecord(
                    task=imp.task, model=model, sampler=prob.label, problem_id=str(prob.id), sample_index=i,
                    n_samples=n, text=s.text, answer=s.answer, answer_strict=s.answer_strict, gold=str(prob.gold),
                    correct=bool(s.correct), prompt_tokens=pt, generated_tokens=gt, finish_reason=reason,
                    prefill_flops=prefill_flops(spec, pt) if known else math.nan,
                    decode_flops=decode_flops(spec, pt, gt) if known else math.nan, prefill_shared=False,
                    seed=imp.seed or 0, extra=extra))
            w.add(records)
            problems[prob.label] = problems.get(prob.label, 0) + 1
        for w in writers.values():
            w.close()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    if not problems:
        why = f" ({imp.notes[0]})" if imp.notes else ""
        raise TTCError(f"{imp.source.get('file') or imp.task}: no samples to import{why}")
    labels = tuple(problems)
    assumptions = list(imp.assumptions)
    if tokens.missing:
        assumptions.append(f"token counts: {tokens.missing} samples have none in the log and no --tokenizer was "
                           f"given; stored as missing")
    if tokens.counted:
        assumptions.append(f"token counts: {tokens.counted} samples counted with the tokenizer at {tok_path} (the "
                           f"texts as logged: an end-of-sequence token the log does not show is not counted)")
    if spec is None or tokens.missing:
        why = "no model config (--model-config)" if spec is None else "token counts missing (--tokenizer)"
        assumptions.append(f"{FLOPS_UNKNOWN} ({why}); the FLOPs columns are NaN and curve.png plots accuracy "
                           f"against samples per problem")
    elif not model_config:
        assumptions.append(f"FLOPs: model shape read from {cfg_path}, the checkpoint the log names")
    if inferred:
        assumptions.append(f"finish reasons: {inferred} records lack one in the log; 'length' where the generated "
                           f"tokens reach the limit ({imp.max_tokens}), 'stop' where counted tokens stay below it, "
                           f"else 'unknown'")
    if n_min != n_max:
        assumptions.append(f"samples per problem: {n_min} to {n_max}; a budget above a problem's samples leaves it out")
    if imp.seed is None:
        assumptions.append("seed: the log records no per-sample seed; records carry seed 0")
    if more_assumptions is not None:
        assumptions += more_assumptions()
    config = RunConfig(
        sweep=SweepConfig(tasks=(imp.task,), models=(model,), samplers=labels, budgets=budgets_for(n_max),
                          limit=max(problems.values())),
        sampling=SamplingConfig(temperature=imp.temperature if imp.temperature is not None else 0.0,
                                top_p=imp.top_p if imp.top_p is not None else 1.0,
                                max_tokens=imp.max_tokens or 1, seed=imp.seed or 0),
        backend=BackendConfig(name=f"import:{imp.fmt}"), out=str(out))
    sampling = {k: v for k, v in (("top_k", imp.top_k), ("stop", list(imp.stop) or None),
                                  ("max_tokens", imp.max_tokens)) if v is not None}
    store.update_header(
        config=config.to_dict(), seed=config.sampling.seed, samples=sum(problems.values()),
        flops_convention=FLOPS_CONVENTION if spec is not None and not tokens.missing else FLOPS_UNKNOWN,
        models={model: {"source": f"imported from {imp.fmt}", "identity": {"backend": f"import:{imp.fmt}"},
                        **({"spec": spec.__dict__} if spec else {})}},
        source={**imp.source, "sampling": sampling, "labels": list(labels),
                "texts_label": imp.texts_label if imp.texts_label in labels else labels[0],
                "reported": imp.reported, "notes": list(imp.notes)},
        assumptions=assumptions)
    return store.root


def finish_lean(root: Path, config: RunConfig, shown: Path | None = None) -> None:
    """``summary.csv`` (and the files beside it) from only the columns the estimators read, sorted as Arrow
    (not as pandas objects), then ``report.html`` on its own: at 5M records the sweep's ``finish``, which
    reads every column the report shows once for both, held several GB. Each shard is one file (``ShardWriter``),
    so nothing is compacted and no record is there twice. ``shown``: the run's final path, for messages."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from samplers import SAMPLERS
    from ttc.metrics.summary import needed_columns, write_summary
    from ttc.store.runstore import KEY, RECORDS_DIR, Shard

    columns = needed_columns(SAMPLERS, config.sweep.samplers)
    files = [f for d in sorted((root / RECORDS_DIR).iterdir()) if d.is_dir() for f in Shard(d, "").files()]

    def records():
        table = pa.concat_tables([pq.read_table(f, columns=columns) for f in files])
        df = table.sort_by([(k, "ascending") for k in KEY]).to_pandas()
        del table
        pa.default_memory_pool().release_unused()
        return df

    # passed unnamed, so write_summary holds the only reference and frees the records before aggregating
    summary = write_summary(root, SAMPLERS, budgets=config.sweep.budgets, seed=config.sampling.seed,
                            records=records())
    n = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    if n > REPORT_MAX_RECORDS:
        print(f"note: report.html not written for {n:,} records (over {REPORT_MAX_RECORDS:,}); "
              f"`ttc report {shown or root}` draws it", file=sys.stderr)
        return
    try:  # the page is a view of what is stored: failing to draw it never costs the import
        from ttc.report.html import write_report

        write_report(root, summary=summary)
    except Exception as e:  # noqa: BLE001
        print(f"warning: report.html not written ({type(e).__name__}: {e}); ttc report {shown or root} retries",
              file=sys.stderr)

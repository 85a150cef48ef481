"""What every importer produces (``Imported``) and how it becomes a run directory (``write_run``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from ttc.errors import TTCError
from ttc.metrics.flops import FLOPS_CONVENTION, ModelSpec, decode_flops, prefill_flops
from ttc.store.provenance import git_state, host_info, library_versions
from ttc.store.records import SCHEMA_VERSION, SampleRecord
from ttc.sweep.config import BackendConfig, RunConfig, SamplingConfig, SweepConfig


@dataclass(frozen=True)
class ImportedSample:
    text: str
    answer: str | None
    answer_strict: str | None
    correct: bool
    prompt_tokens: int | None = None  # None: the log has no count
    generated_tokens: int | None = None
    finish_reason: str | None = None


@dataclass(frozen=True)
class ImportedProblem:
    id: str
    gold: str
    prompt: str  # what the model read (the question as posed), for the report and for counting tokens
    samples: tuple[ImportedSample, ...]


@dataclass
class Imported:
    """One task of one model from another harness's log."""

    fmt: str
    task: str
    model: str
    problems: list[ImportedProblem]
    source: dict
    assumptions: list[str] = field(default_factory=list)
    digest: str = ""  # a hash of the source content: the run id derives from it
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    model_dir: str | None = None  # a local checkpoint the log names: config and tokenizer come from it


def same_answer(answer: str | None, gold: str) -> bool:
    """Exact match after stripping; two numbers are compared as numbers (``"3.0"`` equals ``"3"``)."""
    if answer is None:
        return False
    a, g = answer.strip(), str(gold).strip()
    if a == g:
        return True
    num = re.compile(r"^[-+]?(\d[\d,]*)?(\.\d+)?$")
    if num.match(a) and num.match(g) and any(ch.isdigit() for ch in a) and any(ch.isdigit() for ch in g):
        try:
            return float(a.replace(",", "")) == float(g.replace(",", ""))
        except ValueError:
            return False
    return False


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


def write_run(imp: Imported, out: Path, digest: str, model: str | None = None, model_config: str | None = None,
              tokenizer: str | None = None):
    """Write ``imp`` as ``out/<run_id>/`` (records, header, summary, curve, report); return the store.
    Importing the same log with the same options again finds the run complete and rewrites nothing else."""
    from ttc.store.runstore import RunStore
    from ttc.sweep.runner import finish

    model = model or imp.model
    assumptions = list(imp.assumptions)
    cfg_path = model_config or (str(Path(imp.model_dir) / "config.json") if imp.model_dir and
                                (Path(imp.model_dir) / "config.json").is_file() else None)
    spec = spec_from_config_json(cfg_path) if cfg_path else None
    if spec is None:
        assumptions.append("FLOPs: no model config given (--model-config); every FLOPs column is 0")
    elif not model_config:
        assumptions.append(f"FLOPs: model shape read from {cfg_path}, the checkpoint the log names")
    has_counts = all(s.prompt_tokens is not None and s.generated_tokens is not None
                     for p in imp.problems for s in p.samples)
    tok_path = tokenizer or (imp.model_dir if imp.model_dir and not has_counts else None)
    counter = TokenCounter(tok_path) if (tok_path and not has_counts) else None
    if not has_counts:
        assumptions.append(f"token counts: the log has none; counted with the tokenizer at {tok_path} (the texts "
                           f"as logged: an end-of-sequence token the log does not show is not counted)" if counter
                           else "token counts: the log has none and no --tokenizer was given; counted as 0")
    n = max(len(p.samples) for p in imp.problems)
    if any(len(p.samples) != n for p in imp.problems):
        raise TTCError(f"{imp.task}: problems have different numbers of samples; the estimators need the same n")
    if imp.seed is None:
        assumptions.append("seed: the log records no per-sample seed; records carry seed 0")
    config = RunConfig(
        sweep=SweepConfig(tasks=(imp.task,), models=(model,), samplers=("sample",), budgets=budgets_for(n),
                          limit=len(imp.problems)),
        sampling=SamplingConfig(temperature=imp.temperature if imp.temperature is not None else 0.0,
                                top_p=imp.top_p if imp.top_p is not None else 1.0,
                                max_tokens=imp.max_tokens or 1, seed=imp.seed or 0),
        backend=BackendConfig(name=f"import:{imp.fmt}"), out=str(out))
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{imp.fmt}-{imp.task}-{model}")[:80]
    run_id = f"{slug}-{digest[:10]}"
    header = {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "config_hash": digest, "config": config.to_dict(),
        "seed": config.sampling.seed, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(), "versions": library_versions(), "host": host_info(),
        "flops_convention": FLOPS_CONVENTION if spec else "none: no model config given",
        "models": {model: {"source": f"imported from {imp.fmt}", "identity": {"backend": f"import:{imp.fmt}"},
                           **({"spec": spec.__dict__} if spec else {})}},
        "source": imp.source, "assumptions": assumptions,
    }
    store = RunStore.open(out, run_id, header)
    shard = store.shard(imp.task, model, "sample")
    done = shard.done()
    for prob in imp.problems:
        if prob.id in done:
            continue
        records = []
        for i, s in enumerate(prob.samples):
            pt, gt = s.prompt_tokens, s.generated_tokens
            if counter is not None:
                pt, gt = counter.prompt(prob.prompt), counter.completion(s.text)
            pt, gt = int(pt or 0), int(gt or 0)
            reason = s.finish_reason
            if reason is None:
                reason = "length" if (imp.max_tokens and gt >= imp.max_tokens) else ("stop" if counter else "unknown")
            records.append(SampleRecord(
                task=imp.task, model=model, sampler="sample", problem_id=prob.id, sample_index=i,
                n_samples=len(prob.samples), text=s.text, answer=s.answer, answer_strict=s.answer_strict,
                gold=str(prob.gold), correct=bool(s.correct), prompt_tokens=pt, generated_tokens=gt,
                finish_reason=reason, prefill_flops=prefill_flops(spec, pt) if spec else 0.0,
                decode_flops=decode_flops(spec, pt, gt) if spec else 0.0, prefill_shared=False,
                seed=imp.seed or 0, extra={"question": prob.prompt} if i == 0 else {}))
        shard.append_problem(records)
    finish(store, config)
    return store

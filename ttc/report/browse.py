"""Per-problem views of a stored run, shared by the report page (``ttc.report.html``) and the terminal (``ttc.report.show``).

Statistics come from the light columns of every record (answers, correctness, token counts, FLOPs) and are
computed vectorized over problems, so they cover every problem of a run of millions of records. Texts are
for people: only the first ``k`` samples of a problem are read (``sample_texts``).

Per problem: ``n`` samples, ``correct`` of them, ``unparsed`` (no answer extracted), ``flex_only`` (graded
correct while the strict route found no answer or another one), ``length`` (stopped at the token limit),
mean prompt and generated tokens, the problem's FLOPs (one prefill when it was shared, plus every decode
and verifier pass), the vote (answers with counts; the winners are the most frequent answers, and
``vote`` is the share of tied winners that are correct, as in maj@n) and the difficulty level.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ttc.metrics.tables import answer_classes, sizes_of, sort_by, starts_of
from ttc.store.runstore import load_run

KEYS = ["task", "model", "sampler", "problem_id"]
LIGHT_COLUMNS = KEYS + ["sample_index", "n_samples", "answer", "answer_strict", "gold", "correct",
                        "prompt_tokens", "generated_tokens", "finish_reason", "prefill_flops", "decode_flops",
                        "prefill_shared", "verifier_flops"]
TEXT_COLUMNS = KEYS + ["sample_index", "text", "extra"]
TOP_ANSWERS = 10  # answers listed per problem's vote; the rest are counted as "others"


def load_columns(run_dir, columns: list[str]) -> pd.DataFrame:
    """``load_run(run_dir, columns=...)``: only these columns are read."""
    return load_run(run_dir, columns=columns)


def _flex_only(df: pd.DataFrame) -> pd.Series:
    strict = df["answer_strict"]
    differs = strict.isna() | (strict.astype(str) != df["answer"].astype(str))
    return df["correct"].astype(bool) & df["answer"].notna() & differs


def problem_stats(df: pd.DataFrame, levels: pd.DataFrame | None = None,
                  votes: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (task, model, sampler, problem): the statistics of the module docstring. ``votes`` is
    ``vote_counts(df)`` when the caller has it already."""
    cols = KEYS + ["gold", "n", "correct", "unparsed", "flex_only", "length", "prompt_tokens",
                   "generated_tokens", "flops", "vote", "winner", "tied", "level"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    df = sort_by(df, KEYS)
    starts = starts_of(df, KEYS)
    n = sizes_of(starts, len(df))

    def total(x) -> np.ndarray:
        return np.add.reduceat(np.asarray(x, dtype=float), starts)

    def counts(mask) -> np.ndarray:
        return np.add.reduceat(np.asarray(mask, dtype=np.int64), starts)

    out = pd.DataFrame({k: df[k].to_numpy()[starts] for k in KEYS})
    out["gold"] = df["gold"].astype(str).to_numpy()[starts]
    out["n"] = n
    out["correct"] = counts(df["correct"].astype(bool))
    out["unparsed"] = counts(df["answer"].isna())
    out["flex_only"] = counts(_flex_only(df))
    out["length"] = counts(df["finish_reason"] == "length")
    out["prompt_tokens"] = total(df["prompt_tokens"]) / n
    out["generated_tokens"] = total(df["generated_tokens"]) / n
    prefill = df["prefill_flops"].to_numpy(dtype=float)
    shared = df["prefill_shared"].astype(bool).to_numpy()[starts]
    verifier = df["verifier_flops"].fillna(0) if "verifier_flops" in df else np.zeros(len(df))
    out["flops"] = (np.where(shared, np.maximum.reduceat(prefill, starts), total(prefill))
                    + total(df["decode_flops"]) + total(verifier))
    votes = vote_counts(df) if votes is None else votes
    out["vote"], out["winner"], out["tied"] = 0.0, None, 0
    if len(votes):  # each problem's answers come by count, so its winners (the most frequent) come first
        vs = starts_of(votes, KEYS)
        c = votes["count"].to_numpy()
        win = c == np.repeat(c[vs], sizes_of(vs, len(votes)))
        tied = np.add.reduceat(win.astype(np.int64), vs)
        good = np.add.reduceat((win & votes["correct"].astype(bool).to_numpy()).astype(float), vs)
        at = pd.MultiIndex.from_frame(out[KEYS]).get_indexer(pd.MultiIndex.from_frame(votes[KEYS].iloc[vs]))
        mine = at >= 0  # votes of other problems (a caller's) are ignored
        out.loc[at[mine], "vote"] = (good / tied)[mine]
        out.loc[at[mine], "winner"] = votes["answer"].to_numpy()[vs][mine]
        out.loc[at[mine], "tied"] = tied[mine]
    if levels is not None and len(levels):
        lv = levels[["task", "model", "problem_id", "level"]].astype({"problem_id": str})
        out = out.merge(lv, on=["task", "model", "problem_id"], how="left")
    else:
        out["level"] = np.nan
    return out[cols]


def vote_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Per problem and distinct extracted answer: ``count`` of samples and whether it is ``correct``,
    sorted by problem then count (descending), then answer, with ``rank`` from 0."""
    d = df.loc[df["answer"].notna(), KEYS + ["answer", "correct"]]
    if d.empty:
        return pd.DataFrame(columns=KEYS + ["answer", "count", "correct", "rank"])
    d = sort_by(d, KEYS)
    starts = starts_of(d, KEYS)
    problem = np.repeat(np.arange(len(starts)), sizes_of(starts, len(d)))
    order, first, code, answers = answer_classes(problem, d["answer"].astype(str).to_numpy())
    problem, code = problem[order], code[order]
    correct = d["correct"].astype(bool).to_numpy()[order]
    count = sizes_of(first, len(d))
    good = np.maximum.reduceat(correct.astype(np.int8), first).astype(bool)
    problem, code, rows = problem[first], code[first], order[first]
    by = np.lexsort((code, -count, problem))  # by problem, count (descending), answer
    problem, code, count, good, rows = problem[by], code[by], count[by], good[by], rows[by]
    v = d.iloc[rows][KEYS].reset_index(drop=True)
    v["answer"] = answers[code]
    v["count"], v["correct"] = count, good
    new = np.concatenate([[True], problem[1:] != problem[:-1]])
    v["rank"] = np.arange(len(v)) - np.maximum.accumulate(np.where(new, np.arange(len(v)), 0))
    return v


def read_levels(run_dir: Path, df: pd.DataFrame) -> pd.DataFrame:
    """``problems.csv`` of the run when written, else the levels computed from the records."""
    path = Path(run_dir) / "problems.csv"
    if path.exists():
        try:
            return pd.read_csv(path, dtype={"problem_id": str})
        except (ValueError, pd.errors.ParserError):
            pass
    from ttc.metrics.summary import problem_levels

    return problem_levels(df) if len(df) else pd.DataFrame(columns=["task", "model", "problem_id", "level"])


def _decode_extra(x) -> dict:
    if isinstance(x, dict):
        return x
    if isinstance(x, str) and x:
        try:
            v = json.loads(x)
            return v if isinstance(v, dict) else {}
        except ValueError:
            return {}
    return {}


def sample_texts(run_dir, k: int, problems: pd.DataFrame | None = None) -> pd.DataFrame:
    """Texts (and ``extra``) of the samples with ``sample_index < k`` of every problem, or of the problems
    listed in ``problems`` (a frame with the KEYS columns). Columnar runs are read with a filter on
    ``sample_index``, so the texts of other samples are never loaded."""
    df = _filtered_parquet(Path(run_dir), k)
    if df is None:
        df = load_columns(run_dir, TEXT_COLUMNS)
        df = df[df["sample_index"] < k]
    if problems is not None:
        df = df.merge(problems[KEYS].drop_duplicates(), on=KEYS, how="inner")
    df = df.drop_duplicates(KEYS + ["sample_index"], keep="first")
    df = df.sort_values(KEYS + ["sample_index"], kind="stable").reset_index(drop=True)
    if "extra" in df.columns:
        df["extra"] = [_decode_extra(x) for x in df["extra"]]
    else:
        df["extra"] = [{} for _ in range(len(df))]
    return df


def _filtered_parquet(root: Path, k: int) -> pd.DataFrame | None:
    """The text columns of the records with ``sample_index < k`` of a Parquet run, read with a filter, in the
    store's file order (so that ``drop_duplicates(keep="first")`` keeps the copy the store reads)."""
    from ttc.store.runstore import RECORDS_DIR, Shard

    base = root / RECORDS_DIR
    if not base.is_dir():
        return None
    files = [f for d in sorted(base.iterdir()) if d.is_dir() for f in Shard(d, "").files()]
    if not files:
        return None
    import pyarrow.dataset as ds

    dataset = ds.dataset([str(f) for f in files], format="parquet")
    cols = [c for c in TEXT_COLUMNS if c in dataset.schema.names]
    if "sample_index" not in cols:
        return None
    return dataset.to_table(columns=cols, filter=ds.field("sample_index") < k).to_pandas()


def question_texts(header: dict, tasks_in_run) -> tuple[dict, str]:
    """``{(task, problem_id): question}`` rebuilt from the task with the run's limit, seed and data file,
    and a note saying where the questions came from (records hold no question)."""
    cfg = header.get("config") or {}
    sweep, sampling = cfg.get("sweep") or {}, cfg.get("sampling") or {}
    if not sweep or "limit" not in sweep:
        return {}, "the records hold no question and the run header no task config to rebuild it from"
    from tasks import get_task, load_problems

    out, failed = {}, []
    for name in sorted(set(tasks_in_run)):
        try:
            task = get_task(name)
            for p in load_problems(task, int(sweep["limit"]), int(sampling.get("seed", 0)), sweep.get("data_file")):
                out[(name, str(p.id))] = p.question
        except Exception as e:  # noqa: BLE001  a hub task offline, a missing data file: say so, keep going
            failed.append(f"{name} ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})")
    if not out:
        return out, "the records store no question and the task could not rebuild it: " + "; ".join(failed)
    note = "questions rebuilt from the task definitions with the run's limit, seed and data file (records " \
           "store no question)"
    if failed:
        note += "; could not rebuild: " + "; ".join(failed)
    return out, note

"""``report.html``: one self-contained page about a run (written by every sweep's finish and by ``ttc report``).

The page opens from disk with no server and no network: inline CSS and JavaScript, figures as inline PNG,
data as inline JSON. It shows the run's config and provenance (``header.json``), the summary table, the
answers by extraction route, the curves (``ttc.report.curve.plot_curve``), fits when the run directory holds them
(``fits.csv``, or exchange figures written by ``ttc plot``), and a problem browser: every
problem's statistics and vote, and the texts of a bounded number of samples per problem (stated on the page),
so a run of millions of records gives a page of bounded size. The browser (``ttc.report.page``) searches ids,
questions, answers and the shown texts, sorts by any column, and links to one problem (``report.html#problem=ID``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import pandas as pd

from ttc.metrics.routes import extraction_routes
from ttc.report import browse
from ttc.report.page import page
from ttc.store.runstore import detach_header, read_header, write_atomic

SAMPLES_PER_PROBLEM = 8  # texts shown per problem
MAX_TEXT_CHARS = 4000  # each shown text is cut here
MAX_TEXT_PROBLEMS = 2000  # problems per task/model/sampler whose texts are in the page


def _clean(x):
    """A JSON-able scalar: NaN becomes None, numpy scalars become Python ones."""
    if x is None:
        return None
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _table(df: pd.DataFrame, float_format=lambda v: f"{v:.4g}") -> str:
    return df.to_html(index=False, border=0, float_format=float_format, na_rep="-", escape=True)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _img(src: str, alt: str, ident: str = "") -> str:
    ident = f' id="{ident}"' if ident else ""
    return f'<img{ident} class="figure" alt="{html.escape(alt)}" src="{src}">'


def resumed_text(n: int) -> str:
    """The header's ``resumed`` count, explained: how many times the same command was run again on the run."""
    if not n:
        return "0 (written by one run of the command)"
    return (f"{n} (the same command was run again on this run {n} time{'s' if n != 1 else ''}, after a stop or "
            "once complete; a resume skips the stored problems, so each was generated and stored once)")


def provenance_section(header: dict, run_dir: Path) -> str:
    rows = [("run", header.get("run_id", run_dir.name)), ("created", header.get("created")),
            ("resumed", resumed_text(header.get("resumed", 0)))]
    git = header.get("git") or {}
    rows.append(("git commit", f"{git.get('commit')}{' (uncommitted changes)' if git.get('dirty') else ''}"))
    rows.append(("FLOPs convention", header.get("flops_convention")))
    if header.get("source"):
        rows.append(("imported from", json.dumps(header["source"], sort_keys=True, default=str)))
    for note in header.get("assumptions") or []:
        rows.append(("assumption", note))
    for name, m in (header.get("models") or {}).items():
        rows.append((f"model {name}", json.dumps(m, sort_keys=True, default=str)))
    rows.append(("host", json.dumps(header.get("host"), sort_keys=True, default=str)))
    rows.append(("versions", ", ".join(f"{k} {v}" for k, v in sorted((header.get("versions") or {}).items()))))
    body = "".join(f'<tr><th class="l">{html.escape(str(k))}</th><td class="l">{html.escape(str(v))}</td></tr>'
                   for k, v in rows)
    cfg = html.escape(json.dumps(header.get("config"), indent=2, sort_keys=True, default=str))
    return (f'<h2>Config and provenance</h2><table class="kv" id="provenance">{body}</table>'
            f"<details><summary>resolved config</summary><pre>{cfg}</pre></details>")


def summary_section(run_dir: Path, summary: pd.DataFrame | None = None) -> tuple[str, pd.DataFrame | None]:
    """The summary table's section and its overall rows: of ``summary`` when given, else of summary.csv."""
    path = run_dir / "summary.csv"
    if summary is None and not path.exists():
        return "<h2>Summary</h2><p class=\"note\">No summary.csv in the run directory (run " \
               "ttc summary RUN_DIR to write it).</p>", None
    s = pd.read_csv(path) if summary is None else summary
    if "level" in s.columns:
        s = s[s["level"].astype(str) == "all"]
    if s.empty:
        return "<h2>Summary</h2><p class=\"note\">summary.csv has no rows.</p>", s
    keys = ["task", "model", "sampler", "budget"]
    t = s.assign(cell=[f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in zip(s["value"], s["ci_low"], s["ci_high"])])
    table = t.pivot_table(index=keys, columns="metric", values="cell", aggfunc="first")
    table.columns.name = None
    table["GFLOPs/problem"] = (s.groupby(keys)["flops_per_problem"].first() / 1e9).map(lambda v: f"{v:.4g}")
    table["problems"] = s.groupby(keys)["n_problems"].first()
    out = table.reset_index()
    return ('<h2>Summary</h2><p class="note">Mean over problems at each budget, 95% bootstrap interval over '
            'problems in brackets (summary.csv, overall rows; the file also holds each difficulty level).</p>'
            f'<div id="summary">{_table(out)}</div>'), s


def curves_section(summary: pd.DataFrame | None, run_dir: Path, title: str) -> str:
    if summary is None or summary.empty:
        return "<h2>Curves</h2><p class=\"note\">No summary rows to draw.</p>"
    png = run_dir / "curve.png"
    summary_csv = run_dir / "summary.csv"
    if png.exists() and summary_csv.exists() and png.stat().st_mtime >= summary_csv.stat().st_mtime:
        src = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()  # drawn with summary.csv
    else:
        from ttc.report.curve import plot_curve

        src = _png(plot_curve(summary, title))
    return "<h2>Curves</h2>" + _img(src, "accuracy against inference FLOPs", "curve")


def fits_section(run_dir: Path) -> str:
    parts = []
    fits = run_dir / "fits.csv"
    if fits.exists():
        try:
            parts.append(f'<div id="fits">{_table(pd.read_csv(fits))}</div>')
        except (ValueError, pd.errors.ParserError) as e:
            parts.append(f'<p class="note">fits.csv could not be read: {html.escape(str(e))}</p>')
    for png in sorted((run_dir.parent / "analysis").glob(f"exchange_{run_dir.name}*.png")):
        src = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
        parts.append(_img(src, png.name))
    if not parts:
        return ('<h2>Fits</h2><p class="note">No fits stored with this run (fits.csv or the exchange figure of '
                'ttc plot); ttc fit RUN_DIR prints them.</p>')
    return "<h2>Fits</h2>" + "".join(parts)


def routes_section(light: pd.DataFrame) -> str:
    table = extraction_routes(light)
    if table.empty:
        return ""
    return ('<h2>Answers by extraction route</h2><p class="note">Share of records whose graded answer came from '
            'the strict route (the format the prompt asks for), from the flexible fallback only, or from neither '
            '(unparsed); correct_* are the shares graded correct through each route.</p>'
            f'<div id="routes">{_table(table, lambda v: f"{v:.3f}")}</div>')


def _shown_problems(stats: pd.DataFrame, max_problems: int) -> pd.DataFrame:
    return stats.groupby(["task", "model", "sampler"], sort=False, group_keys=False).head(max_problems)


def browser_data(run_dir: Path, light: pd.DataFrame, header: dict, k: int, max_chars: int,
                 max_problems: int) -> tuple[dict, str]:
    v = browse.vote_counts(light)
    stats = browse.problem_stats(light, browse.read_levels(run_dir, light), votes=v)
    index = {key: i for i, key in enumerate(zip(*(stats[c] for c in browse.KEYS)))}
    columns = browse.KEYS + ["gold", "n", "correct", "unparsed", "flex_only", "length", "prompt_tokens",
                             "generated_tokens", "flops", "vote", "winner", "level"]
    rows = [[_clean(v) for v in r] for r in stats[columns].itertuples(index=False, name=None)]

    votes, other = {}, {}
    if len(v):  # one pass over the answer classes, in problem order and by count
        keys = zip(*(v[c].tolist() for c in browse.KEYS))
        for key, a, c, ok, rank in zip(keys, v["answer"].tolist(), v["count"].tolist(), v["correct"].tolist(),
                                       v["rank"].tolist()):
            i = str(index[key])
            if rank < browse.TOP_ANSWERS:
                votes.setdefault(i, []).append([a[:300], int(c), bool(ok)])
            else:
                other[i] = other.get(i, 0) + int(c)

    shown = _shown_problems(stats, max_problems)
    texts = browse.sample_texts(run_dir, k, shown) if k > 0 and len(shown) else pd.DataFrame(columns=browse.TEXT_COLUMNS)
    samples, questions = {}, {}
    if len(texts):
        meta = [c for c in browse.LIGHT_COLUMNS if c in light.columns and c not in ("gold", "n_samples")]
        texts = texts.merge(light.loc[light["sample_index"] < k, meta], on=browse.KEYS + ["sample_index"],
                            how="inner")
        flops = texts["decode_flops"].astype(float) + texts["verifier_flops"].fillna(0).astype(float)
        flops = flops + texts["prefill_flops"].astype(float).where(~texts["prefill_shared"].astype(bool), 0.0)
        cols = {c: texts[c].tolist() for c in ["sample_index", "text", "answer", "answer_strict", "correct",
                                               "finish_reason", "prompt_tokens", "generated_tokens", "extra"]}
        flops_list = flops.tolist()
        keys = zip(*(texts[c].tolist() for c in browse.KEYS))
        for j, key in enumerate(keys):  # one pass over the shown records
            i = str(index[key])
            text = cols["text"][j] if isinstance(cols["text"][j], str) else ""
            if len(text) > max_chars:
                text = text[:max_chars] + f"\n[... cut at {max_chars} of {len(text)} characters]"
            extra = cols["extra"][j]
            rest = {k2: v2 for k2, v2 in extra.items() if k2 != "question"}
            samples.setdefault(i, []).append([
                int(cols["sample_index"][j]), text, _clean(cols["answer"][j]), _clean(cols["answer_strict"][j]),
                bool(cols["correct"][j]), _clean(cols["finish_reason"][j]), _clean(cols["prompt_tokens"][j]),
                _clean(cols["generated_tokens"][j]), _clean(flops_list[j]),
                json.dumps(rest, default=str)[:600] if rest else ""])
            if "question" in extra and i not in questions:
                questions[i] = str(extra["question"])
    if questions:
        question_note = "the question is stored with the samples (extra.question)"
    else:
        rebuilt, question_note = browse.question_texts(header, stats["task"].unique())
        for key, i in index.items():
            q = rebuilt.get((key[0], str(key[3])))
            if q is not None:
                questions[str(i)] = q
    n_shown = len(shown)
    text_note = (f"Texts: the first {k} samples of each problem (by sample index), each cut at {max_chars} "
                 f"characters, for {n_shown} of {len(stats)} problems (at most {max_problems} per task/model/"
                 f"sampler); ttc show RUN_DIR --problem ID prints any problem's samples")
    data = dict(problems=dict(columns=columns, rows=rows), votes=votes, other_votes=other, samples=samples,
                questions=questions, question_note="No question: " + question_note, text_note=text_note,
                samples_per_problem=k)
    return data, text_note


def write_report(run_dir, samples_per_problem: int = SAMPLES_PER_PROBLEM, max_chars: int = MAX_TEXT_CHARS,
                 max_problems: int = MAX_TEXT_PROBLEMS, records: pd.DataFrame | None = None,
                 summary: pd.DataFrame | None = None) -> Path:
    """Write ``run_dir/report.html`` (atomically) and return its path. ``records`` (with at least
    ``browse.LIGHT_COLUMNS``) and ``summary`` (as written to summary.csv) are the run's when the caller has
    them already; else they are read from the run directory."""
    run_dir = Path(run_dir)
    light = browse.load_columns(run_dir, browse.LIGHT_COLUMNS) if records is None else records
    header = detach_header(light) or read_header(run_dir)
    title = f"ttc run {header.get('run_id', run_dir.name)}"
    summary_html, summary = summary_section(run_dir, summary)
    data, text_note = browser_data(run_dir, light, header, samples_per_problem, max_chars, max_problems)
    sections = [f"<h1>{html.escape(title)}</h1>",
                f'<p class="note">{len(light)} records, {len(data["problems"]["rows"])} problems, read from the run '
                f"directory {html.escape(str(run_dir))} (<code>ttc report</code> draws this page again).</p>",
                provenance_section(header, run_dir), summary_html, routes_section(light),
                curves_section(summary, run_dir, header.get("run_id", run_dir.name)), fits_section(run_dir)]
    doc = page(title, sections, data, text_note)
    path = run_dir / "report.html"
    write_atomic(path, lambda tmp: Path(tmp).write_text(doc, encoding="utf-8"))
    return path

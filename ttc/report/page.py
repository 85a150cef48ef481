"""The report page's HTML shell: inline CSS and JavaScript, no external resource of any kind.

The page reads its data from one ``<script type="application/json">`` element and builds the problem
browser with DOM calls that set ``textContent`` only, so no stored text (a model's output, an answer) is
ever parsed as HTML. The browser searches the problems' ids, questions, answers and shown sample texts (an index
built on the first search, so opening the page costs nothing more), sorts by any column, and links to one
problem: ``report.html#problem=ID`` opens it (``&group=TASK / MODEL / SAMPLER`` where the run has several), and
opening a problem puts its link in the address.
"""

from __future__ import annotations

import html
import json

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1280px;padding:0 18px 60px;color:#1c1c1c}
h1{font-size:21px;margin:18px 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 7px;text-align:right;vertical-align:top}
th{background:#f4f4f4}td.l,th.l{text-align:left}.note{color:#555;font-size:13px}
pre{white-space:pre-wrap;word-break:break-word;background:#f8f8f8;border:1px solid #e4e4e4;padding:6px 8px;margin:4px 0;font-size:12.5px;max-height:420px;overflow:auto}
#problems tbody tr{cursor:pointer}#problems tbody tr:hover{background:#eef4ff}#problems tbody tr.sel{background:#dce8ff}
.ok{color:#0a7a2f;font-weight:600}.bad{color:#b3261e;font-weight:600}.mut{color:#777}
.controls{display:flex;flex-wrap:wrap;gap:10px;align-items:center;margin:6px 0 10px}
.controls label{font-size:13px}.sample{border:1px solid #ddd;border-radius:4px;padding:6px 9px;margin:8px 0}
.sample.right{border-left:5px solid #2e9d4f}.sample.wrong{border-left:5px solid #c9473d}.sample.none{border-left:5px solid #999}
.kv td{text-align:left}img{max-width:100%;border:1px solid #eee}details{margin:6px 0}
#problems thead th[data-sort]{cursor:pointer;user-select:none}#problems thead th[data-sort]:hover{background:#e8eefc}
.sample.hit{outline:2px solid #e0a800}
"""

JS = r"""
(function(){
'use strict';
const D = JSON.parse(document.getElementById('report-data').textContent);
const P = D.problems, C = P.columns, ROWS = P.rows, col = {};
C.forEach((c, i) => { col[c] = i; });
const PAGE = 100;
let page = 0, shown = [], selected = -1, query = '', hay = null, sortKey = null, sortDir = 1;
const $ = id => document.getElementById(id);
function el(tag, text, cls){ const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; }
function fmt(x, d){ if (x === null || x === undefined || (typeof x === 'number' && isNaN(x))) return '-'; return typeof x === 'number' ? (Number.isInteger(x) ? String(x) : x.toFixed(d === undefined ? 2 : d)) : String(x); }
function gf(x){ return x === null || x === undefined ? '-' : (x / 1e9).toPrecision(4); }
function groupOf(r){ return r[col.task] + ' / ' + r[col.model] + ' / ' + r[col.sampler]; }

const groups = Array.from(new Set(ROWS.map(groupOf))).sort();
const gsel = $('f-group');
[['', 'all task / model / sampler']].concat(groups.map(g => [g, g])).forEach(([v, t]) => { const o = el('option', t); o.value = v; gsel.appendChild(o); });
const levels = Array.from(new Set(ROWS.map(r => r[col.level]).filter(x => x !== null))).sort();
const lsel = $('f-level');
[['', 'all levels']].concat(levels.map(l => [String(l), 'level ' + l])).forEach(([v, t]) => { const o = el('option', t); o.value = v; lsel.appendChild(o); });

const STATUS = {
  '': r => true,
  right: r => r[col.vote] === 1,
  wrong: r => r[col.vote] < 1,
  unparsed: r => r[col.unparsed] > 0,
  flexonly: r => r[col.flex_only] > 0,
  unsolved: r => r[col.correct] === 0,
};

// Text search: one lower-cased string per problem (id, gold, question, voted answers, the texts and answers of
// the samples in this page), built on the first search so that opening the page costs nothing more.
function haystack(){
  if (hay) return hay;
  hay = ROWS.map((r, i) => {
    const k = String(i), parts = [r[col.problem_id], r[col.gold], r[col.winner], D.questions[k]];
    (D.votes[k] || []).forEach(v => parts.push(v[0]));
    (D.samples[k] || []).forEach(s => { parts.push(s[1]); parts.push(s[2]); parts.push(s[3]); });
    return parts.filter(x => x !== null && x !== undefined).join('\n').toLowerCase();
  });
  return hay;
}

// Sorting: numbers by value (missing last), text by natural order (p2 before p10).
const natural = new Intl.Collator(undefined, {numeric: true, sensitivity: 'base'});
const SORT = {
  group: r => groupOf(r), problem: r => String(r[col.problem_id]), level: r => r[col.level],
  correct: r => r[col.n] ? r[col.correct] / r[col.n] : null, winner: r => r[col.winner], vote: r => r[col.vote],
  unparsed: r => r[col.unparsed], flex_only: r => r[col.flex_only], length: r => r[col.length],
  generated_tokens: r => r[col.generated_tokens], flops: r => r[col.flops],
};
function compareRows(a, b){
  const f = SORT[sortKey], x = f(ROWS[a]), y = f(ROWS[b]);
  const nx = x === null || x === undefined, ny = y === null || y === undefined;
  if (nx || ny) return nx === ny ? a - b : (nx ? 1 : -1);
  const c = (typeof x === 'number' && typeof y === 'number') ? x - y : natural.compare(String(x), String(y));
  return c ? sortDir * c : a - b;
}
function sortShown(){ if (sortKey) shown.sort(compareRows); }
function showSort(){
  document.querySelectorAll('#problems thead th[data-sort]').forEach(th => {
    const mark = th.querySelector('.arrow');
    mark.textContent = th.dataset.sort === sortKey ? (sortDir > 0 ? ' \u25b2' : ' \u25bc') : '';
    th.setAttribute('aria-sort', th.dataset.sort === sortKey ? (sortDir > 0 ? 'ascending' : 'descending') : 'none');
  });
}

function applyFilters(){
  const g = gsel.value, l = lsel.value, s = STATUS[$('f-status').value];
  query = $('f-search').value.trim().toLowerCase();
  const h = query ? haystack() : null;
  shown = [];
  for (let i = 0; i < ROWS.length; i++){
    const r = ROWS[i];
    if (g && groupOf(r) !== g) continue;
    if (l && String(r[col.level]) !== l) continue;
    if (!s(r)) continue;
    if (query && h[i].indexOf(query) < 0) continue;
    shown.push(i);
  }
  sortShown();
  page = 0;
  renderTable();
}

function renderTable(){
  const tb = $('problems').querySelector('tbody');
  tb.replaceChildren();
  const start = page * PAGE, end = Math.min(shown.length, start + PAGE);
  for (let j = start; j < end; j++){
    const i = shown[j], r = ROWS[i], tr = el('tr');
    tr.dataset.idx = String(i);
    if (i === selected) tr.className = 'sel';
    const v = r[col.vote];
    const cells = [[groupOf(r), 'l'], [r[col.problem_id], 'l'], [fmt(r[col.level])],
      [r[col.correct] + ' / ' + r[col.n]], [r[col.winner] === null ? '(none)' : r[col.winner], 'l'],
      [v === 1 ? 'right' : (v > 0 ? 'tie ' + fmt(v) : 'wrong'), v === 1 ? 'ok' : 'bad'],
      [r[col.unparsed]], [r[col.flex_only]], [r[col.length]], [fmt(r[col.generated_tokens], 1)], [gf(r[col.flops])]];
    cells.forEach(([t, c]) => tr.appendChild(el('td', t, c)));
    tb.appendChild(tr);
  }
  $('count').textContent = shown.length + ' of ' + ROWS.length + ' problems match; showing ' +
    (shown.length ? (start + 1) + '-' + end : '0');
  $('prev').disabled = page === 0;
  $('next').disabled = end >= shown.length;
}

function kv(table, k, v, cls){ const tr = el('tr'); tr.appendChild(el('th', k, 'l')); tr.appendChild(el('td', v, cls)); table.appendChild(tr); }

// Deep links: report.html#problem=ID (and &group=TASK / MODEL / SAMPLER where the run has several).
function hashOf(i){
  const r = ROWS[i];
  return '#problem=' + encodeURIComponent(String(r[col.problem_id])) +
    (groups.length > 1 ? '&group=' + encodeURIComponent(groupOf(r)) : '');
}
function fromHash(){
  const h = location.hash.replace(/^#/, '');
  if (!h) return null;
  const want = {};
  for (const part of h.split('&')){
    const at = part.indexOf('=');
    if (at < 0) continue;
    try { want[part.slice(0, at)] = decodeURIComponent(part.slice(at + 1)); } catch (e) { return {missing: h}; }
  }
  if (want.problem === undefined) return null;
  for (let i = 0; i < ROWS.length; i++){
    if (String(ROWS[i][col.problem_id]) === want.problem && (want.group === undefined || groupOf(ROWS[i]) === want.group)) return {index: i};
  }
  return {missing: want.problem + (want.group ? ' (' + want.group + ')' : '')};
}
function followHash(){
  const target = fromHash();
  if (!target) return;
  if (target.index === undefined){
    const box = $('detail');
    box.replaceChildren(el('p', 'No problem ' + target.missing + ' in this run (the link names a problem id the page does not hold).', 'note bad'));
    box.scrollIntoView({block: 'start'});
    return;
  }
  if (target.index === selected) return;
  const j = shown.indexOf(target.index);
  if (j >= 0) page = Math.floor(j / PAGE);
  openProblem(target.index, false);
}

function openProblem(i, setHash){
  selected = i;
  const r = ROWS[i], box = $('detail');
  box.replaceChildren();
  box.appendChild(el('h2', 'Problem ' + r[col.problem_id] + ' (' + groupOf(r) + ')'));
  const link = el('a', 'link to this problem', 'note');
  link.id = 'problem-link';
  link.setAttribute('href', hashOf(i));
  box.appendChild(link);
  const t = el('table', null, 'kv');
  kv(t, 'gold answer', r[col.gold]);
  kv(t, 'samples', r[col.n] + ' (' + r[col.correct] + ' correct, ' + r[col.unparsed] + ' unparsed, ' +
     r[col.flex_only] + ' right by the flexible extraction only, ' + r[col.length] + ' stopped at the token limit)');
  kv(t, 'difficulty level', fmt(r[col.level]));
  kv(t, 'mean tokens', 'prompt ' + fmt(r[col.prompt_tokens], 1) + ', generated ' + fmt(r[col.generated_tokens], 1));
  kv(t, 'FLOPs of the problem', gf(r[col.flops]) + ' GFLOPs');
  box.appendChild(t);
  const q = D.questions[String(i)];
  box.appendChild(el('h3', 'Question'));
  if (q !== undefined) box.appendChild(el('pre', q)); else box.appendChild(el('p', D.question_note, 'note'));
  box.appendChild(el('h3', 'Vote over all ' + r[col.n] + ' samples'));
  const vt = el('table'), hd = el('tr');
  ['answer', 'votes', 'correct', ''].forEach(h => hd.appendChild(el('th', h, 'l')));
  vt.appendChild(hd);
  const votes = D.votes[String(i)] || [], top = votes.length ? votes[0][1] : 0;
  votes.forEach(([a, c, ok]) => {
    const tr = el('tr');
    tr.appendChild(el('td', a, 'l')); tr.appendChild(el('td', c));
    tr.appendChild(el('td', ok ? 'yes' : 'no', ok ? 'ok' : 'bad'));
    tr.appendChild(el('td', c === top ? 'winner' : '', 'l'));
    vt.appendChild(tr);
  });
  const other = D.other_votes[String(i)];
  if (other) { const tr = el('tr'); tr.appendChild(el('td', '(other answers)', 'l mut')); tr.appendChild(el('td', other)); vt.appendChild(tr); }
  if (r[col.unparsed]) { const tr = el('tr'); tr.appendChild(el('td', '(no answer: does not vote)', 'l mut')); tr.appendChild(el('td', r[col.unparsed])); vt.appendChild(tr); }
  box.appendChild(vt);
  const ss = D.samples[String(i)] || [];
  box.appendChild(el('h3', 'Samples: ' + ss.length + ' of ' + r[col.n] + ' shown'));
  if (!ss.length) box.appendChild(el('p', 'No texts stored in this page for this problem (' + D.text_note + ').', 'note'));
  ss.forEach(s => {
    const [idx, text, ans, strict, ok, fin, pt, gt, fl, extra] = s;
    const hit = query && [text, ans, strict].some(x => x !== null && String(x).toLowerCase().indexOf(query) >= 0);
    const div = el('div', null, 'sample ' + (ans === null ? 'none' : (ok ? 'right' : 'wrong')) + (hit ? ' hit' : ''));
    const head = el('div');
    head.appendChild(el('b', '#' + idx + ' '));
    head.appendChild(el('span', ok ? 'correct' : 'wrong', ok ? 'ok' : 'bad'));
    head.appendChild(el('span', ' | answer (flexible): ' + (ans === null ? '(none)' : ans) +
      ' | strict: ' + (strict === null ? '(none)' : strict) + ((ok && (strict === null || strict !== ans)) ? ' [right by flexible only]' : '') +
      ' | finish: ' + fin + ' | tokens: ' + pt + ' prompt, ' + gt + ' generated | ' + gf(fl) + ' GFLOPs'));
    if (hit) head.appendChild(el('span', ' | matches the search', 'mut'));
    div.appendChild(head);
    if (extra) div.appendChild(el('div', 'extra: ' + extra, 'note'));
    div.appendChild(el('pre', text));
    box.appendChild(div);
  });
  renderTable();
  if (setHash !== false && location.hash !== hashOf(i)) location.hash = hashOf(i);
  box.scrollIntoView({block: 'start'});
}

$('problems').querySelector('tbody').addEventListener('click', ev => {
  const tr = ev.target.closest('tr'); if (tr && tr.dataset.idx !== undefined) openProblem(Number(tr.dataset.idx));
});
$('problems').querySelector('thead').addEventListener('click', ev => {
  const th = ev.target.closest('th[data-sort]'); if (!th) return;
  if (sortKey === th.dataset.sort) sortDir = -sortDir; else { sortKey = th.dataset.sort; sortDir = 1; }
  showSort(); sortShown(); page = 0; renderTable();
});
['f-group', 'f-level', 'f-status'].forEach(id => $(id).addEventListener('change', applyFilters));
$('f-search').addEventListener('input', applyFilters);
$('prev').addEventListener('click', () => { if (page > 0) { page--; renderTable(); } });
$('next').addEventListener('click', () => { if ((page + 1) * PAGE < shown.length) { page++; renderTable(); } });
window.addEventListener('hashchange', followHash);
applyFilters();
showSort();
followHash();
document.body.dataset.ready = '1';
})();
"""

BROWSER = """
<h2 id="browser-title">Problems</h2>
<p class="note">Statistics cover every sample of every problem. {text_note}. Filters: <i>vote right</i> = every
most-voted answer is correct; <i>vote wrong</i> = a wrong answer won or tied; <i>unparsed</i> = some sample has
no extracted answer; <i>flexible only</i> = some sample was graded right by the flexible extraction while the strict
one found no answer or another; <i>never solved</i> = no sample correct. The search finds text (any case) in the
problem ids, gold answers, questions, voted answers, and the texts and answers of the samples this page holds.
Click a column's title to sort by it (again to reverse), a problem to open it; the address then links to that
problem (<code>report.html#problem=ID</code>).</p>
<div class="controls">
<select id="f-group"></select><select id="f-level"></select>
<select id="f-status"><option value="">all problems</option><option value="right">vote right</option>
<option value="wrong">vote wrong</option><option value="unparsed">some sample unparsed</option>
<option value="flexonly">right by flexible extraction only</option><option value="unsolved">never solved</option></select>
<input id="f-search" type="search" placeholder="search ids, questions, answers, texts" size="34">
<button id="prev">prev</button><button id="next">next</button><span id="count" class="note"></span>
</div>
<table id="problems"><thead><tr>{headers}</tr></thead><tbody></tbody></table>
<div id="detail"></div>
"""
# The problem table's columns: (sort key of the page's script, title, left-aligned).
COLUMNS = [("group", "task / model / sampler", True), ("problem", "problem", True), ("level", "level", False),
           ("correct", "correct", False), ("winner", "vote winner", True), ("vote", "vote", False),
           ("unparsed", "unparsed", False), ("flex_only", "flexible only", False), ("length", "length stops", False),
           ("generated_tokens", "mean gen. tokens", False), ("flops", "GFLOPs", False)]


def _headers() -> str:
    cells = []
    for key, title, left in COLUMNS:
        cls = ' class="l"' if left else ""
        cells.append(f'<th{cls} data-sort="{key}" title="sort by {title}">{title}<span class="arrow"></span></th>')
    return "".join(cells)


def json_for_script(obj) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>`` or ``<!--`` can close it)."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def page(title: str, sections: list[str], data: dict, text_note: str) -> str:
    """The whole document: ``sections`` are trusted HTML fragments built by ``ttc.report.html``."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(sections)
            + BROWSER.format(text_note=html.escape(text_note), headers=_headers())
            + f"\n<script type=\"application/json\" id=\"report-data\">{json_for_script(data)}</script>\n"
            + f"<script>{JS}</script>\n</body></html>\n")

"""How long ``write_report`` takes and how large the page gets as a run grows (synthetic runs written with the
store API: problems x samples records, short texts). Prints a table; numbers depend on the machine's load.

    python benchmarks/bench_report.py --sizes 200x256,2000x256
    python benchmarks/bench_report.py --sizes 5000x64 --open --before /path/to/other/checkout

``--open`` also opens each page in headless Chromium (Debian's chromium and chromium-driver, through Selenium),
``--repeat`` times, the versions alternating, and prints medians: ``load`` (navigation start to the end of the
load event: the HTML parsed, the data read, the first table drawn), the first ``search`` (a text found in sample
texts; the first one builds the page's search index) and a second one, a ``sort`` by a column, and ``open link``
(loading ``report.html#problem=ID``, which opens that problem). ``--before DIR`` writes the same run's page with
another checkout's code too (in a subprocess), so both are measured in one run on one machine.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ttc.store.records import SCHEMA_VERSION, SampleRecord  # noqa: E402
from ttc.store.runstore import RunStore  # noqa: E402


def make_run(out: Path, problems: int, samples: int, seed: int = 0):
    header = {"schema_version": SCHEMA_VERSION, "run_id": "bench", "config_hash": "bench", "seed": seed,
              "config": {"sweep": {"budgets": [1, samples]}}, "models": {}}
    store = RunStore.open(out, "bench", header)
    shard = store.shard("synthetic", "m", "sample")
    rng = random.Random(seed)
    batch = []
    for p in range(problems):
        gold = str(p % 7)
        recs = []
        for i in range(samples):
            a = gold if rng.random() < 0.4 else (None if rng.random() < 0.1 else str(rng.randint(0, 9)))
            recs.append(SampleRecord("synthetic", "m", "sample", f"p{p:06d}", i, samples,
                                     f"sample {i}: " + "work " * rng.randint(5, 60) + str(a), a, a if i % 2 else None,
                                     gold, a == gold, 30, 40, "stop", 1e6, 3e6, True, seed))
        batch.append(recs)
        if len(batch) == 50:
            shard.append_problems(batch)
            batch = []
    if batch:
        shard.append_problems(batch)
    store.compact()
    return store.root


def make_run_columnar(out: Path, problems: int, samples: int, seed: int = 0):
    """The same kind of run written as one Parquet file with numpy and pyarrow (for millions of records)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ttc.store.runstore import ARROW_SCHEMA, RECORDS_DIR, shard_name

    header = {"schema_version": SCHEMA_VERSION, "run_id": "bench", "config_hash": "bench", "seed": seed,
              "config": {"sweep": {"budgets": [1, samples]}}, "models": {}}
    store = RunStore.open(out, "bench", header)
    rng = np.random.default_rng(seed)
    n = problems * samples
    pid = np.repeat(np.arange(problems), samples)
    idx = np.tile(np.arange(samples), problems)
    gold = (pid % 7).astype(str)
    r = rng.random(n)
    ans = np.where(r < 0.4, gold, rng.integers(0, 10, n).astype(str)).astype(object)
    ans[r > 0.95] = None
    words = rng.integers(5, 60, n)
    text = [f"sample {i}: " + "work " * w + str(a) for i, w, a in zip(idx, words, ans)]
    cols = {"task": ["synthetic"] * n, "model": ["m"] * n, "sampler": ["sample"] * n,
            "problem_id": [f"p{p:06d}" for p in pid], "sample_index": idx, "n_samples": np.full(n, samples),
            "text": text, "answer": ans, "answer_strict": np.where(idx % 2 == 1, ans, None), "gold": gold,
            "correct": ans == gold, "prompt_tokens": np.full(n, 30), "generated_tokens": words + 3,
            "finish_reason": ["stop"] * n, "prefill_flops": np.full(n, 1e6), "decode_flops": words * 1e5,
            "prefill_shared": np.ones(n, bool), "seed": np.zeros(n, int), "extra": ["{}"] * n,
            "verifier_flops": np.zeros(n)}
    table = pa.table({f.name: pa.array(cols[f.name], type=f.type) for f in ARROW_SCHEMA}, schema=ARROW_SCHEMA)
    d = store.root / RECORDS_DIR / shard_name("synthetic", "m", "sample")
    d.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, d / "c-0-bench.parquet")
    return store.root


WRITE = "import sys, time; from ttc.report.html import write_report; t = time.perf_counter(); " \
        "write_report(sys.argv[1]); print(time.perf_counter() - t)"


def write_with(checkout: Path, root: Path, label: str) -> tuple[Path, float]:
    """The run's page written by ``checkout``'s code in a fresh process, kept as ``report.<label>.html``."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(checkout)}
    r = subprocess.run([sys.executable, "-c", WRITE, str(root)], cwd=checkout, env=env, capture_output=True,
                       text=True, timeout=3600, check=True)
    page = root / f"report.{label}.html"
    (root / "report.html").replace(page)
    return page, float(r.stdout.strip().splitlines()[-1])


def browser():
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,1800"):
        opts.add_argument(arg)
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


# In the page: time a search typed into the box (the input event's handler runs synchronously), and a sort.
SEARCH = """const box = document.getElementById('f-search'); const t = performance.now(); box.value = arguments[0];
box.dispatchEvent(new Event('input')); box.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'}));
return [performance.now() - t, document.getElementById('count').textContent];"""
SORT = """const th = document.querySelectorAll('#problems thead th')[10]; const t = performance.now(); th.click();
return performance.now() - t;"""
LOAD = "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime;"


def open_times(driver, page: Path, problem: str) -> dict:
    from selenium.webdriver.support.ui import WebDriverWait

    def load(url):
        driver.get("about:blank")
        driver.get(url)
        WebDriverWait(driver, 120).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
        WebDriverWait(driver, 120).until(lambda d: d.execute_script(LOAD) > 0)
        return driver.execute_script(LOAD) / 1e3

    out = {"load": load(page.resolve().as_uri())}
    out["search"], found = driver.execute_script(SEARCH, "work work work 7")
    out["search again"], _ = driver.execute_script(SEARCH, "work work work 3")
    out["search"] /= 1e3
    out["search again"] /= 1e3
    out["found"] = found.split(" of ")[0]
    driver.execute_script(SEARCH, "")
    out["sort"] = driver.execute_script(SORT) / 1e3
    out["open link"] = load(page.resolve().as_uri() + "#problem=" + problem)
    out["opened"] = problem in driver.find_element("id", "detail").text
    return out


def main() -> None:
    import statistics

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="200x256,2000x256")
    ap.add_argument("--open", action="store_true", help="also time opening the page in headless Chromium")
    ap.add_argument("--repeat", type=int, default=5, help="--open: loads of each page (medians are printed)")
    ap.add_argument("--before", default=None, help="another checkout whose page is measured beside this one")
    args = ap.parse_args()
    here = Path(__file__).resolve().parent.parent
    versions = ([("before", Path(args.before).resolve())] if args.before else []) + [("now", here)]
    print(f"{'problems':>9} {'samples':>8} {'records':>10} {'code':>7} {'write_report s':>15} {'page MB':>8}"
          + ("  load s  search s  again s  sort s  open link s  found  link opened" if args.open else ""))
    for size in args.sizes.split(","):
        problems, samples = map(int, size.split("x"))
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            make = make_run_columnar if problems * samples > 1_000_000 else make_run
            root = make(Path(tmp), problems, samples)
            print(f"  (run written in {time.perf_counter() - t:.1f} s)", file=sys.stderr)
            pages = {label: write_with(checkout, root, label) for label, checkout in versions}
            timings: dict = {label: [] for label in pages}
            if args.open:
                driver = browser()
                try:
                    for _ in range(args.repeat):
                        for label, (page, _) in pages.items():
                            timings[label].append(open_times(driver, page, f"p{problems // 2:06d}"))
                finally:
                    driver.quit()
            for label, (page, dt) in pages.items():
                line = (f"{problems:>9} {samples:>8} {problems * samples:>10} {label:>7} {dt:>15.1f} "
                        f"{page.stat().st_size / 1e6:>8.2f}")
                if timings[label]:
                    med = {k: statistics.median(t[k] for t in timings[label])
                           for k in ("load", "search", "search again", "sort", "open link")}
                    last = timings[label][-1]
                    line += (f"  {med['load']:>6.2f}  {med['search']:>8.3f}  {med['search again']:>7.3f}  "
                             f"{med['sort']:>6.3f}  {med['open link']:>11.2f}  {last['found']:>5}  {last['opened']}")
                print(line)


if __name__ == "__main__":
    main()

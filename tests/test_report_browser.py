"""The report page in a real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium):
it loads from disk with no console error, the summary table and the curve render, filtering and opening a
problem work, text search, sorting by a column and the link to one problem (report.html#problem=ID), on a sweep run
through ttc.sweep.runner and on a large synthetic run (200 problems x 256 samples)."""

import json
import shutil

import pytest
from reportruns import small_run, synthetic_run

from ttc.report import browse

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
LARGE = (200, 256)  # problems x samples of the synthetic run
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="Debian's chromium and chromium-driver are not installed "
                                       "(apt-get install -y chromium chromium-driver; `make test` installs them)")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1300,1800", "--allow-file-access-from-files"):
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return small_run(tmp_path_factory.mktemp("sweep")).root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model_dir):
    """A real model (the tiny random-weight Llama) through the transformers backend and ttc.sweep.runner."""
    from ttc.sweep.config import RunConfig, SamplingConfig, SweepConfig
    from ttc.sweep.runner import run_sweep

    cfg = RunConfig(sweep=SweepConfig(tasks=("chain_sum",), models=(tiny_model_dir,), budgets=(1, 2, 4), limit=3),
                    sampling=SamplingConfig(max_tokens=24), out=str(tmp_path_factory.mktemp("tiny")))
    return run_sweep(cfg, progress=False).root


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    return synthetic_run(tmp_path_factory.mktemp("large"), problems=LARGE[0], samples=LARGE[1]).root


def open_page(browser, run_dir):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get((run_dir / "report.html").resolve().as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    return browser


def console_errors(browser):
    return [e for e in browser.get_log("browser") if e.get("level") in ("SEVERE", "ERROR")]


def stats_of(run_dir):
    light = browse.load_columns(run_dir, browse.LIGHT_COLUMNS)
    return browse.problem_stats(light, browse.read_levels(run_dir, light))


def visible_ids(browser):
    from selenium.webdriver.common.by import By

    return [tr.find_elements(By.TAG_NAME, "td")[1].text for tr in browser.find_elements(By.CSS_SELECTOR, "#problems tbody tr")]


def choose(browser, select_id, value):
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", select_id)).select_by_value(value)


def check_page(browser, run_dir):
    from selenium.webdriver.common.by import By

    open_page(browser, run_dir)
    stats = stats_of(run_dir)
    assert console_errors(browser) == []
    # the summary table and the curve
    assert len(browser.find_elements(By.CSS_SELECTOR, "#summary table tbody tr")) > 0
    assert browser.execute_script("const i = document.getElementById('curve'); "
                                  "return i.complete && i.naturalWidth > 0 && i.naturalHeight > 0")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#routes table tbody tr")) == 1
    # every problem listed (100 a page)
    assert len(visible_ids(browser)) == min(100, len(stats))
    assert browser.find_element("id", "count").text.startswith(f"{len(stats)} of {len(stats)} problems")
    # filters: vote wrong, right by the flexible extraction only, a level
    for value, want in (("wrong", stats["vote"] < 1), ("flexonly", stats["flex_only"] > 0),
                        ("unparsed", stats["unparsed"] > 0), ("right", stats["vote"] == 1)):
        choose(browser, "f-status", value)
        expect = sorted(stats[want]["problem_id"])
        assert browser.find_element("id", "count").text.startswith(f"{len(expect)} of {len(stats)}")
        assert visible_ids(browser) == sorted(expect)[:100] or sorted(visible_ids(browser)) == expect[:100]
    choose(browser, "f-status", "")
    level = int(stats["level"].mode().iloc[0])
    choose(browser, "f-level", str(level))
    expect = sorted(stats[stats["level"] == level]["problem_id"])
    assert sorted(visible_ids(browser)) == expect[:100]
    choose(browser, "f-level", "")
    # open a problem: gold, vote, the bounded samples
    row = browser.find_elements(By.CSS_SELECTOR, "#problems tbody tr")[2]
    pid = row.find_elements(By.TAG_NAME, "td")[1].text
    row.click()
    detail = browser.find_element("id", "detail")
    assert pid in detail.find_element(By.TAG_NAME, "h2").text
    r = stats.set_index("problem_id").loc[pid]
    assert str(r["gold"]) in detail.text
    n_shown = len(detail.find_elements(By.CSS_SELECTOR, ".sample"))
    assert n_shown == min(8, int(r["n"]))
    assert f"Samples: {n_shown} of {int(r['n'])} shown" in detail.text
    assert console_errors(browser) == []
    return stats


def test_sweep_report_in_chromium(browser, sweep):
    from selenium.webdriver.common.by import By

    check_page(browser, sweep)
    # a model text with markup in it is shown as text, never parsed into the page
    texts = browse.sample_texts(sweep, 8)
    pid = texts[texts["text"].str.contains("</script>", regex=False)]["problem_id"].iloc[0]
    search = browser.find_element("id", "f-search")
    search.clear()
    search.send_keys(pid)
    browser.find_element(By.CSS_SELECTOR, "#problems tbody tr").click()
    pres = [p.get_attribute("textContent") for p in browser.find_elements(By.CSS_SELECTOR, "#detail pre")]
    assert any("I cannot say <b>x</b></script><!--" in t for t in pres)
    assert browser.execute_script("return document.querySelectorAll('#detail pre *').length") == 0
    assert console_errors(browser) == []


def test_tiny_model_report_in_chromium(browser, tiny):
    stats = check_page(browser, tiny)
    assert len(stats) == 3 and set(stats["n"]) == {4}


def test_large_synthetic_report_in_chromium(browser, large):
    stats = check_page(browser, large)
    assert len(stats) == LARGE[0] and int(stats["n"].iloc[0]) == LARGE[1]
    browser.find_element("id", "next").click()
    assert browser.find_element("id", "count").text.endswith(f"showing 101-{min(200, LARGE[0])}")
    size = (large / "report.html").stat().st_size
    assert size < 5_000_000, f"the page of 51,200 records is {size} bytes"


def search(browser, text):
    """Type into the search box as a person does (select all, delete, type): every key fires the input event."""
    from selenium.webdriver.common.keys import Keys

    box = browser.find_element("id", "f-search")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE)
    if text:
        box.send_keys(text)
    return browser.find_element("id", "count").text


def test_search_finds_questions_answers_and_sample_texts(browser, sweep):
    from selenium.webdriver.common.by import By

    open_page(browser, sweep)
    stats = stats_of(sweep)
    texts = browse.sample_texts(sweep, 8)
    # a sample text (any case): the problems whose shown samples say it (here nearly all; the large run below
    # has texts that single out one problem)
    want = sorted(set(texts[texts["text"].str.lower().str.contains("cannot say", regex=False)]["problem_id"]))
    assert want
    assert search(browser, "CANNOT say").startswith(f"{len(want)} of {len(stats)} problems match")
    assert sorted(visible_ids(browser)) == want
    # opening a match marks the samples that hold the text
    browser.find_element(By.CSS_SELECTOR, "#problems tbody tr").click()
    hits = browser.find_elements(By.CSS_SELECTOR, "#detail .sample.hit")
    assert hits and all("cannot say" in h.text.lower() for h in hits)
    # a question: chain_sum's questions are rebuilt from the task, one problem's own expression
    header = json.loads((sweep / "header.json").read_text())
    questions, _ = browse.question_texts(header, ["chain_sum"])
    pid = sorted(stats["problem_id"])[3]
    question = questions[("chain_sum", pid)]
    expression = question.strip().splitlines()[-1][-24:]
    assert sum(expression in q for q in questions.values()) == 1
    assert search(browser, expression).startswith(f"1 of {len(stats)}")
    assert visible_ids(browser) == [pid]
    # an answer: the gold answer of a problem (also voted or in its texts), then nothing
    gold = str(stats.set_index("problem_id").loc[pid, "gold"])
    search(browser, gold)
    assert pid in visible_ids(browser)
    assert search(browser, "no sample says this").startswith(f"0 of {len(stats)}")
    assert search(browser, "").startswith(f"{len(stats)} of {len(stats)}")
    assert console_errors(browser) == []


def column_values(browser, index):
    from selenium.webdriver.common.by import By

    return [tr.find_elements(By.TAG_NAME, "td")[index].text
            for tr in browser.find_elements(By.CSS_SELECTOR, "#problems tbody tr")]


def test_columns_sort_both_ways_and_keep_their_order_through_filters(browser, large):
    from selenium.webdriver.common.by import By

    open_page(browser, large)
    stats = stats_of(large)
    headers = browser.find_elements(By.CSS_SELECTOR, "#problems thead th")
    flops = headers[10]
    flops.click()
    assert flops.get_attribute("aria-sort") == "ascending" and flops.text.endswith("\u25b2")
    by_flops = stats.sort_values("flops", kind="stable")
    assert visible_ids(browser) == by_flops["problem_id"].tolist()[:100]
    flops.click()
    assert flops.get_attribute("aria-sort") == "descending"
    assert visible_ids(browser)[0] == stats.loc[stats["flops"].idxmax(), "problem_id"]
    values = [float(v) for v in column_values(browser, 10)]
    assert values == sorted(values, reverse=True)
    # the order holds through a filter and across pages
    choose(browser, "f-status", "wrong")
    wrong = stats[stats["vote"] < 1].sort_values("flops", ascending=False, kind="stable")
    assert visible_ids(browser) == wrong["problem_id"].tolist()[:100]
    choose(browser, "f-status", "")
    browser.find_element("id", "next").click()
    values2 = [float(v) for v in column_values(browser, 10)]
    assert values2 == sorted(values2, reverse=True) and values2[0] <= values[-1]
    # correct (a share of samples, most first after two clicks), then the problem ids in natural order
    headers[3].click()
    headers[3].click()
    share = (stats["correct"] / stats["n"]).max()
    top = visible_ids(browser)[0]
    row = stats.set_index("problem_id").loc[top]
    assert row["correct"] / row["n"] == share
    assert flops.get_attribute("aria-sort") == "none" and flops.text == "GFLOPs"
    headers[1].click()
    assert visible_ids(browser) == sorted(stats["problem_id"])[:100]
    assert console_errors(browser) == []


def odd_run(out):
    """Three problems whose ids need escaping in a URL."""
    from ttc.store.records import SCHEMA_VERSION, SampleRecord
    from ttc.store.runstore import RunStore
    from ttc.sweep.config import RunConfig, SweepConfig
    from ttc.sweep.runner import finish

    ids = ["a&b #1", "50% é/x", "plain-3"]
    cfg = RunConfig(sweep=SweepConfig(tasks=("custom:number",), models=("m",), budgets=(1, 2), limit=3), out=str(out))
    store = RunStore.open(out, "odd", {"schema_version": SCHEMA_VERSION, "run_id": "odd", "config_hash": "odd",
                                       "config": cfg.to_dict(), "seed": 0, "models": {}})
    for pid in ids:
        store.shard("custom:number", "m", "sample").append_problem([SampleRecord(
            task="custom:number", model="m", sampler="sample", problem_id=pid, sample_index=i, n_samples=2,
            text=f"text {i} of {pid}", answer="1", answer_strict="1", gold="1", correct=True, prompt_tokens=3,
            generated_tokens=2, finish_reason="stop", prefill_flops=1.0, decode_flops=1.0, prefill_shared=True,
            seed=0) for i in range(2)])
    finish(store, cfg)
    return store.root, ids


def test_a_link_opens_one_problem_and_opening_one_sets_the_link(browser, tmp_path):
    from urllib.parse import quote

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    run, ids = odd_run(tmp_path / "odd")
    url = (run / "report.html").resolve().as_uri()

    def opened():
        return browser.find_element(By.CSS_SELECTOR, "#detail h2").text

    browser.get(url + "#problem=" + quote(ids[0], safe=""))
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    assert opened().startswith(f"Problem {ids[0]} (")
    link = browser.find_element("id", "problem-link").get_attribute("href")
    assert link.endswith("#problem=" + quote(ids[0], safe=""))
    # opening another problem puts its link in the address
    row = next(tr for tr in browser.find_elements(By.CSS_SELECTOR, "#problems tbody tr")
               if tr.find_elements(By.TAG_NAME, "td")[1].text == ids[1])
    row.click()
    assert opened().startswith(f"Problem {ids[1]} (")
    assert browser.execute_script("return location.hash") == "#problem=" + quote(ids[1], safe="")
    # back: the address changes, the page follows it
    browser.back()
    WebDriverWait(browser, 10).until(lambda d: opened().startswith(f"Problem {ids[0]} ("))
    # a link to a problem the page does not hold says so
    browser.get(url + "#problem=nope")
    browser.refresh()
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    assert "No problem nope in this run" in browser.find_element("id", "detail").text
    assert console_errors(browser) == []


def test_the_large_run_opens_from_a_link(browser, large):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    stats = stats_of(large)
    pid = sorted(stats["problem_id"])[150]  # on the second page of the table
    browser.get((large / "report.html").resolve().as_uri() + "#problem=" + pid)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    assert browser.find_element(By.CSS_SELECTOR, "#detail h2").text.startswith(f"Problem {pid} (")
    assert pid in visible_ids(browser)  # the table shows the page that holds it, the row selected
    assert browser.find_element(By.CSS_SELECTOR, "#problems tbody tr.sel").find_elements(By.TAG_NAME, "td")[1].text == pid
    # a text of one sample of one problem: that problem alone, the sample marked when it is opened
    assert search(browser, "sample 3 of problem 7:").startswith(f"1 of {len(stats)}")
    assert visible_ids(browser) == ["p0007"]
    browser.find_element(By.CSS_SELECTOR, "#problems tbody tr").click()
    hits = browser.find_elements(By.CSS_SELECTOR, "#detail .sample.hit")
    assert len(hits) == 1 and hits[0].text.startswith("#3 ")
    assert browser.execute_script("return location.hash") == "#problem=p0007"
    assert console_errors(browser) == []

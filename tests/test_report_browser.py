"""The report page in a real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium):
it loads from disk with no console error, the summary table and the curve render, filtering and opening a
problem work, on a sweep run through ttc.sweep.runner and on a large synthetic run (200 problems x 256 samples)."""

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

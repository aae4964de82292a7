"""report.html rendered in headless Chromium: charts and tables are shown, nothing runs, nothing is fetched.

Skips cleanly when chromium/chromedriver are not installed (`make browser-deps` installs them)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import report_fixtures as F

from pipeline import config
from pipeline.report import stage as report_stage

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = config.PROJECT_ROOT / "tests" / "artifacts"


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium / chromedriver not installed")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="wsis-chrome-")
    opts = webdriver.ChromeOptions()
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        opts.add_argument(arg)
    opts.binary_location = str(CHROMIUM)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    try:
        drv = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    except Exception as exc:  # a broken browser install must not fail the suite
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"chromium did not start: {exc}")
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(driver: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    batch = F.build_batch(tmp_path_factory.mktemp("browser") / "browser-batch")
    report_stage.run(batch, {"seed": 1, "report": {"top_quotes": 5}})
    driver.get_log("performance")  # drop start-up events
    driver.get((batch / "report" / "report.html").resolve().as_uri())
    return driver


def _visible(driver: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return [e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]


def test_charts_are_shown(page: Any) -> None:
    assert page.title.startswith("WSIS themes report")
    assert len(_visible(page, "svg.chart-bars")) == 3  # one per question
    assert len(_visible(page, "svg.chart-bars rect.bar")) == 6  # themes incl. other, per question
    heatmaps = _visible(page, "svg.chart-heatmap")
    assert len(heatmaps) == 2
    assert len(_visible(page, "svg.chart-heatmap rect.cell.linked")) >= 1
    assert len(_visible(page, "svg.chart-map circle.point")) == F.N_ANSWERED
    assert len(_visible(page, "svg.chart-map g.legend rect.legend-key")) >= 2
    box = _visible(page, "svg.chart-map")[0].size
    assert box["width"] > 500 and box["height"] > 300


def test_tables_and_headings_are_shown(page: Any) -> None:
    from selenium.webdriver.common.by import By

    headers = {e.text for e in page.find_elements(By.CSS_SELECTOR, "#table-data_quality th")}
    assert {"Section", "Measure", "Value"} <= headers
    assert "How to read this report" in page.find_element(By.ID, "how").text
    quotes = page.find_element(By.ID, "quotes").text
    assert "<script>alert(1)</script>" in quotes  # shown as text, not run
    assert F.EMAIL not in page.page_source


def test_nothing_runs_and_nothing_is_fetched(page: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        page.switch_to.alert.text  # noqa: B018
    assert page.execute_script("return document.scripts.length") == 0
    errors = [e for e in page.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == []
    requests = []
    for entry in page.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            requests.append(msg["params"]["request"]["url"])
    assert requests and all(u.startswith(("file://", "data:")) for u in requests), requests


def test_screenshot_artefact(page: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = int(page.execute_script("return document.body.scrollHeight"))
    page.set_window_size(1400, min(max(height, 1000), 12000))
    target = ARTIFACTS / "report_html.png"
    assert page.save_screenshot(str(target))
    assert target.stat().st_size > 20_000

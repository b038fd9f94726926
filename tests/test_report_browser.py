"""The HTML report renders in a real browser: headless Chromium, the system's binary driven directly.

Browser downloads by test tools are blocked here, so Selenium is pointed at Debian's ``chromium``
and ``chromium-driver`` (.ci/run installs them). Under CI=1 a missing browser fails the test; on a
bare laptop it skips with the reason.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import unavailable
from test_plots_report import GENRES, SECTIONS, seed_model
from waits import HANG_S

from music_classifier.models.report import build_report

CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")

# Without the background-networking flags Chromium tries to reach Google's services at start-up,
# and those connections are refused here (and irrelevant to a file:// page).
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1200,900",
                  # No network at all: every host name resolves to nothing (pages must work from file://).
                  "--host-resolver-rules=MAP * ~NOTFOUND"]

IMAGES_DECODED_JS = """
const imgs = Array.from(document.images);
return {count: imgs.length,
        broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt || i.src.slice(0, 40))};
"""


@pytest.fixture
def browser(tmp_path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        unavailable("selenium", str(exc))
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            unavailable("headless Chromium", f"{path} not found (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tmp_path / "chromium-profile"
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages, for the tests to read
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as exc:  # noqa: BLE001 - whatever the driver raises when the browser cannot start
        unavailable("headless Chromium", str(exc).strip().splitlines()[0])
    driver.set_page_load_timeout(HANG_S)
    # And the network emulated offline, so even an address literal cannot be fetched.
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
                                                                "downloadThroughput": -1, "uploadThroughput": -1})
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_report_renders_in_headless_chromium(sqlite_engine, tmp_path, browser):
    from selenium.webdriver.common.by import By

    with sqlite_engine.begin() as conn:
        model_id = seed_model(conn)
    with sqlite_engine.connect() as conn:
        index = build_report(conn, model_id, out_dir=tmp_path / "report", settings=None)

    browser.get(index.resolve().as_uri())
    assert browser.title.startswith(f"Model {model_id} (rf)")

    images = browser.execute_script(IMAGES_DECODED_JS)
    assert images["count"] == 3  # genre counts, confusion, importances
    assert images["broken"] == []

    rows = browser.find_elements(By.CSS_SELECTOR, "table#per-genre tbody tr.genre-row")
    assert len(rows) == len(GENRES)
    assert sorted(r.find_element(By.TAG_NAME, "td").text for r in rows) == sorted(GENRES)

    for section in SECTIONS:
        assert browser.find_element(By.ID, section).is_displayed()
    # The title that is markup elsewhere is plain text here, and no script ran.
    assert "<script>alert(1)</script>" in browser.find_element(By.ID, "misclassified-tracks").text
    # Only inline scripts (plotly.js and the map), and the map drew one point per member track.
    assert browser.execute_script("return Array.from(document.scripts).filter(s => s.src).length") == 0
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert len(browser.find_elements(By.CSS_SELECTOR, "#track-map g.trace.scatter path.point")) == 32
    assert browser.find_elements(By.CSS_SELECTOR, "table#label-issues tr.issue-row")
    assert [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []

    # Full-page screenshot for a person to look at (kept in tmp).
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1200, min(int(height) + 100, 12000))
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("REPORT_SCREENSHOT"):
        shutil.copy(shot, os.environ["REPORT_SCREENSHOT"])

"""The interactive track map in headless Chromium, opened from file:// with the network blocked:
hovering a point shows its track's title, a legend click hides a genre, the search box finds a
title, and the console stays free of errors."""

from __future__ import annotations

import html
import time

import pytest
from sqlalchemy import update
from test_audit import FLIPS, GENRES, PER_GENRE, seed_class
from test_report_browser import browser  # noqa: F401 - the fixture
from waits import HANG_S

from music_classifier.db.tables import tracks
from music_classifier.models.track_map import dataset_map_data, write_map_html

SCRIPT_TITLE = "<script>alert(1)</script>"
POINTS = "#track-map g.trace.scatter path.point"


def _wait(condition, timeout: float = HANG_S):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return condition()


def _severe(browser) -> list[str]:  # noqa: F811
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture
def map_file(sqlite_engine, tmp_path):
    with sqlite_engine.begin() as conn:
        flat = seed_class(conn, flips=FLIPS)["flat"]
        conn.execute(update(tracks).where(tracks.c.id == flat[PER_GENRE]).values(title=SCRIPT_TITLE))
    with sqlite_engine.connect() as conn:
        data = dataset_map_data(conn, "class", seed=0)
    return write_map_html(data, tmp_path / "map.html", title="Tracks of dataset class"), data


def test_map_hover_legend_and_search_offline(map_file, browser):  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    path, data = map_file
    browser.get(path.resolve().as_uri())
    points = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, POINTS))
    assert len(points) == len(data.track_ids) == len(GENRES) * PER_GENRE
    # Nothing but the file itself was loaded: every script is inline.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert browser.execute_script("return Array.from(document.scripts).filter(s => s.src).length") == 0

    # Hover each point of the first trace until the tooltip names its title (points can overlap).
    gd_titles = browser.execute_script("return document.getElementById('track-map').data[0].customdata"
                                       ".map(c => c[1])")
    first_trace = browser.find_elements(By.CSS_SELECTOR, "#track-map g.trace.scatter")[0]
    shown, hovered = None, None
    for k, point in enumerate(first_trace.find_elements(By.CSS_SELECTOR, "path.point")):
        ActionChains(browser).move_to_element(point).perform()
        tip = _wait(lambda: " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR,
                                                                             "#track-map .hoverlayer .hovertext")), 3)
        if tip:
            shown, hovered = tip, gd_titles[k]
            break
    assert shown, "no tooltip appeared"
    assert html.unescape(hovered) in shown  # the title of the very point under the mouse
    assert "sheet genre:" in shown and "heard:" in shown and "student:" in shown

    # The <script> title is shown as text in its tooltip data and never ran (an alert would block here).
    assert browser.execute_script("return typeof window.__xss") == "undefined"

    # A legend click hides that genre's points.
    entries = browser.find_elements(By.CSS_SELECTOR, "#track-map g.legend g.traces")
    assert len(entries) == len(GENRES)
    rock = next(e for e in entries if e.text.startswith("Rock"))
    n_rock = browser.execute_script("return document.getElementById('track-map').data"
                                    ".find(t => t.name.startsWith('Rock')).customdata.length")
    rock.click()
    assert _wait(lambda: browser.execute_script(
        "return document.getElementById('track-map').data.find(t => t.name.startsWith('Rock')).visible")
    ) == "legendonly"
    assert _wait(lambda: len(browser.find_elements(By.CSS_SELECTOR, POINTS)) == len(points) - n_rock)

    # The search box marks the matching titles.
    box = browser.find_element(By.ID, "track-map-search")
    box.send_keys("pop song 3")
    assert _wait(lambda: browser.find_element(By.ID, "track-map-found").text) == "1 track(s) match"
    sizes = browser.execute_script("return document.getElementById('track-map').data"
                                   ".map(t => t.marker.size).flat()")
    assert sorted(sizes)[-1] == 18 and sizes.count(18) == 1

    assert _severe(browser) == []


def test_map_html_escapes_titles_and_states_its_size(map_file):
    path, data = map_file
    page = path.read_text(encoding="utf-8")
    assert SCRIPT_TITLE not in page  # JSON-escaped inside the figure's data
    assert "cdn" not in page.lower().split("plotly.min.js")[0][-200:]
    assert 4_000_000 < path.stat().st_size < 6_000_000  # plotly.js inlined (~4.7 MB) + 48 tracks


def test_plot_map_command_and_its_errors(sqlite_engine, tmp_path):
    from typer.testing import CliRunner

    from music_classifier.cli import app

    with sqlite_engine.begin() as conn:
        seed_class(conn)
    db = ["--db", str(sqlite_engine.url)]
    out = tmp_path / "maps" / "class.html"
    res = CliRunner().invoke(app, [*db, "plot", "map", "class", "--out", str(out)])
    assert res.exit_code == 0, res.output
    page = out.read_text(encoding="utf-8")
    assert all(f'"name":"{g} ({PER_GENRE})"' in page for g in GENRES) and "Pop song 3" in page
    for args, message in [(["plot", "map", "class", "--out", str(tmp_path / "m.png")], "must end in .html"),
                          (["plot", "map", "nosuch", "--out", str(tmp_path / "m.html")], "dataset 'nosuch' not found")]:
        res = CliRunner().invoke(app, [*db, *args])
        assert res.exit_code == 1 and message in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "m.html").exists() and not (tmp_path / "m.png").exists()

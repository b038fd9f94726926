"""The model page's interactive map through Starlette's TestClient, on both databases: the figure JSON
(one point per member track, the track id in customdata, user text escaped, the stored audit's predictions),
computed once per model and audit, plotly.js and its CSS served from the installed ``plotly`` package
under the unchanged Content-Security-Policy. Computed once per dataset, audit and members: a retrained model
shares its predecessor's map, a new audit makes a new one."""

from __future__ import annotations

import html
import os
import threading
import warnings
from pathlib import Path

from serve_helpers import EVIL_TITLE, GENRES, build_class
from sqlalchemy import update

from music_classifier.db.tables import tracks
from music_classifier.models.report import member_track_ids, model_row
from music_classifier.models.train import TrainOptions, train_model
from music_classifier.web.app import ServeConfig, create_app
from music_classifier.web.model_map import MapCache
from music_classifier.web.plotly_assets import injected_style_ids, plotly_css, plotly_js_path, plotly_js_version
from music_classifier.web.security import CSP

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2; httpx works the same for these tests
    from starlette.testclient import TestClient

LOCAL = "http://127.0.0.1:8765"


def _client(engine, models_dir) -> TestClient:
    config = ServeConfig(database_url=engine.url.render_as_string(hide_password=False), models_path=models_dir)
    return TestClient(create_app(config, engine=engine), base_url=LOCAL, follow_redirects=False)


def _points(figure: dict) -> dict[int, list]:
    return {int(c[6]): c for trace in figure["data"] for c in trace["customdata"]}


def test_the_model_page_loads_a_playable_map(engine, tmp_path, models_dir):
    served = build_class(engine, tmp_path)
    marked = served.ids["Pop"][0]  # a member whose title is markup
    with engine.begin() as conn:
        conn.execute(update(tracks).where(tracks.c.id == marked).values(title=EVIL_TITLE))
        members = member_track_ids(model_row(conn, served.model_id))
    client = _client(engine, models_dir)
    maps = client.app.app.state.maps
    version = plotly_js_version(plotly_js_path().read_bytes()[:512])

    page = client.get(f"/models/{served.model_id}").text
    assert f'<script src="/vendor/plotly-{version}.min.js" defer></script>' in page
    assert '<script src="/static/map.js" defer></script>' in page
    assert (f'<link rel="stylesheet" id="plotly.js-style-global" class="no-inline-styles" '
            f'href="/vendor/plotly-{version}.css">') in page
    assert f'data-src="/models/{served.model_id}/map.json"' in page and '<audio id="map-audio"' in page
    assert page.count("<script") == page.count('<script src="/') == 4  # no inline script
    for style_id in injected_style_ids(plotly_js_path().read_text(encoding="utf-8")):  # maplibre's own <style>
        assert f'<template id="{style_id}"></template>' in page
    assert "style=" not in page and "<style" not in page
    assert maps.computed == 0  # the page itself computes nothing: its script asks for the map

    answer = client.get(f"/models/{served.model_id}/map.json")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.headers["content-security-policy"] == CSP
    body = answer.json()
    points = _points(body["figure"])
    assert set(points) == members and body["n_tracks"] == len(members) == len(GENRES) * 8
    assert {t["name"].rsplit(" (", 1)[0] for t in body["figure"]["data"]} == set(GENRES)
    # customdata: artist, title, student, sheet genre, heard genre, its probability, track id
    first = points[served.first]
    assert first[:2] == ["artist Rock 0", "Rock song 0"] and first[3] == "Rock" and first[4] in GENRES
    assert points[served.flipped[0]][3] == "Pop"  # the sheet's (wrong) genre colours the point
    assert points[marked][1] == html.escape(EVIL_TITLE, quote=False) and EVIL_TITLE not in answer.text
    assert "<b>" not in answer.text  # Plotly would draw it as a style attribute, which the CSP refuses
    assert any("stored audit" in n for n in body["notes"])  # the hover shows the stored audit's predictions
    assert body["config"]["displaylogo"] is False

    # Computed once: later requests, a 304 for the browser's copy, the same bytes gzipped.
    again = client.get(f"/models/{served.model_id}/map.json", headers={"accept-encoding": "gzip"})
    assert again.content == answer.content and again.headers["content-encoding"] == "gzip"
    assert client.get(f"/models/{served.model_id}/map.json",
                      headers={"if-none-match": answer.headers["etag"]}).status_code == 304
    assert maps.computed == 1

    # A model retrained on the same tracks (Retrain: `train --final`) shares the map.
    with engine.begin() as conn:
        final = train_model(conn, "class", TrainOptions(kind="rf", grid=served.grid, cv=3, repeats=1, final=True),
                            models_path=Path(os.environ["MUSIC_CLASSIFIER_MODELS_DIR"])).model_id
    assert client.get(f"/models/{final}/map.json").content == answer.content and maps.computed == 1

    # A new audit of the dataset gives a new map (its predictions are what the hover shows).
    from music_classifier.models.audit import run_audit

    with engine.begin() as conn:
        run_audit(conn, "class", kind="knn", n_splits=3, n_repeats=1, seed=1)
    assert client.get(f"/models/{served.model_id}/map.json").status_code == 200 and maps.computed == 2

    missing = client.get("/models/999999/map.json")
    assert missing.status_code == 404 and "model 999999 not found" in missing.json()["error"]


def test_a_dropped_dataset_leaves_a_one_line_note(engine, tmp_path, models_dir):
    from music_classifier.models.datasets import drop_dataset

    served = build_class(engine, tmp_path, audit=False)
    with engine.begin() as conn:
        drop_dataset(conn, "class")
    answer = _client(engine, models_dir).get(f"/models/{served.model_id}/map.json")
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error.startswith("No map: ") and "class" in error and "\n" not in error


def test_concurrent_first_requests_share_one_computation(sqlite_engine, tmp_path, models_dir):
    served = build_class(sqlite_engine, tmp_path)
    cache = MapCache(sqlite_engine)
    start = threading.Barrier(3)
    answers = []

    def ask() -> None:
        start.wait()
        answers.append(cache.get(served.model_id))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 3 and all(a is answers[0] for a in answers) and cache.computed == 1


def test_plotly_js_and_its_css_come_from_the_installed_package(sqlite_engine, models_dir):
    client = _client(sqlite_engine, models_dir)
    path = plotly_js_path()
    version = plotly_js_version(path.read_bytes()[:512])
    script = client.get(f"/vendor/plotly-{version}.min.js")
    assert script.status_code == 200 and script.content == path.read_bytes()
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["content-security-policy"] == CSP and "immutable" in script.headers["cache-control"]
    raw = client.get(f"/vendor/plotly-{version}.min.js", headers={"accept-encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert client.get(f"/vendor/plotly-{version}.min.js",
                      headers={"if-none-match": script.headers["etag"]}).status_code == 304

    css = client.get(f"/vendor/plotly-{version}.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ".js-plotly-plot .plotly .modebar{position:absolute;top:2px;right:2px;}" in css.text
    assert ".plotly-notifier p{margin:0;}" in css.text and "<" not in css.text

    # With a token, plotly.js and the map are as closed as every other answer.
    guarded = TestClient(create_app(ServeConfig(database_url=sqlite_engine.url.render_as_string(hide_password=False),
                                                models_path=models_dir, token="a-test-token-of-enough-length"),
                                    engine=sqlite_engine), base_url="http://192.0.2.10:8765")
    for path in (f"/vendor/plotly-{version}.min.js", f"/vendor/plotly-{version}.css", "/models/1/map.json"):
        assert guarded.get(path).status_code == 401, path

    for name in ("plotly-0.0.1.min.js", "plotly.min.js", "widgetbundle.js", "..%2F..%2Fplotly.min.js"):
        assert client.get(f"/vendor/{name}").status_code == 404, name
    assert "script-src 'self';" in CSP and "style-src 'self';" in CSP and "unsafe" not in CSP


def test_plotly_css_reads_the_rule_table():
    table = ('var a=1;var r={"X,X div":\'direction:ltr;font-family:"Open Sans";\',"X .modebar":"top:2px;",'
             'Y:"position:fixed;","Y p":"margin:0;"};for(var k in r)')
    assert plotly_css(table) == (".js-plotly-plot .plotly,.js-plotly-plot .plotly div"
                                 '{direction:ltr;font-family:"Open Sans";}\n'
                                 ".js-plotly-plot .plotly .modebar{top:2px;}\n"
                                 ".plotly-notifier{position:fixed;}\n.plotly-notifier p{margin:0;}\n")
    assert plotly_css("no table here") is None
    assert plotly_css('x={"X,X div":"a:b;}</style>"}') is None  # not plain rules: refused, not passed on
    assert plotly_js_version(b"/**\n* plotly.js v4.1.1\n*/") == "4.1.1"
    bundle = ('(function(){if(!document.getElementById("9f2a")){var e=document.createElement("style");'
              'e.id="9f2a",e.textContent=".m{}"}})();x=document.getElementById("other")')
    assert injected_style_ids(bundle) == ["9f2a"]


def test_the_benchmark_command_runs():
    """BENCHMARKS.md's command for the model page's first view, on a small class (the figures are measured there,
    never here)."""
    import subprocess
    import sys

    from waits import HANG_S

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_serve_map.py"
    out = subprocess.run([sys.executable, str(script), "--tracks", "100", "--requests", "2"], capture_output=True,
                         text=True, timeout=HANG_S, check=True).stdout
    assert "| **total, 8 requests** |" in out and "/map.json` |" in out and "(gzip)" in out
    assert "(map answered 304)" in out and "with one (t-SNE only)" in out

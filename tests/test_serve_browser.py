"""`serve` in a real browser: Playwright for Python driving the system's Chromium (never a downloaded
one) against the page served by uvicorn on 127.0.0.1. A track plays (its audio element's currentTime
advances and the audio arrived by a Range request answered 206), the audit queue's keys play the
suspects and settle them, `sheet push` then sends those decisions to the fake Google Sheets API, the
Retrain button runs a job whose progress htmx polls, and the Content-Security-Policy
reports no violation (all script is in static files). Screenshots go to tmp_path, and to docs/img
when MUSIC_CLASSIFIER_SCREENSHOTS=1 (the README's pictures)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path

import pytest
from conftest import unavailable
from serve_helpers import build_class

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
WAIT_MS = 120_000  # a ceiling that only catches hangs: every wait below ends on an event


@pytest.fixture
def server(sqlite_engine, tmp_path, models_dir):
    """The page over a small generated class, served by uvicorn in a thread on a free port."""
    import uvicorn

    from music_classifier.web.app import ServeConfig, create_app

    served = build_class(sqlite_engine, tmp_path)
    config = ServeConfig(database_url=sqlite_engine.url.render_as_string(hide_password=False),
                         models_path=models_dir, retrain_options={"grid": served.grid, "cv": 3, "repeats": 1})
    app = create_app(config, engine=sqlite_engine)
    # The socket listens before the server thread starts: the browser's first request waits in its
    # backlog until uvicorn accepts it, so nothing has to wait for "started".
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", served
    uv.should_exit = True
    thread.join(timeout=30)
    sock.close()


@pytest.fixture
def page(tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable("playwright", str(exc))
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        unavailable("Chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001 - whatever playwright raises when the browser cannot start
            unavailable("Chromium", str(exc).strip().splitlines()[0])
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        pg = context.new_page()
        pg.set_default_timeout(WAIT_MS)
        pg.console_errors = []
        pg.on("console", lambda m: pg.console_errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
        yield pg
        context.close()
        browser.close()


def _screenshot(page, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("MUSIC_CLASSIFIER_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMG / name)


def test_a_track_plays_with_range_requests(server, page, tmp_path):
    base, served = server
    audio_answers = []
    page.on("response", lambda r: audio_answers.append(r) if "/audio/" in r.url else None)
    page.goto(f"{base}/tracks/{served.tagged}")
    page.wait_for_function("() => document.getElementById('track-audio').readyState >= 1")  # metadata loaded
    page.keyboard.press("Space")  # the page's own shortcut: play
    page.wait_for_function("() => document.getElementById('track-audio').currentTime > 0.5")
    assert not page.evaluate("document.getElementById('track-audio').paused")
    assert any(r.status == 206 and r.url.endswith(f"/audio/{served.tagged}") for r in audio_answers), \
        [(r.url, r.status) for r in audio_answers]
    assert page.locator("h2:has-text('Similar tracks') + table button.play").count() == 5
    assert page.locator("strong.predicted").inner_text() in ("Rock", "Jazz", "Pop")
    _screenshot(page, tmp_path, "serve-track.png")
    page.keyboard.press("Space")
    page.wait_for_function("() => document.getElementById('track-audio').paused")

    # A similar track's play button plays it in the shared player.
    page.locator("h2:has-text('Similar tracks') + table button.play").first.click()
    page.wait_for_function("() => document.getElementById('player').currentTime > 0.3")
    assert not page.console_errors, page.console_errors  # no CSP violation, no script error


def test_audit_queue_keys_play_the_suspects_in_order(server, page, tmp_path):
    base, served = server
    page.goto(f"{base}/audit")
    rows = page.locator("#queue tr.suspect")
    assert rows.count() >= 2
    first, second = rows.nth(0).get_attribute("data-track"), rows.nth(1).get_attribute("data-track")
    assert {int(first), int(second)} == set(served.flipped)
    page.keyboard.press("j")  # the first suspect: selected and playing
    page.wait_for_function("() => document.getElementById('player').currentTime > 0.3")
    assert page.evaluate("document.getElementById('player').getAttribute('src')") == f"/audio/{first}"
    assert page.locator("#queue tr.suspect.current").get_attribute("data-track") == first
    page.keyboard.press("Space")  # pause
    page.wait_for_function("() => document.getElementById('player').paused")
    page.keyboard.press("j")  # next: the second suspect plays
    page.wait_for_function(f"() => document.getElementById('player').getAttribute('src') === '/audio/{second}' "
                           "&& document.getElementById('player').currentTime > 0.3")
    assert page.locator("#queue tr.suspect.current").get_attribute("data-track") == second
    page.keyboard.press("k")  # back to the first
    page.wait_for_function(f"() => document.getElementById('player').getAttribute('src') === '/audio/{first}' "
                           "&& !document.getElementById('player').paused")
    assert not page.console_errors, page.console_errors


def test_a_suspect_is_settled_with_the_keyboard(server, page, tmp_path, sqlite_engine):
    from sqlalchemy import select

    from music_classifier.db.browse import audit_queue
    from music_classifier.db.tables import genres, label_decisions

    base, served = server
    with sqlite_engine.connect() as conn:
        queue = audit_queue(conn)
    heard = {r.track_id: r.heard_genre for r in queue.rows}
    page.goto(f"{base}/audit")
    page.fill("#decider", "Ms K")  # remembered in localStorage for the next visit
    page.reload()
    assert page.input_value("#decider") == "Ms K"
    rows = page.locator("#queue tr.suspect")
    assert rows.count() == len(queue.rows) >= 2
    first, second = (int(rows.nth(i).get_attribute("data-track")) for i in range(2))
    page.locator("h1").click()  # the keys act outside the form fields
    page.keyboard.press("j")  # the first suspect: selected and playing
    page.wait_for_function("() => document.getElementById('player').currentTime > 0.3")
    page.keyboard.press("a")  # accept the heard genre
    page.wait_for_selector(f"#queue tr.settled[data-track='{first}']")
    assert page.locator(f"#queue tr.suspect[data-track='{first}']").count() == 0
    page.wait_for_selector(f"#queue tr.suspect.current[data-track='{second}']")  # the next one is current
    _screenshot(page, tmp_path, "serve-audit.png")
    page.keyboard.press("n")  # a note, then Esc back to the keys
    page.keyboard.type("the sheet is right")
    page.keyboard.press("Escape")
    page.keyboard.press("s")  # keep the sheet's genre
    page.wait_for_selector(f"#queue tr.settled[data-track='{second}']")

    with sqlite_engine.connect() as conn:
        names = dict(conn.execute(select(genres.c.id, genres.c.display_name)).all())
        stored = [(r.track_id, r.action, names[r.genre_id], r.decided_by, r.audit_id, r.note) for r in conn.execute(
            select(label_decisions).order_by(label_decisions.c.id))]
        left = [r.track_id for r in audit_queue(conn).rows]
    sheet = {r.track_id: r.sheet_genre for r in queue.rows}
    assert stored == [(first, "set", heard[first], "Ms K", queue.audit_id, None),
                      (second, "keep", sheet[second], "Ms K", queue.audit_id, "the sheet is right")]
    assert left == [r.track_id for r in queue.rows if r.track_id not in (first, second)]
    page.reload()  # settled tracks have left the queue
    assert [int(t) for t in page.locator("#queue tr.suspect").evaluate_all(
        "rows => rows.map(r => r.dataset.track)")] == left
    assert not page.console_errors, page.console_errors
    _push_reaches_the_fake_sheet(sqlite_engine, tmp_path, {first: (heard[first], "relabelled"),
                                                           second: (sheet[second], "kept")})


def _push_reaches_the_fake_sheet(engine, tmp_path: Path, decided: dict[int, tuple[str, str]]) -> None:
    """The loop's last step: `sheet push` sends the decisions just taken in the page to the (fake) Google
    Sheets API, into its own tab, the students' tab untouched."""
    from fake_google import FakeGoogle
    from typer.testing import CliRunner

    from music_classifier.cli import app
    from music_classifier.ingest.push_rows import PUSH_HEADER

    key, robot = "1LoopSheetKey0123456789abcdefghijklmnopqrs", "sync@class-project.iam.gserviceaccount.com"
    students = [["student", "song", "coarse_genre"], ["Ana", "Queen - Bohemian", "Rock"]]
    with FakeGoogle() as fake:
        creds = fake.write_service_account(tmp_path / "sa.json")
        fake.add_sheet(key, [list(r) for r in students], worksheet="Songs", editors={robot})
        url = engine.url.render_as_string(hide_password=False)
        result = CliRunner().invoke(app, ["--db", url, "sheet", "push", "--sheet", key, "--credentials", str(creds)],
                                    env={"GOOGLE_SHEETS_API_URL": fake.sheets_api_url})
        assert result.exit_code == 0, result.output
        assert [w.path for w in fake.write_requests()][-1] == f"/v4/spreadsheets/{key}/values:batchUpdate"
        tab = fake.sheets[key].worksheets["music-classifier"]
        assert fake.sheets[key].worksheets["Songs"] == students
    header = list(tab[0])
    assert header == list(PUSH_HEADER)
    rows = {r[0]: dict(zip(header, r, strict=False)) for r in tab[1:]}  # trailing blanks may be cut
    for track, (genre, decision) in decided.items():
        assert (rows[track]["effective genre"], rows[track]["decision"]) == (genre, decision), rows[track]


def test_retrain_button_runs_a_job_and_the_new_model_shows(server, page, tmp_path):
    base, served = server
    page.goto(f"{base}/models")
    before = page.locator("table.models tbody tr").count()
    page.locator("#retrain").click()
    page.wait_for_selector("#job [data-state='done'], #job [data-state='failed']")  # htmx polls the job
    job = page.locator("#job .job")
    assert job.get_attribute("data-state") == "done", job.inner_text()
    link = job.locator("a").get_attribute("href")
    page.goto(f"{base}/models")
    assert page.locator("table.models tbody tr").count() == before + 1
    assert page.locator(f"table.models a[href='{link}']").count() == 1
    page.goto(f"{base}{link}")
    assert "final" in page.locator("main").inner_text()
    _screenshot(page, tmp_path, "serve-models.png")
    assert not page.console_errors, page.console_errors

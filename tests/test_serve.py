"""`music-classifier serve`: every page, audio with Range requests, and the guards (token, host, CSRF,
CSP, escaping, paths only from the database), through Starlette's TestClient on both databases."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import warnings

import pytest
from serve_helpers import EVIL_ARTIST, EVIL_TITLE, GENRES, PER_GENRE, build_class
from sqlalchemy import select

from music_classifier.db.browse import TrackFilter, audit_queue, list_tracks
from music_classifier.db.tables import label_issues, models
from music_classifier.models.audit import latest_audit
from music_classifier.web.app import ServeConfig, create_app
from music_classifier.web.security import CSP

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2; httpx works the same for these tests
    from starlette.testclient import TestClient

LOCAL = "http://127.0.0.1:8765"
TOKEN = "a-test-token-of-enough-length"


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _client(engine, served, models_dir, *, token: str | None = None, base_url: str = LOCAL) -> TestClient:
    config = ServeConfig(database_url=_url(engine), token=token, models_path=models_dir,
                         retrain_options={"grid": served.grid, "cv": 3, "repeats": 1})
    return TestClient(create_app(config, engine=engine), base_url=base_url, follow_redirects=False)


@pytest.fixture
def readonly_role(engine):
    """PostgreSQL: the class's SELECT-only role for the SQL page (as `db grant-readonly` makes it)."""
    if engine.dialect.name != "postgresql":
        yield None
        return
    from test_sql_readonly import class_role, drop_role

    from music_classifier.db.readonly_roles import ensure_readonly_role

    with engine.begin() as conn:
        role, _ = ensure_readonly_role(conn, None)
    yield role
    drop_role(engine, class_role(engine))


def test_every_page_shows_the_class(engine, tmp_path, models_dir, readonly_role):
    served = build_class(engine, tmp_path)
    client = _client(engine, served, models_dir)

    tracks = client.get("/tracks")
    assert tracks.status_code == 200
    assert f'href="/tracks/{served.first}"' in tracks.text and f'data-src="/audio/{served.first}"' in tracks.text
    # User text is escaped: the markup in a title or an artist arrives as text, never as elements.
    assert EVIL_TITLE not in tracks.text and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in tracks.text
    assert EVIL_ARTIST not in tracks.text and "&lt;img src=x onerror=alert(1)&gt;" in tracks.text
    assert "<b>chloé</b>" not in tracks.text and "&lt;b&gt;chloé&lt;/b&gt;" in tracks.text  # the student menu

    track = client.get(f"/tracks/{served.tagged}")
    assert track.status_code == 200
    assert f'<audio id="track-audio" controls preload="metadata" src="/audio/{served.tagged}">' in track.text
    assert "ana (row 2)" in client.get(f"/tracks/{served.first}").text
    assert f'Model <a href="/models/{served.model_id}">{served.model_id}</a> hears' in track.text
    assert "jazz 0.90" in track.text  # the stored musicnn taggram's top tag
    similar = track.text.split("<h2>Similar tracks</h2>", 1)[1]
    assert similar.count('class="play" data-src="/audio/') == 5
    with engine.connect() as conn:  # the page computed a prediction but stored none
        from music_classifier.db.tables import predictions

        assert conn.execute(select(predictions)).first() is None

    audit = client.get("/audit")
    with engine.connect() as conn:
        stored = [r.track_id for r in conn.execute(
            select(label_issues.c.track_id).order_by(label_issues.c.rank))]
    shown = [int(part.split('"', 1)[0]) for part in audit.text.split('<tr class="suspect" data-track="')[1:]]
    assert set(shown[:2]) == set(served.flipped)  # the two tracks filed under a wrong genre lead the queue
    assert shown == [t for t in stored if t in shown]  # in the audit's stored order
    assert "<kbd>space</kbd> play / pause" in audit.text
    with engine.connect() as conn:  # the queue reads only the suspects, as the whole audit lists them
        disputed = [r.track_id for r in latest_audit(conn).disputed]
        first = audit_queue(conn, limit=1)
    assert shown == disputed and first.n_suspects == len(disputed) and [r.track_id for r in first.rows] == \
        disputed[:1]

    listing = client.get("/models")
    assert f'<a href="/models/{served.model_id}">' in listing.text and "±" in listing.text and "95% interval" in \
        listing.text
    model = client.get(f"/models/{served.model_id}")
    assert '<table class="confusion">' in model.text and "precision" in model.text
    for genre in GENRES:
        assert f"<th>{genre}</th>" in model.text

    sql = client.get("/sql", params={"q": "SELECT artist, title FROM tracks WHERE title LIKE 'Rock song%' "
                                          "ORDER BY id"})
    assert sql.status_code == 200 and sql.text.count("<td>artist Rock") == PER_GENRE
    capped = client.get("/sql", params={"q": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                                             "WHERE i < 1500) SELECT i FROM n"})
    assert capped.status_code == 200 and "1000 row(s)" in capped.text and "at most 1000 rows" in capped.text
    assert capped.text.count("<tr><td>") == 1000
    refused = client.get("/sql", params={"q": "DELETE FROM tracks"})
    assert refused.status_code == 400 and "query refused" in refused.text
    formula = client.get("/sql.csv", params={"q": "SELECT '=1+1' AS f, artist FROM tracks WHERE id = "
                                             f"{served.first}"})
    assert formula.status_code == 200 and formula.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(formula.text))) == [["f", "artist"], ["'=1+1", "artist Rock 0"]]

    assert client.get("/tracks/999999").status_code == 404
    assert client.get("/models/999999").status_code == 404


def test_tracks_filters_and_keyset_pages(engine, tmp_path, models_dir):
    served = build_class(engine, tmp_path, audit=False, model=False)
    with engine.connect() as conn:
        def ids(flt=TrackFilter(), **kw):
            return [r.id for r in list_tracks(conn, flt, **kw).rows]

        everyone = ids(limit=500)
        assert everyone == sorted(everyone) and len(everyone) == len(GENRES) * PER_GENRE + 4
        assert ids(TrackFilter(genre="rock")) == sorted(
            [t for t in served.ids["Rock"] if t not in served.flipped] + [served.flipped[1], served.evil])
        assert set(ids(TrackFilter(student="ben"))) < set(everyone) and ids(TrackFilter(student="ben"))
        assert ids(TrackFilter(student="nobody")) == []
        assert len(ids(TrackFilter(dataset="class"))) == len(GENRES) * PER_GENRE
        assert ids(TrackFilter(state="no-audio")) == [served.evil, served.no_audio]
        assert ids(TrackFilter(state="waiting")) == [served.escaping_path, served.escaping_link]
        assert len(ids(TrackFilter(state="extracted"))) == len(GENRES) * PER_GENRE
        assert ids(TrackFilter(state="failed")) == []
        assert ids(TrackFilter(search="JAZZ SONG 3")) == [served.ids["Jazz"][3]]
        assert ids(TrackFilter(search="%")) == []  # LIKE characters match literally
        assert ids(TrackFilter(genre="rock", search="song 1")) == []  # Rock song 1 is filed under Pop

        # Keyset pages of 5 walk the whole list forwards and back.
        pages, after = [], None
        while True:
            page = list_tracks(conn, limit=5, after=after)
            pages.append([r.id for r in page.rows])
            if page.after is None:
                break
            after = page.after
        assert [t for p in pages for t in p] == everyone and all(len(p) == 5 for p in pages[:-1])
        back = list_tracks(conn, limit=5, before=pages[-1][0])
        assert [r.id for r in back.rows] == pages[-2]
        assert list_tracks(conn, limit=5).before is None
        assert list_tracks(conn, limit=5, after=pages[0][-1]).before == pages[1][0]

    client = _client(engine, served, models_dir)
    page = client.get("/tracks", params={"genre": "jazz", "limit": 3})
    assert page.status_code == 200 and \
        f'href="/tracks?genre=jazz&amp;limit=3&amp;after={served.ids["Jazz"][3]}"' in page.text
    assert "Rock song" not in page.text
    assert client.get("/tracks", params={"state": "bogus", "after": "x"}).status_code == 200  # ignored, not a 500


def test_audio_answers_range_requests_from_the_stored_path_only(engine, tmp_path, models_dir):
    served = build_class(engine, tmp_path, audit=False, model=False)
    client = _client(engine, served, models_dir)
    wav = (served.library / "rock" / "Rock song 0.wav").read_bytes()

    whole = client.get(f"/audio/{served.first}")
    assert whole.status_code == 200 and whole.content == wav and whole.headers["content-type"] == "audio/wav"
    assert whole.headers["accept-ranges"] == "bytes"
    part = client.get(f"/audio/{served.first}", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{len(wav)}" and part.content == wav[100:1100]
    tail = client.get(f"/audio/{served.first}", headers={"Range": f"bytes={len(wav) - 10}-"})
    assert tail.status_code == 206 and tail.content == wav[-10:]
    assert client.get(f"/audio/{served.first}", headers={"Range": f"bytes={len(wav) + 5}-"}).status_code == 416

    # The request names a track, never a file: anything else in it is ignored or has no route.
    assert client.get(f"/audio/{served.first}", params={"path": "/etc/passwd"}).content == wav
    for path in ("/audio/..%2F..%2Fetc%2Fpasswd", "/audio/rock/Rock song 0.wav", "/static/../serve_helpers.py",
                 "/audio/-1"):
        assert client.get(path).status_code == 404, path
    # Stored paths that lead out of the library root are refused, as is a track without audio.
    for track_id in (served.escaping_path, served.escaping_link, served.no_audio, 999999):
        answer = client.get(f"/audio/{track_id}")
        assert answer.status_code == 404 and b"RIFF" not in answer.content


def test_state_changes_need_the_csrf_token_and_retrain_runs(engine, tmp_path, models_dir):
    served = build_class(engine, tmp_path, audit=False, model=False)
    client = _client(engine, served, models_dir)
    csrf = client.app.app.state.csrf_token  # the Guard wraps the Starlette app
    retrainer = client.app.app.state.retrainer
    models_page = client.get("/models").text
    assert f'name="csrf_token" value="{csrf}"' in models_page and f'"X-CSRF-Token": "{csrf}"' in models_page

    assert client.post("/retrain", data={"dataset": "class"}).status_code == 403
    assert client.post("/retrain", data={"dataset": "class", "csrf_token": "wrong"}).status_code == 403
    assert client.post("/retrain", data={"dataset": "class"}, headers={"X-CSRF-Token": csrf,
                                                                       "Origin": "http://evil.example"}).status_code \
        == 403
    assert client.get("/jobs/1").status_code == 404  # nothing was started by the refused requests
    assert client.put("/retrain", data={"csrf_token": csrf}).status_code == 405

    started = client.post("/retrain", data={"dataset": "class", "csrf_token": csrf}, headers={"Origin": LOCAL})
    assert started.status_code == 202 and 'hx-get="/jobs/1"' in started.text
    job = retrainer.get(1)
    assert job.finished.wait(timeout=600), "the retrain job did not finish"
    assert job.state == "done", job.message
    with engine.connect() as conn:
        row = conn.execute(select(models.c.id, models.c.params)).one()
    assert row.id == job.model_id and row.params["model_basis"] == "final"
    done = client.get("/jobs/1").text
    assert 'data-state="done"' in done and f'href="/models/{job.model_id}"' in done and "hx-trigger" not in done
    assert f'<a href="/models/{job.model_id}">' in client.get("/models").text

    # A second job through the htmx header; an unknown dataset fails with one line on the job.
    again = client.post("/retrain", data={"dataset": "nope"}, headers={"X-CSRF-Token": csrf})
    assert again.status_code == 202
    failed = retrainer.get(2)
    assert failed.finished.wait(timeout=600) and failed.state == "failed" and "nope" in failed.message


def test_a_token_is_required_on_every_request_when_set(engine, tmp_path, models_dir):
    served = build_class(engine, tmp_path, audit=False, model=False)
    client = _client(engine, served, models_dir, token=TOKEN, base_url="http://192.0.2.10:8765")
    for path in ("/tracks", f"/tracks/{served.first}", f"/audio/{served.first}", "/static/app.js", "/sql?q=select+1"):
        refused = client.get(path)
        assert refused.status_code == 401 and b"RIFF" not in refused.content and "token" in refused.text, path
    assert client.get("/tracks", params={"token": "wrong-token-of-enough-length"}).status_code == 401
    assert client.get("/tracks", headers={"Authorization": "Bearer wrong"}).status_code == 401

    first = client.get("/tracks", params={"token": TOKEN, "genre": "jazz"})
    assert first.status_code == 303 and first.headers["location"] == "/tracks?genre=jazz"
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"mc_token={TOKEN};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    client.cookies.clear()  # each check below carries the token one way only
    assert client.get("/%2Fevil.example/x", params={"token": TOKEN}).headers["location"] == "/"  # no open redirect
    client.cookies.clear()
    assert client.get("/tracks").status_code == 401

    with_cookie = TestClient(client.app, base_url="http://192.0.2.10:8765", cookies={"mc_token": TOKEN},
                             follow_redirects=False)
    assert with_cookie.get("/tracks").status_code == 200
    assert with_cookie.get("/tracks", params={"token": TOKEN}).headers["location"] == "/tracks"  # never kept in the URL
    assert client.get("/tracks", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get(f"/audio/{served.first}", headers={"X-Music-Classifier-Token": TOKEN,
                                                          "Range": "bytes=0-9"}).status_code == 206
    # The token does not replace the CSRF token.
    assert with_cookie.post("/retrain", data={"dataset": "class"}).status_code == 403


def test_without_a_token_only_loopback_hosts_are_answered(engine, tmp_path, models_dir):
    served = build_class(engine, tmp_path, audit=False, model=False)
    for base in ("http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765"):
        assert _client(engine, served, models_dir, base_url=base).get("/tracks").status_code == 200, base
    # A page that rebinds its own name to 127.0.0.1 sends its own Host: refused (DNS rebinding).
    rebound = _client(engine, served, models_dir, base_url="http://attacker.example:8765")
    assert rebound.get("/tracks").status_code == 403
    assert rebound.get(f"/audio/{served.first}").status_code == 403


def test_every_answer_carries_the_content_security_policy(engine, tmp_path, models_dir):
    served = build_class(engine, tmp_path, audit=False, model=False)
    client = _client(engine, served, models_dir)
    answers = [client.get("/tracks"), client.get("/static/htmx.min.js"), client.get("/tracks/999999"),
               client.get(f"/audio/{served.first}", headers={"Range": "bytes=0-1"}), client.post("/retrain"),
               _client(engine, served, models_dir, token=TOKEN).get("/tracks"), client.get("/")]
    for answer in answers:
        assert answer.headers["content-security-policy"] == CSP, answer.request.url
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self';" in CSP and "unsafe" not in CSP and "default-src 'self'" in CSP
    page = client.get("/tracks").text
    # No inline script or style: every <script> has a src on this server, and no on*= handler is written.
    assert page.count("<script") == page.count('<script src="/static/') == 2
    assert " onclick=" not in page and "<style" not in page and "style=" not in page


def test_serve_command_refuses_other_hosts_without_a_token(tmp_path):
    from typer.testing import CliRunner

    from music_classifier.cli import app

    db = f"sqlite:///{tmp_path / 'none.db'}"
    result = CliRunner().invoke(app, ["--db", db, "serve", "--host", "0.0.0.0"], env={"MUSIC_CLASSIFIER_TOKEN": None})
    assert result.exit_code == 1 and "--host 0.0.0.0 lets other computers reach the page: it needs a token" in \
        result.output and "Traceback" not in result.output
    short = CliRunner().invoke(app, ["--db", db, "serve", "--host", "0.0.0.0", "--token", "abc"])
    assert short.exit_code == 1 and "at least 16 characters" in short.output
    missing = CliRunner().invoke(app, ["--db", db, "serve"])  # loopback: no token needed, the database is checked
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_the_cli_starts_without_importing_the_web_stack():
    code = ("import sys, music_classifier.cli; print(sorted(m for m in "
            "('starlette', 'uvicorn', 'jinja2', 'music_classifier.web.app') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.redis
def test_retrain_goes_to_the_rq_queue_when_redis_is_configured(sqlite_engine, tmp_path, models_dir, redis_url,
                                                               monkeypatch):
    import re
    import uuid

    from music_classifier.jobs.runtime import make_queue, redis_connection
    from music_classifier.jobs.worker import run_worker
    from music_classifier.settings import get_settings

    build_class(sqlite_engine, tmp_path, audit=False, model=False)
    url = _url(sqlite_engine)
    queue_name = f"mc-serve-{uuid.uuid4().hex[:8]}"
    config = ServeConfig(database_url=url, models_path=models_dir, redis_url=redis_url, queue_name=queue_name)
    client = TestClient(create_app(config, engine=sqlite_engine), base_url=LOCAL)
    csrf = client.app.app.state.csrf_token
    queue = make_queue(redis_connection(redis_url), queue_name)
    try:
        started = client.post("/retrain", data={"dataset": "class", "csrf_token": csrf})
        assert started.status_code == 202
        job_id = re.search(r'hx-get="/jobs/([^"]+)"', started.text).group(1)
        assert queue.job_ids == [job_id]
        assert 'data-state="queued"' in client.get(f"/jobs/{job_id}").text
        failing = client.post("/retrain", data={"dataset": "nope", "csrf_token": csrf})
        failing_id = re.search(r'hx-get="/jobs/([^"]+)"', failing.text).group(1)

        # A worker on this machine (its own environment names the database and models directory) runs both.
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("MUSIC_CLASSIFIER_JOBS", "1")
        assert run_worker(get_settings(redis_url=redis_url), queue_name=queue_name, burst=True, preload=False,
                          logging_level="WARNING")
        done = client.get(f"/jobs/{job_id}").text
        with sqlite_engine.connect() as conn:
            model_id, params = conn.execute(select(models.c.id, models.c.params)).one()
        assert 'data-state="done"' in done and f'href="/models/{model_id}"' in done
        assert params["model_basis"] == "final"
        failed = client.get(f"/jobs/{failing_id}").text
        assert 'data-state="failed"' in failed and "nope" in failed
        assert client.get("/jobs/not-a-job").status_code == 404
    finally:
        queue.empty()
        for registry in (queue.finished_job_registry, queue.failed_job_registry):
            for jid in registry.get_job_ids():
                registry.remove(jid, delete_job=True)


def test_serve_settings_reach_the_page(tmp_path, monkeypatch):
    from music_classifier.settings import get_settings
    from music_classifier.web.server import check_bind, config_from_settings, is_loopback

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/5")
    monkeypatch.setenv("MUSIC_CLASSIFIER_READONLY_ROLE", "class_ro")
    settings = get_settings(database_url="postgresql://u:secret@db.example/class", library=tmp_path)
    config = config_from_settings(settings, token=TOKEN)
    assert config.database_url == "postgresql+psycopg://u:secret@db.example/class" and config.library == tmp_path
    assert config.token == TOKEN and config.redis_url == "redis://127.0.0.1:6379/5"
    assert config.readonly_role == "class_ro" and config.models_path == settings.models_path
    assert [is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "localhost", "0.0.0.0", "10.0.0.2", "x")] == \
        [True, True, True, True, False, False, False]
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", TOKEN)

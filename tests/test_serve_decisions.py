"""Label decisions from the class page: the audit queue's keep / relabel forms, the track page's keep /
relabel / undo, and the tracks page's effective-genre filter, through Starlette's TestClient on both
databases. Every POST goes through the library's ``labels`` functions and the CSRF guard."""

from __future__ import annotations

import csv
import re
import shlex
from pathlib import Path

import pytest
from serve_helpers import build_class
from sqlalchemy import select, text
from test_serve import TestClient, _client

from music_classifier.db.browse import TrackFilter, audit_queue, list_tracks
from music_classifier.db.tables import label_decisions, models, proposals, track_genres


def _students_rows(engine) -> list:
    """What the students wrote (proposals) and the sheet's genres: a decision changes neither."""
    with engine.connect() as conn:
        return [sorted(map(tuple, conn.execute(select(proposals)).all())),
                sorted(map(tuple, conn.execute(select(track_genres)).all()))]


def _decisions(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(label_decisions).order_by(label_decisions.c.id)).mappings().all()


def _queued(client) -> list[int]:
    page = client.get("/audit")
    assert page.status_code == 200
    return [int(part.split('"', 1)[0]) for part in page.text.split('<tr class="suspect" data-track="')[1:]]


def test_the_audit_queue_settles_suspects_and_they_leave_it(engine, tmp_path, models_dir):
    served = build_class(engine, tmp_path, model=False)
    client = _client(engine, served, models_dir)
    csrf = client.app.app.state.csrf_token
    with engine.connect() as conn:
        queue = audit_queue(conn)
    heard = {r.track_id: r.heard_genre for r in queue.rows}
    kept, relabelled = served.flipped
    page = client.get("/audit")
    assert f'action="/tracks/{kept}/decide"' in page.text and f'name="csrf_token" value="{csrf}"' in page.text
    assert f'<option selected>{heard[relabelled]}</option>' in page.text  # the heard genre preselected
    assert "<kbd>s</kbd> keep the sheet's genre" in page.text and "<kbd>a</kbd> accept the heard genre" in page.text
    before = _students_rows(engine)
    form = {"action": "keep", "audit_id": str(queue.audit_id), "back": "audit", "note": "sounds right <b>",
            "decided_by": "Ms K"}

    # No CSRF token, or a wrong one: refused, nothing written.
    assert client.post(f"/tracks/{kept}/decide", data=form).status_code == 403
    assert client.post(f"/tracks/{kept}/decide", data={**form, "csrf_token": "wrong"}).status_code == 403
    assert _decisions(engine) == [] and kept in _queued(client)

    done = client.post(f"/tracks/{kept}/decide", data={**form, "csrf_token": csrf})
    assert done.status_code == 303 and done.headers["location"] == "/audit"
    [row] = _decisions(engine)
    assert (row["track_id"], row["action"], row["audit_id"], row["decided_by"], row["note"]) == \
        (kept, "keep", queue.audit_id, "Ms K", "sounds right <b>")
    assert kept not in _queued(client) and relabelled in _queued(client)

    # htmx (the keyboard's path): the answer is the settled row that replaces the suspect's.
    answer = client.post(f"/tracks/{relabelled}/decide", headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
                         data={"action": "set", "genre": heard[relabelled], "audit_id": str(queue.audit_id),
                               "back": "audit"})
    assert answer.status_code == 200 and answer.text.startswith(f'<tr class="settled" data-track="{relabelled}">')
    assert f"-&gt; {heard[relabelled]}" in answer.text
    last = _decisions(engine)[-1]
    assert (last["track_id"], last["action"], last["decided_by"], last["audit_id"]) == \
        (relabelled, "set", "serve", queue.audit_id)
    assert relabelled not in _queued(client)
    with engine.connect() as conn:
        assert audit_queue(conn).n_suspects == queue.n_suspects - 2
    assert _students_rows(engine) == before  # the students' proposals and the sheet are untouched

    # Refusals are one-line messages, and write nothing.
    n = len(_decisions(engine))
    bad = client.post(f"/tracks/{served.first}/decide", data={"action": "set", "genre": "Polka", "csrf_token": csrf})
    assert bad.status_code == 400 and "no genre 'Polka'" in bad.text
    assert client.post(f"/tracks/{served.first}/decide",
                       data={"action": "drop", "csrf_token": csrf}).status_code == 400
    assert client.post(f"/tracks/{served.first}/decide",
                       data={"action": "keep", "audit_id": "99999", "csrf_token": csrf}).status_code == 400
    assert client.post(f"/tracks/{served.first}/decide",
                       data={"action": "undo", "csrf_token": csrf}).status_code == 400  # nothing to undo
    assert client.post("/tracks/999999/decide", data={"action": "keep", "csrf_token": csrf}).status_code == 400
    assert len(_decisions(engine)) == n


def test_the_track_page_shows_and_changes_the_decision(engine, tmp_path, models_dir):
    served = build_class(engine, tmp_path, model=False)
    client = _client(engine, served, models_dir)
    csrf = client.app.app.state.csrf_token
    track = served.flipped[1]  # a Jazz track the sheet files under Rock
    before = _students_rows(engine)
    page = client.get(f"/tracks/{track}")
    assert 'class="effective">Rock</strong>' in page.text and "none: the sheet's genre stands" in page.text
    assert 'value="undo"' not in page.text

    assert client.post(f"/tracks/{track}/decide", data={"action": "set", "genre": "Jazz"}).status_code == 403
    moved = client.post(f"/tracks/{track}/decide", data={"action": "set", "genre": "jazz", "note": "a sax solo",
                                                         "back": "track", "csrf_token": csrf})
    assert moved.status_code == 303 and moved.headers["location"] == f"/tracks/{track}"
    page = client.get(f"/tracks/{track}")
    assert 'class="effective">Jazz</strong> (the sheet says Rock)' in page.text
    assert "set Jazz by serve" in page.text and "a sax solo" in page.text and 'value="undo"' in page.text
    assert track not in _queued(client)

    undone = client.post(f"/tracks/{track}/decide", data={"action": "undo", "back": "track", "csrf_token": csrf})
    assert undone.status_code == 303
    assert [r["action"] for r in _decisions(engine)] == ["set", "undo"]
    assert 'class="effective">Rock</strong>' in client.get(f"/tracks/{track}").text
    assert track in _queued(client)  # no standing decision: a suspect again

    kept = client.post(f"/tracks/{track}/decide", data={"action": "keep", "back": "track", "csrf_token": csrf})
    assert kept.status_code == 303 and _decisions(engine)[-1]["action"] == "keep"
    assert _decisions(engine)[-1]["audit_id"] is not None  # the newest audit listing the track, by default
    assert _students_rows(engine) == before


@pytest.mark.parametrize("by", ["library", "page"])
def test_tracks_filter_by_effective_genre(engine, tmp_path, models_dir, by):
    served = build_class(engine, tmp_path, audit=False, model=False)
    client = _client(engine, served, models_dir)
    csrf = client.app.app.state.csrf_token
    track = served.flipped[1]  # Jazz audio, filed under Rock
    assert client.post(f"/tracks/{track}/decide", data={"action": "set", "genre": "Jazz",
                                                        "csrf_token": csrf}).status_code == 303
    if by == "library":
        with engine.connect() as conn:
            def ids(flt):
                return [r.id for r in list_tracks(conn, flt, limit=500).rows]

            assert track in ids(TrackFilter(genre="rock")) and track not in ids(TrackFilter(effective="rock"))
            assert track in ids(TrackFilter(effective="jazz")) and track not in ids(TrackFilter(genre="jazz"))
            assert ids(TrackFilter(effective="jazz")) == sorted(
                [t for t in served.ids["Jazz"] if t != track] + [track])
            assert ids(TrackFilter(genre="rock", effective="jazz")) == [track]
        # A second decision stands over the first; undoing it brings the first back, then the sheet's genre.
        for action, genre, expected in (("set", "Pop", "Pop"), ("undo", "", "Jazz"), ("undo", "", "Rock")):
            assert client.post(f"/tracks/{track}/decide", data={"action": action, "genre": genre,
                                                                "csrf_token": csrf}).status_code == 303
            with engine.connect() as conn:
                shown = [g for g in ("Rock", "Jazz", "Pop") if track in [
                    r.id for r in list_tracks(conn, TrackFilter(effective=g.lower()), limit=500).rows]]
                view = conn.execute(text("SELECT genre FROM track_effective_genres WHERE track_id = :t"),
                                    {"t": track}).scalar_one()
            assert shown == [view] == [expected]
    else:
        page = client.get("/tracks", params={"effective": "jazz", "limit": 500})
        assert page.status_code == 200 and f'href="/tracks/{track}"' in page.text
        assert '<option value="jazz" selected>Jazz</option>' in page.text and "any effective genre" in page.text
        assert f'href="/tracks/{track}"' not in client.get("/tracks", params={"effective": "rock",
                                                                             "limit": 500}).text


def readme_text() -> str:
    return (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def readme_loop_commands() -> list[list[str]]:
    text = readme_text()
    start = text.index("## The class's loop: audit -> listen -> decide -> retrain -> push")
    block = re.search(r"```bash\n(.*?)```", text[start:], flags=re.S).group(1)
    return [shlex.split(line) for line in block.splitlines() if line.startswith("music-classifier ")]


#: Test-only options appended to a README command (a small grid and fewer folds keep the test short).
QUICK = {"audit": ["--repeats", "1"], "train": ["--cv", "3", "--repeats", "1"]}


def test_the_readme_loop_runs_as_shown(engine, tmp_path, models_dir, monkeypatch):
    """The README's loop, command by command through the CLI (TRACK -> a track the sheet misfiles; `serve`
    builds its page, which is then asked for the audit queue instead of listening on a port)."""
    import uvicorn
    from typer.testing import CliRunner

    from music_classifier.cli import app

    served = build_class(engine, tmp_path, audit=False, model=False)
    track = served.flipped[1]  # Jazz audio filed under Rock
    monkeypatch.chdir(tmp_path)
    pages = []

    def answer_once(asgi, **kwargs):  # uvicorn.run's stand-in: one request instead of serving for ever
        client = TestClient(asgi, base_url=f"http://{kwargs['host']}:{kwargs['port']}")
        pages.append(client.get("/audit"))

    monkeypatch.setattr(uvicorn, "run", answer_once)
    commands = readme_loop_commands()
    assert [c[1] for c in commands] == ["audit", "serve", "labels", "labels", "dataset", "train", "sheet"]
    outputs = {}
    for command in commands:
        args = [a.replace("TRACK", str(track)) for a in command[1:]]
        if args[0] == "train":
            args += ["--grid", str(served.grid)]
        result = CliRunner().invoke(app, ["--db", engine.url.render_as_string(hide_password=False), *args,
                                          *QUICK.get(args[0], [])])
        assert result.exit_code == 0, (command, result.output)
        outputs[" ".join(command[1:3])] = result.stdout
    [queue] = pages
    assert queue.status_code == 200 and f'<tr class="suspect" data-track="{track}"' in queue.text
    assert f"track {track} (artist Jazz 2 - Jazz song 2): Rock -> Jazz" in outputs["labels set"]
    assert "a sax solo, not rock" in outputs["labels list"]
    # The README shows `dataset refresh`'s answer as it is (TRACK for the track's id).
    shown = " ".join(readme_text().split())
    for line in outputs["dataset refresh"].replace(f"track {track} ", "track TRACK ").splitlines():
        assert " ".join(line.split()) in shown, f"README does not show: {line}"
    assert "stale" not in outputs["train class"]  # refreshed first: it trains on the decided genre
    with engine.connect() as conn:
        assert track not in [r.track_id for r in audit_queue(conn).rows]  # settled: it left the queue
        from music_classifier.models.datasets import get_dataset

        assert [m.track_id for m in get_dataset(conn, "class").decided] == [track]
        snapshot = conn.execute(select(models.c.dataset_snapshot).order_by(models.c.id.desc())).first()[0]
    assert [track, "Jazz"] in snapshot["members"]
    with open(tmp_path / "class-results.csv", newline="", encoding="utf-8") as f:
        rows = {r["track"]: r for r in csv.DictReader(f)}
    assert (rows[str(track)]["sheet genre"], rows[str(track)]["effective genre"]) == ("Rock", "Jazz")

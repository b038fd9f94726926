"""The tracks page's search and the audit queue's count on both databases: LIKE characters typed by the
user match literally, case folds beyond ASCII, 1-2 characters match the start of the artist or title, and on
PostgreSQL the queries are the ones the indexes of migrations 0008 and 0010 serve (the speed itself is
measured by benchmarks/bench_serve.py, not here)."""

from __future__ import annotations

import warnings

import pytest
from models_helpers import add_track
from sqlalchemy import event, insert

from music_classifier.db import browse, migrate
from music_classifier.db.browse import TrackFilter, audit_queue, list_tracks
from music_classifier.db.engine import make_engine
from music_classifier.db.tables import label_audits, label_issues
from music_classifier.ingest.label_decisions import keep_genre
from music_classifier.web.app import ServeConfig, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SONGS = {  # key: (artist, title)
    "pct": ("The Percent", "100% Pure"),
    "nopct": ("The Percent", "100 Pure"),
    "under": ("Snake", "snake_case blues"),
    "nounder": ("Snake", "snakeXcase blues"),
    "slash": ("AC\\DC", "Back in black"),
    "eclair": ("Chloé Ångström", "Éclair de lune"),
    "strasse": ("Die Ärzte", "Straße"),
    "plain": ("Someone", "Plain song"),
    "lead": ("%Lead", "_\\lead"),  # LIKE characters at the start, for the short (prefix) search
}


def _library(engine) -> dict[str, int]:
    with engine.begin() as conn:
        ids = {key: add_track(conn, key=key, genre="Rock", artist=artist, title=title)
               for key, (artist, title) in SONGS.items()}
        add_track(conn, key="gone", genre="Rock", artist="Chloé Ångström", title="Éclair removed", removed=True)
    return ids


def test_search_matches_literally_and_folds_case_beyond_ascii(engine):
    ids = _library(engine)
    with engine.connect() as conn:
        def found(text: str, **kw: str) -> list[str]:
            keys = {v: k for k, v in ids.items()}
            return [keys[r.id] for r in list_tracks(conn, TrackFilter(search=text, **kw)).rows]

        assert found("100%") == ["pct"]  # % is a character, not "anything"
        assert found("e_c") == ["under"]  # _ is a character, not "any one"
        assert found("c\\d") == ["slash"]  # so is the escape character itself
        # 1-2 characters match the start of the artist or the title, not a part in the middle, with the
        # same literal LIKE characters and the same case folding.
        assert found("%") == ["lead"] and found("_") == ["lead"] and found("_\\") == ["lead"]
        assert found("s") == ["under", "nounder", "strasse", "plain"]  # Snake, Snake, Straße, Someone
        assert found("de") == [] and found("di") == ["strasse"]  # "Éclair de lune" has "de" inside only
        assert found("lu") == [] and found("lun") == ["eclair"]  # 3 characters: anywhere again
        assert found("ÅN") == [] and found("ch") == found("CH") == ["eclair"]  # "Chloé Ångström"
        assert found("é") == found("É") == found("éC") == ["eclair"]  # "Éclair de lune", beyond ASCII
        assert found("ac") == found("AC") == ["slash"]  # "AC\\DC"
        assert found("e") == []  # in many names, at the start of none
        assert found("s", genre="jazz") == [] and found("sn", genre="rock") == ["under", "nounder"]
        for text in ("éclair", "ÉCLAIR", "Éclair", "éCLAIR DE LUNE"):  # non-ASCII case both ways, the title
            assert found(text) == ["eclair"], text
        for text in ("chloé", "CHLOÉ ÅNGSTRÖM", "ångström"):  # the artist
            assert found(text) == ["eclair"], text
        assert found("STRASSE") == []  # lower(), not a German casefold: ß stays ß
        assert found("straße") == found("STRAßE") == ["strasse"]
        assert found("ärzte") == ["strasse"]
        assert found("Éclair\x00") == ["eclair"]  # a NUL typed into the box is dropped, not a 500
        assert found("blues") == ["under", "nounder"] and found("blues", genre="jazz") == []
        assert found("lune", genre="rock") == ["eclair"]

        # Keyset pages of a search walk its matches only, forwards and back.
        first = list_tracks(conn, TrackFilter(search="blues"), limit=1)
        second = list_tracks(conn, TrackFilter(search="blues"), limit=1, after=first.after)
        assert [r.id for r in first.rows + second.rows] == [ids["under"], ids["nounder"]]
        assert second.after is None and second.before == ids["nounder"]  # the keyset of the page before it
        back = list_tracks(conn, TrackFilter(search="blues"), limit=1, before=second.before)
        assert [r.id for r in back.rows] == [ids["under"]] and back.before is None

    client = TestClient(create_app(ServeConfig(database_url=engine.url.render_as_string(hide_password=False)),
                                   engine=engine), base_url="http://127.0.0.1:8765")
    page = client.get("/tracks", params={"q": "ÉCLAIR"})
    assert page.status_code == 200 and "Éclair de lune" in page.text and "Plain song" not in page.text
    assert "starting with" not in page.text
    page = client.get("/tracks", params={"q": "éC"})  # the page says what a short search matches
    assert "Éclair de lune" in page.text and "1-2 letters: artists and titles starting with “éC”" in page.text
    page = client.get("/tracks", params={"q": "100%"})
    assert page.status_code == 200 and "100% Pure" in page.text and "100 Pure" not in page.text
    assert client.get("/tracks", params={"q": "a\x00b"}).status_code == 200


def _plans(engine, run, *settings: str) -> str:
    """The plans of the SELECT statements ``run(conn)`` issues, with the planner ``settings`` applied."""
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ANN202
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as conn:
            run(conn)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    out = []
    with engine.connect() as conn:
        for setting in settings:
            conn.exec_driver_sql(setting)
        for statement, params in seen:
            prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
            out += [" ".join(str(c) for c in row) for row in conn.exec_driver_sql(prefix + statement, params)]
    return "\n".join(out)


@pytest.mark.postgres
def test_postgresql_search_is_the_trigram_indexes_expression(pg_schema_url):
    engine = make_engine(pg_schema_url)
    migrate.upgrade(engine)
    _library(engine)
    # With scans by row and by primary key priced out, the planner reads the trigram indexes only if the
    # query's expressions are exactly theirs (lower(artist), lower(title)); else it must fall back to them.
    plans = _plans(engine, lambda conn: list_tracks(conn, TrackFilter(search="clair")),
                   "SET enable_seqscan = off", "SET enable_indexscan = off")
    engine.dispose()
    assert "ix_tracks_artist_trgm" in plans and "ix_tracks_title_trgm" in plans, plans


@pytest.mark.postgres
def test_postgresql_short_search_reads_the_prefix_indexes(pg_schema_url):
    engine = make_engine(pg_schema_url)
    migrate.upgrade(engine)
    _library(engine)
    # A text of 1-2 characters is compared as a prefix, which the B-tree indexes of migration 0010 serve
    # (the trigram indexes hold no trigram of it). With the primary-key walk and row scans priced out, the
    # planner reads those indexes only if the query's expressions are exactly theirs.
    plans = _plans(engine, lambda conn: list_tracks(conn, TrackFilter(search="Éc")),
                   "SET enable_seqscan = off", "SET enable_indexscan = off")
    engine.dispose()
    assert "ix_tracks_artist_prefix" in plans and "ix_tracks_title_prefix" in plans, plans


def _audit(engine, n: int) -> list[int]:
    """An audit of ``n`` tracks in which every other track is a suspect (heard as another genre)."""
    with engine.begin() as conn:
        ids = [add_track(conn, key=f"t{i}", genre="Rock", artist=f"artist {i}") for i in range(n)]
        audit = conn.execute(insert(label_audits).values(dataset_name="class", model_kind="rf", params={},
                                                         n_tracks=n, n_flagged=0)
                             .returning(label_audits.c.id)).scalar_one()
        conn.execute(insert(label_issues), [
            {"audit_id": audit, "track_id": t, "rank": rank, "sheet_genre": "Rock",
             "heard_genre": "Jazz" if rank % 2 else "Rock", "sheet_probability": 0.1, "heard_probability": 0.9,
             "dispute_score": 0.9, "flagged": False} for rank, t in enumerate(ids, start=1)])
    return ids


def test_audit_queue_counts_suspects_up_to_a_cap(engine, monkeypatch):
    ids = _audit(engine, 12)  # suspects: ranks 1, 3, 5, 7, 9, 11
    monkeypatch.setattr(browse, "MAX_SUSPECT_COUNT", 4)
    with engine.connect() as conn:
        queue = audit_queue(conn, limit=2)
    assert (queue.n_suspects, queue.more_suspects) == (4, True)
    assert [r.track_id for r in queue.rows] == [ids[0], ids[2]]
    with engine.begin() as conn:
        for t in (ids[0], ids[2]):
            keep_genre(conn, t, decided_by="test")
    with engine.connect() as conn:
        queue = audit_queue(conn, limit=2)
    assert (queue.n_suspects, queue.more_suspects) == (4, False)  # 4 left, exactly the cap
    assert [r.track_id for r in queue.rows] == [ids[4], ids[6]]

    client = TestClient(create_app(ServeConfig(database_url=engine.url.render_as_string(hide_password=False)),
                                   engine=engine), base_url="http://127.0.0.1:8765")
    text = client.get("/audit").text
    assert "4 suspect(s) still to settle" in text and "more than" not in text
    with engine.begin() as conn:
        keep_genre(conn, ids[1], decided_by="test")  # not a suspect: the count does not move
    monkeypatch.setattr(browse, "MAX_SUSPECT_COUNT", 3)
    assert "more than 3 suspect(s) still to settle" in client.get("/audit").text


def test_audit_queue_walks_the_suspects_index(engine):
    _audit(engine, 6)
    # Sorting and (on PostgreSQL) scans by row priced out: the rank order must come from an index, and
    # only the partial index of suspects has rank first after the audit, if the queue's test is its own.
    settings = () if engine.dialect.name == "sqlite" else (
        "SET enable_seqscan = off", "SET enable_sort = off", "SET enable_bitmapscan = off")
    plans = _plans(engine, audit_queue, *settings)
    assert plans.count("ix_label_issues_suspects") >= 2, plans  # the count and the first suspects

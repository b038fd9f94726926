"""`music-classifier sql`: read-only enforced by the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from music_classifier.db.readonly import readonly_url_for, run_readonly_query
from music_classifier.db.readonly_roles import readonly_role_name
from music_classifier.db.tables import genres, track_genres, tracks
from music_classifier.errors import ConfigError, InputError


def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _invoke(engine, *args: str, **env: str | None):
    from music_classifier.cli import app

    env = {"MUSIC_CLASSIFIER_READONLY_ROLE": None, "MUSIC_CLASSIFIER_READONLY_URL": None,
           "MUSIC_CLASSIFIER_STATEMENT_TIMEOUT_MS": "5000", **env}
    return CliRunner().invoke(app, ["--db", _url(engine), *args], env=env)


def class_role(engine) -> str:
    """The read-only role `db grant-readonly` makes for the engine's database and schema."""
    with engine.connect() as conn:
        return readonly_role_name(*conn.exec_driver_sql("SELECT current_database(), current_schema()").one())


def drop_role(engine, role: str) -> None:
    """Roles are cluster-wide and outlive the test schema: revoke what they hold here, then drop them."""
    with engine.begin() as conn:
        if conn.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %(r)s", {"r": role}).first():
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')


def _seed(engine):
    """Three tracks in two genres, readable by the read-only role."""
    with engine.begin() as conn:
        rock, jazz = (conn.execute(insert(genres).values(name=n.lower(), display_name=n).returning(genres.c.id))
                      .scalar_one() for n in ("Rock", "Jazz"))
        for i, (artist, title, gid) in enumerate([("Queen", "Innuendo", rock), ("Muse", "Uprising", rock),
                                                  ("Miles Davis", "So What", jazz)]):
            tid = conn.execute(insert(tracks).values(source="sheet", track_key=f"k{i}", artist=artist, title=title,
                                                     song=f"{artist} - {title}").returning(tracks.c.id)).scalar_one()
            conn.execute(insert(track_genres).values(track_id=tid, rank=0, genre_id=gid))
    if engine.dialect.name == "postgresql":
        result = _invoke(engine, "db", "grant-readonly")
        assert result.exit_code == 0, result.output
        assert "can SELECT" in result.output
    return engine


@pytest.fixture
def db(engine):
    yield _seed(engine)
    if engine.dialect.name == "postgresql":
        drop_role(engine, class_role(engine))


def _pg_engine(url: str):
    from music_classifier.db import migrate
    from music_classifier.db.engine import make_engine

    engine = make_engine(url)
    migrate.upgrade(engine)
    return engine


@pytest.fixture
def pg_db(pg_schema_url):
    engine = _pg_engine(pg_schema_url)
    yield _seed(engine)
    drop_role(engine, class_role(engine))
    engine.dispose()


def _query(engine, sql: str, timeout_ms: int = 5000):
    return run_readonly_query(_url(engine), sql, statement_timeout_ms=timeout_ms)


def _writes(tmp_path: Path) -> list[str]:
    return [
        "COMMIT; DROP TABLE tracks",
        "SELECT 1; DROP TABLE tracks",
        "DROP TABLE tracks",
        f"ATTACH DATABASE '{tmp_path / 'attached.db'}' AS evil",
        f"VACUUM INTO '{tmp_path / 'copy.db'}'",
        "INSERT INTO genres (name, display_name) VALUES ('x', 'X')",
        "UPDATE tracks SET artist = 'nobody'",
        "DELETE FROM tracks",
        "PRAGMA writable_schema = ON",
        "CREATE TABLE evil (a INTEGER)",
    ]


def test_select_and_join_work(db):
    result = _query(db, "SELECT t.artist, g.display_name AS genre FROM tracks t "
                        "JOIN track_genres tg ON tg.track_id = t.id AND tg.rank = 0 "
                        "JOIN genres g ON g.id = tg.genre_id ORDER BY t.artist")
    assert result.columns == ["artist", "genre"]
    assert result.rows == [("Miles Davis", "Jazz"), ("Muse", "Rock"), ("Queen", "Rock")]
    recursive = _query(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) "
                           "SELECT count(*) FROM n")
    assert recursive.rows == [(5,)]
    assert _query(db, "SELECT artist FROM tracks WHERE artist LIKE 'Q%' OR title = '%s'").rows == [("Queen",)]


def test_every_kind_of_write_is_refused_and_tracks_survive(db, tmp_path):
    with db.connect() as conn:
        genres_before = conn.execute(select(func.count()).select_from(genres)).scalar()
    for statement in _writes(tmp_path):
        with pytest.raises(InputError, match="^query refused: "):
            _query(db, statement)
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tracks)).scalar() == 3
        assert set(conn.execute(select(tracks.c.artist)).scalars()) == {"Queen", "Muse", "Miles Davis"}
        assert conn.execute(select(func.count()).select_from(genres)).scalar() == genres_before
    assert not (tmp_path / "attached.db").exists()
    assert not (tmp_path / "copy.db").exists()


def test_cli_refusals_are_one_line_errors(db, tmp_path):
    for statement in ("COMMIT; DROP TABLE tracks", f"VACUUM INTO '{tmp_path / 'copy2.db'}'", "DELETE FROM tracks"):
        result = _invoke(db, "sql", statement)
        assert result.exit_code == 1, (statement, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: query refused"), result.output
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tracks)).scalar() == 3


def test_cli_table_and_csv(db):
    table = _invoke(db, "sql", "SELECT artist, title FROM tracks ORDER BY artist")
    assert table.exit_code == 0, table.output
    assert "Miles Davis" in table.output and "3 row(s)" in table.output
    as_csv = _invoke(db, "sql", "SELECT artist, title, spotify_id FROM tracks ORDER BY artist", "--csv")
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.reader(io.StringIO(as_csv.output)))
    assert rows == [["artist", "title", "spotify_id"], ["Miles Davis", "So What", ""], ["Muse", "Uprising", ""],
                    ["Queen", "Innuendo", ""]]


def test_statement_timeout(db):
    slow = ("SELECT pg_sleep(5)" if db.dialect.name == "postgresql" else
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n")
    with pytest.raises(InputError, match="query refused: .*(interrupt|timeout)"):
        _query(db, slow, timeout_ms=200)


def test_sqlite_denies_what_mode_ro_alone_allows(sqlite_engine, tmp_path):
    url = _url(sqlite_engine)
    for statement, why in [("SELECT load_extension('evil')", "not authorized"),
                           (f"ATTACH '{tmp_path / 'a.db'}' AS a", "too many attached databases|not authorized"),
                           ("PRAGMA query_only = OFF", "not authorized"),
                           ("BEGIN IMMEDIATE", "not authorized"),
                           ("SAVEPOINT s", "not authorized")]:
        with pytest.raises(InputError, match=why):
            run_readonly_query(url, statement)
    with pytest.raises(ConfigError, match="does not exist"):
        run_readonly_query(f"sqlite:///{tmp_path / 'missing.db'}", "SELECT 1")
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.postgres
def test_postgres_role_holds_only_select(pg_db):
    """Even outside a read-only transaction the role cannot write: privileges, not options, stop it."""
    import psycopg

    from music_classifier.db.readonly import _libpq_options

    opts = _libpq_options(readonly_url_for(pg_db.url, class_role(pg_db)), 5000)
    opts["options"] = opts["options"].replace("default_transaction_read_only=on", "default_transaction_read_only=off")
    with psycopg.connect(**opts) as conn:
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("off",)
        assert conn.execute("SELECT count(*) FROM tracks").fetchone() == (3,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM tracks")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE evil (a int)")


def test_readonly_url_keeps_search_path_and_drops_password():
    from music_classifier.db.readonly import _libpq_options

    url = readonly_url_for("postgresql+psycopg://app:secret@db.example:5433/class?options=-csearch_path%3Dlab",
                           "reader")
    opts = _libpq_options(url, 1234)
    assert opts["user"] == "reader" and "password" not in opts
    assert (opts["host"], opts["port"], opts["dbname"]) == ("db.example", 5433, "class")
    assert opts["options"] == "-csearch_path=lab -c default_transaction_read_only=on -c statement_timeout=1234"
    with pytest.raises(ConfigError):
        readonly_url_for("postgresql://x@h/d", 'bad"; DROP ROLE postgres; --')


@pytest.mark.postgres
def test_grant_readonly_names_the_class_role(pg_db):
    result = _invoke(pg_db, "db", "grant-readonly")  # idempotent: the second run reuses the class's own role
    assert result.exit_code == 0, result.output
    schema = pg_db.url.query["options"].split("=")[-1]
    assert result.output.split() == ["role", class_role(pg_db), "can", "SELECT", "in", "schema", schema, "(and",
                                     "nothing", "else)"]


def test_grant_readonly_on_sqlite_is_a_no_op(sqlite_engine):
    result = _invoke(sqlite_engine, "db", "grant-readonly")
    assert result.exit_code == 0 and "nothing to do on SQLite" in result.output


def test_csv_export_neutralises_formulas_unless_raw(db):
    """Sheet cells such as =cmd|' /C calc'!A0 must not reach a spreadsheet as formulas (CSV injection)."""
    attacks = ["=cmd|' /C calc'!A0", "@HYPERLINK(\"http://evil.example\")", "+SUM(1+1)", "-2+3+cmd|' /C calc'!A0"]
    with db.begin() as conn:
        for i, artist in enumerate(attacks):
            conn.execute(insert(tracks).values(source="sheet", track_key=f"x{i}", artist=artist, title="\t=1+1",
                                               song=f"{artist} - t"))
    query = ("SELECT artist, title, -3 AS negative, -0.5 AS fraction FROM tracks "
             "WHERE track_key LIKE 'x%' ORDER BY track_key")
    safe = _invoke(db, "sql", query, "--csv")
    assert safe.exit_code == 0, safe.output
    rows = list(csv.reader(io.StringIO(safe.output)))
    assert rows[0] == ["artist", "title", "negative", "fraction"]
    assert [r[0] for r in rows[1:]] == ["'" + a for a in attacks]
    assert {r[1] for r in rows[1:]} == {"'\t=1+1"}
    assert {(r[2], r[3]) for r in rows[1:]} == {("-3", "-0.5")}  # numbers stay numbers
    header = _invoke(db, "sql", 'SELECT 1 AS "=1+1"', "--csv")
    assert list(csv.reader(io.StringIO(header.output)))[0] == ["'=1+1"]
    raw = _invoke(db, "sql", query, "--csv", "--raw")
    assert raw.exit_code == 0, raw.output
    assert [r[0] for r in list(csv.reader(io.StringIO(raw.output)))[1:]] == attacks


def test_sqlite_denies_fts3_tokenizer_and_huge_values(sqlite_engine):
    """fts3_tokenizer() leaks a library pointer; a 900 MB printf must fail fast with one line, not allocate."""
    import resource

    url = _url(sqlite_engine)
    for statement in ("SELECT fts3_tokenizer('simple')", "SELECT FTS3_TOKENIZER('simple', x'00')"):
        with pytest.raises(InputError, match="^query refused: not authorized"):
            run_readonly_query(url, statement)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for statement in ("SELECT printf('%.*c', 900000000, 'x')", "SELECT format('%900000000d', 1)",
                      "SELECT length(printf('%-*s|', 200000000, 'x'))"):
        with pytest.raises(InputError, match=r"^query refused: printf\(\) width or precision \d+ is above the "
                                             r"32 MiB limit for one value$"):
            run_readonly_query(url, statement)
    # refused before any work: the message is our guard's, which reads the width before printf runs (SQLite's
    # own printf would loop for seconds and fail with another message), and no memory was taken
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 100_000  # KiB: far below 200 MB
    twenty_mb = "printf('%.*c', 20000000, 'x')"
    with pytest.raises(InputError, match=r"^query refused: printf\(\) result is longer than the 32 MiB limit"):
        run_readonly_query(url, f"SELECT length(printf('%s%s', {twenty_mb}, {twenty_mb}))")
    for blowup in ("SELECT length(randomblob(100000000))",
                   "WITH RECURSIVE s(x) AS (SELECT 'x' UNION ALL SELECT x || x FROM s WHERE length(x) < 1e9) "
                   "SELECT max(length(x)) FROM s",
                   "SELECT length(replace(printf('%.*c', 1000000, 'x'), 'x', printf('%.*c', 100, 'y')))"):
        with pytest.raises(InputError, match="^query refused: string or blob too big$"):
            run_readonly_query(url, blowup)
    # printf still behaves as SQLite's own below the limits
    assert run_readonly_query(url, "SELECT printf('%05.1f|%-4s|%d%%|%.*c|%s', 3.14159, 'ab', 7, 3, 'z', NULL), "
                                   "format('%q', 'it''s'), printf(NULL), length(printf('%.*c', 1000000, 'x'))"
                              ).rows == [("003.1|ab  |7%|zzz|", "it''s", None, 1_000_000)]


def test_sqlite_heap_limit_is_restored_after_the_query(sqlite_engine):
    from music_classifier.db.sqlite_limits import hard_heap_limit_function

    set_limit = hard_heap_limit_function()
    if set_limit is None:
        pytest.skip("this SQLite build does not export sqlite3_hard_heap_limit64")
    before = set_limit(-1)
    assert run_readonly_query(_url(sqlite_engine), "SELECT 1").rows == [(1,)]
    assert set_limit(-1) == before

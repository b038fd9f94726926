"""Migrations run up and down on both databases."""

from __future__ import annotations

import logging
import os
import uuid

import pytest
from sqlalchemy import inspect

from music_classifier.db import migrate
from music_classifier.db.engine import make_engine


def test_upgrade_downgrade_upgrade(db_url):
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert {"tracks", "genres", "proposals", "track_genres"} <= set(inspect(engine).get_table_names())
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    assert "tracks" not in inspect(engine).get_table_names()
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_constraint_names_match_across_databases(engine):
    # The naming convention gives the same names on both databases; batch migrations rely on it.
    insp = inspect(engine)
    uniques = {u["name"] for u in insp.get_unique_constraints("tracks")}
    assert {"uq_tracks_source_track_key", "uq_tracks_audio_path"} <= uniques
    fks = {f["name"] for f in insp.get_foreign_keys("track_genres")}
    assert fks == {"fk_track_genres_track_id_tracks", "fk_track_genres_genre_id_genres"}
    checks = {c["name"] for c in insp.get_check_constraints("tracks")}
    assert {"ck_tracks_source", "ck_tracks_audio_origin"} <= checks


SEARCH_INDEXES = {"ix_tracks_artist_trgm", "ix_tracks_title_trgm"}


def _index_names(engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'").scalars())
        return set(conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
                   .scalars())


def test_0008_indexes_come_and_go(db_url):
    """The audit queue's partial index on both databases, the search's trigram indexes on PostgreSQL
    (whose pg_trgm this test role, a superuser, may create); a downgrade drops the indexes and leaves
    the extension, which other schemas of the database may use."""
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    postgres = engine.dialect.name == "postgresql"
    assert "ix_label_issues_suspects" in _index_names(engine)
    assert (SEARCH_INDEXES <= _index_names(engine)) is postgres
    migrate.downgrade(engine, "0007_label_decisions")
    assert not ({"ix_label_issues_suspects"} | SEARCH_INDEXES) & _index_names(engine)
    if postgres:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").first()
    migrate.upgrade(engine)
    assert {"ix_label_issues_suspects"} | (SEARCH_INDEXES if postgres else set()) <= _index_names(engine)
    engine.dispose()


PREFIX_INDEXES = {"ix_tracks_artist_prefix", "ix_tracks_title_prefix"}


def test_0010_short_search_indexes_come_and_go(db_url):
    """The short search's B-tree prefix indexes on PostgreSQL only; a downgrade drops them and leaves the
    trigram indexes of 0008."""
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    postgres = engine.dialect.name == "postgresql"
    assert (PREFIX_INDEXES <= _index_names(engine)) is postgres
    migrate.downgrade(engine, "0009_wide_features")
    assert not PREFIX_INDEXES & _index_names(engine)
    assert (SEARCH_INDEXES <= _index_names(engine)) is postgres
    migrate.upgrade(engine)
    assert (PREFIX_INDEXES <= _index_names(engine)) is postgres
    engine.dispose()


@pytest.fixture
def fresh_pg_database():
    """A new PostgreSQL database (so without pg_trgm, whatever database `test` holds) with a schema
    `class`, and a login role that owns only that schema; dropped afterwards. Yields (server URL with
    the database set, role name)."""
    from conftest import POSTGRES_URL, _postgres_admin_engine
    from sqlalchemy.engine import make_url

    admin = _postgres_admin_engine()
    name = f"mc_noext_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    server = make_url(POSTGRES_URL).set(database=name)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{name}" LOGIN')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')  # owned by the administrator, not by the role
    try:
        db_admin = make_engine(server.render_as_string(hide_password=False))
        with db_admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA class AUTHORIZATION "{name}"')
        db_admin.dispose()
        yield server, name
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')
        admin.dispose()


@pytest.mark.postgres
def test_a_role_that_may_installs_pg_trgm_outside_the_class_schema(fresh_pg_database):
    """Installed into `public`, not into the class's schema, whose drop would take the extension (and
    every other schema's trigram indexes) with it."""
    server, _ = fresh_pg_database
    engine = make_engine(server.set(query={"options": "-csearch_path=class"}).render_as_string(hide_password=False))
    try:
        migrate.upgrade(engine)
        assert SEARCH_INDEXES <= _index_names(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                                        "ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'").scalar() == "public"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_without_pg_trgm_the_migration_goes_on_and_the_search_still_works(fresh_pg_database, caplog):
    """A role that may not create the extension (no CREATE on the database) in a database without it:
    the migration reaches head with one warning and no trigram index, the search answers; once the
    administrator creates the extension, docs/sql.md's `db upgrade` adds the indexes (no downgrade)."""
    from models_helpers import add_track

    from music_classifier.db.browse import TrackFilter, list_tracks

    server, role = fresh_pg_database
    url = server.set(username=role, query={"options": "-csearch_path=class"})
    engine = make_engine(url.render_as_string(hide_password=False))
    db_admin = make_engine(server.render_as_string(hide_password=False))
    try:
        with caplog.at_level(logging.WARNING, logger="music_classifier.migrations"):
            migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        warned = [r.getMessage() for r in caplog.records if "pg_trgm" in r.getMessage()]
        assert len(warned) == 1 and "docs/sql.md" in warned[0] and "\n" not in warned[0]
        assert not SEARCH_INDEXES & _index_names(engine) and "ix_label_issues_suspects" in _index_names(engine)
        with engine.begin() as conn:
            wanted = add_track(conn, key="a", genre="Rock", artist="Chloé", title="100% Éclair")
            add_track(conn, key="b", genre="Rock", artist="Other", title="100 Eclair")
        with engine.connect() as conn:
            assert [r.id for r in list_tracks(conn, TrackFilter(search="0% éCLAIR")).rows] == [wanted]

        with db_admin.begin() as conn:  # what docs/sql.md asks the administrator to run
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        assert sorted(migrate.upgrade(engine)) == sorted(SEARCH_INDEXES)  # already at head: no migration runs
        assert SEARCH_INDEXES <= _index_names(engine)
        assert migrate.upgrade(engine) == []  # and a second upgrade adds nothing
        with engine.connect() as conn:
            assert [r.id for r in list_tracks(conn, TrackFilter(search="0% éCLAIR")).rows] == [wanted]
    finally:
        engine.dispose()
        db_admin.dispose()


def test_the_upgrade_step_adds_the_indexes_0008_names():
    """db/search_indexes.py adds what migration 0008 would have: the same names and expressions."""
    import importlib.util

    from music_classifier.db import search_indexes

    spec = importlib.util.spec_from_file_location("m0008", migrate.MIGRATIONS_DIR / "versions" / "0008_search_index.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    assert search_indexes.TRIGRAM_INDEXES == m.TRIGRAM_INDEXES

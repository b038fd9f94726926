"""Migrations run up and down on both databases."""

from __future__ import annotations

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

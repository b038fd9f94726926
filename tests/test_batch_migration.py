"""A batch migration that recreates `tracks` keeps every child row and every view (both databases).

SQLite's batch mode copies `tracks` into a new table and drops the old one; with foreign keys ON,
that DROP would cascade into proposals, track_genres, extractions, features... env.py turns them
off for the migration and checks `PRAGMA foreign_key_check` afterwards. Views are dropped and
recreated around the migration by db.views.views_dropped.
"""

from __future__ import annotations

import os
import textwrap

from alembic import command
from sqlalchemy import func, insert, select, text

from music_classifier.db import migrate, tables
from music_classifier.db.engine import make_engine
from music_classifier.db.feature_columns import FEATURE_VIEWS_V1, LIBROSA_V1, SEGMENT_VIEWS_V1
from music_classifier.db.values import replace_values
from music_classifier.db.views import dataset_view_sql

TEST_MIGRATION = textwrap.dedent('''
    """test only: recreate tracks with a new column

    Revision ID: 9999_recreate_tracks
    Revises: {head}
    """
    import sqlalchemy as sa
    from alembic import op

    from music_classifier.db.feature_columns import (FEATURE_VIEWS_LATEST, SEGMENT_VIEWS_LATEST,
                                                     WIDE_STORES_LATEST)
    from music_classifier.db.views import views_dropped

    LATEST = dict(wide_stores=WIDE_STORES_LATEST, long_views=True)

    revision = "9999_recreate_tracks"
    down_revision = "{head}"
    branch_labels = None
    depends_on = None


    # SQLite: force the copy-and-drop that would cascade; PostgreSQL: plain ALTERs (a recreate there
    # would have to drop the primary key other tables reference).
    def _recreate():
        return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


    def upgrade():
        with views_dropped(op.get_bind(), FEATURE_VIEWS_LATEST, SEGMENT_VIEWS_LATEST, **LATEST):
            with op.batch_alter_table("tracks", recreate=_recreate()) as batch:
                batch.add_column(sa.Column("test_note", sa.String(20), nullable=True))
                batch.alter_column("song", existing_type=sa.String(700), type_=sa.String(800))


    def downgrade():
        with views_dropped(op.get_bind(), FEATURE_VIEWS_LATEST, SEGMENT_VIEWS_LATEST, **LATEST):
            with op.batch_alter_table("tracks", recreate=_recreate()) as batch:
                batch.drop_column("test_note")
''')

CHILD_TABLES = ["students", "proposals", "genres", "genre_aliases", "track_genres", "extractions", "librosa_values",
                "librosa_segment_values", "service_state", "datasets", "dataset_members", "models", "predictions"]


def _fill_every_table(conn) -> None:
    conn.execute(insert(tables.students), [{"id": 1, "name": "ana"}, {"id": 2, "name": "ben"}])
    conn.execute(insert(tables.tracks), [
        {"id": i, "source": "sheet", "track_key": f"a{i}\x1ft{i}", "artist": f"A{i}", "title": f"T{i}",
         "song": f"A{i} - T{i}"} for i in range(1, 4)])
    conn.execute(insert(tables.proposals), [
        {"student_id": 1, "track_id": 1, "sheet_row": 2}, {"student_id": 2, "track_id": 1, "sheet_row": 3},
        {"student_id": 2, "track_id": 2, "sheet_row": 4}])
    metal = conn.execute(insert(tables.genres).values(name="metal", display_name="Metal")
                         .returning(tables.genres.c.id)).scalar_one()
    conn.execute(insert(tables.genre_aliases).values(alias="heavymetal", genre_id=metal))
    conn.execute(insert(tables.track_genres), [{"track_id": i, "rank": 0, "genre_id": metal} for i in (1, 2, 3)])
    conn.execute(insert(tables.extractions), [
        {"id": i, "track_id": i, "extractor": "librosa", "version": "1", "params_hash": "p", "status": "done"}
        for i in (1, 2, 3)])
    for i in (1, 2, 3):
        replace_values(conn, "librosa", i, dict.fromkeys(LIBROSA_V1[:5], float(i)),
                       [(s, 3.0 * s, {"tempo": 120.0}) for s in range(3)] if i == 1 else None)
    conn.execute(insert(tables.service_state).values(key="spotify_breaker", value="open"))
    conn.execute(insert(tables.datasets).values(id=1, name="small", definition={"features": "librosa"}))
    conn.execute(insert(tables.dataset_members), [
        {"dataset_id": 1, "track_id": i, "genre_id": metal} for i in (1, 2, 3)])
    conn.execute(text(dataset_view_sql("small", 1, "librosa", False, {"librosa_features": LIBROSA_V1})))
    conn.execute(insert(tables.models).values(id=1, dataset_id=1, dataset_name="small", dataset_snapshot={},
                                              kind="rf", params={}, feature_names=[], versions={}))
    conn.execute(insert(tables.predictions).values(model_id=1, track_id=1, genre="Metal", probabilities={}))


def _counts(conn) -> dict[str, int]:
    return {t: conn.execute(select(func.count()).select_from(tables.metadata.tables[t])).scalar_one()
            for t in ["tracks", *CHILD_TABLES]}


def test_batch_recreate_tracks_keeps_children_and_views(db_url, tmp_path):
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    head = migrate.current_revision(engine)
    with engine.begin() as conn:
        _fill_every_table(conn)
        before = _counts(conn)
        views_before = conn.execute(text("SELECT COUNT(*) FROM dataset_small")).scalar_one()
    assert all(before.values()), before
    assert views_before == 3

    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "9999_recreate_tracks.py").write_text(TEST_MIGRATION.format(head=head))
    cfg = migrate.alembic_config(engine)
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join([str(migrate.MIGRATIONS_DIR / "versions"),
                                                              str(versions)]))
    command.upgrade(cfg, "9999_recreate_tracks")

    with engine.connect() as conn:
        assert _counts(conn) == before
        cols = {r for r in conn.execute(text("SELECT * FROM tracks")).keys()}
        assert "test_note" in cols
        assert conn.execute(text("SELECT COUNT(*) FROM librosa_features")).scalar_one() == 3
        assert conn.execute(text("SELECT COUNT(*) FROM dataset_small")).scalar_one() == 3
        assert conn.execute(text("SELECT COUNT(*) FROM librosa_segment_features")).scalar_one() == 3
        if engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1  # back ON for normal use

    command.downgrade(cfg, head)
    with engine.connect() as conn:
        assert _counts(conn) == before
        assert conn.execute(text("SELECT COUNT(*) FROM dataset_small")).scalar_one() == 3
    engine.dispose()


def test_views_answer_plain_sql_on_both_databases(engine):
    with engine.begin() as conn:
        _fill_every_table(conn)
        rows = conn.execute(text(
            "SELECT coarse_genre, AVG(tempo) AS avg_tempo, AVG(chroma_stft_mean) AS avg_chroma FROM librosa_features "
            "GROUP BY coarse_genre")).all()
    assert [(r.coarse_genre, r.avg_chroma) for r in rows] == [("Metal", 2.0)]
    assert rows[0].avg_tempo is None  # tempo was not among the stored features
    assert set(FEATURE_VIEWS_V1) | set(SEGMENT_VIEWS_V1) <= set(
        __import__("sqlalchemy").inspect(engine).get_view_names())

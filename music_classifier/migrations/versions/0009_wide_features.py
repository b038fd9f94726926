"""Features: every extractor's values in wide tables; the long tables become views (issue 19).

librosa, Spotify and GTZAN-CSV values move from the long ``features`` / ``segment_features`` tables
(one row per extraction x feature name) to one table per extractor with a column per declared name,
as musicnn's have been since 0005 (``librosa_values``, ``librosa_segment_values``, ``spotify_values``,
``gtzan_csv_values``). Every value is carried over by one pivot per table; a long row the new tables
have no column for (a name no extractor declares) stops the migration with a message rather than
being lost. ``features`` and ``segment_features`` are then views of the same shape over all the wide
tables, so SQL written against the long form keeps working. The feature views become plain joins.

Revision ID: 0009_wide_features
Revises: 0008_search_index
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from music_classifier.db.feature_columns import (
    FEATURE_VIEWS_V2,
    SEGMENT_VIEWS_V2,
    WIDE_STORES_V1,
    WIDE_STORES_V2,
    WideStore,
)
from music_classifier.db.views import views_dropped
from music_classifier.errors import InputError

revision = "0009_wide_features"
down_revision = "0008_search_index"
branch_labels = None
depends_on = None

#: The stores this migration creates (musicnn's exist since 0005).
NEW_STORES: dict[str, WideStore] = {e: s for e, s in WIDE_STORES_V2.items() if e not in WIDE_STORES_V1}


def _values_table(name: str, columns: list[str], *, segments: bool) -> None:
    key = [sa.Column("extraction_id", sa.Integer, nullable=False)]
    pk = ["extraction_id"]
    if segments:
        key += [sa.Column("segment", sa.Integer, nullable=False), sa.Column("start_s", sa.Float, nullable=False)]
        pk.append("segment")
    op.create_table(
        name,
        *key,
        *(sa.Column(c, sa.Float, nullable=True) for c in columns),
        sa.PrimaryKeyConstraint(*pk, name=op.f(f"pk_{name}")),
        sa.ForeignKeyConstraint(["extraction_id"], ["extractions.id"], ondelete="CASCADE",
                                name=op.f(f"fk_{name}_extraction_id_extractions")),
    )


def _q(name: str) -> str:
    assert name.replace("_", "").isalnum() and name.islower(), name  # frozen names only
    return f'"{name}"'


def _unplaced(conn: sa.Connection, source: str, segments: bool) -> list[tuple[str, str, int]]:
    """(extractor, name, rows) of long rows no new table has a column for."""
    accepted = " OR ".join(
        f"(e.extractor = '{extractor}' AND f.name IN ({', '.join(repr(c) for c in store.columns)}))"
        for extractor, store in NEW_STORES.items() if (store.segment_table if segments else store.table))
    rows = conn.execute(sa.text(
        f"SELECT e.extractor, f.name, COUNT(*) FROM {source} f JOIN extractions e ON e.id = f.extraction_id "
        f"WHERE NOT ({accepted}) GROUP BY e.extractor, f.name ORDER BY e.extractor, f.name")).all()
    return [(str(e), str(n), int(c)) for e, n, c in rows]


def _pivot(conn: sa.Connection, extractor: str, store: WideStore, *, segments: bool) -> None:
    table = store.segment_table if segments else store.table
    source = "segment_features" if segments else "features"
    keys = "f.extraction_id" + (", f.segment" if segments else "")
    key_cols = "extraction_id" + (", segment, start_s" if segments else "")
    start = ", MAX(f.start_s)" if segments else ""
    columns = ", ".join(_q(c) for c in store.columns)
    pivot = ", ".join(f"MAX(CASE WHEN f.name = '{c}' THEN f.value END)" for c in store.columns)
    conn.execute(sa.text(
        f"INSERT INTO {_q(table)} ({key_cols}, {columns}) SELECT {keys}{start}, {pivot} "
        f"FROM {source} f JOIN extractions e ON e.id = f.extraction_id WHERE e.extractor = '{extractor}' "
        f"GROUP BY {keys}"))


def upgrade() -> None:
    conn = op.get_bind()
    for source, segments in (("features", False), ("segment_features", True)):
        unplaced = _unplaced(conn, source, segments)
        if unplaced:
            listed = "; ".join(f"{e} {n}: {c} rows" for e, n, c in unplaced[:10])
            raise InputError(f"0009_wide_features: {source} holds values no extractor declares ({listed}); "
                               "move or delete them, then upgrade again")
    with views_dropped(conn, FEATURE_VIEWS_V2, SEGMENT_VIEWS_V2, wide_stores=WIDE_STORES_V2, long_views=True):
        for extractor, store in NEW_STORES.items():
            _values_table(store.table, store.columns, segments=False)
            _pivot(conn, extractor, store, segments=False)
            if store.segment_table:
                _values_table(store.segment_table, store.columns, segments=True)
                _pivot(conn, extractor, store, segments=True)
        op.drop_table("segment_features")
        op.drop_table("features")


def downgrade() -> None:
    conn = op.get_bind()
    with views_dropped(conn, FEATURE_VIEWS_V2, SEGMENT_VIEWS_V2, wide_stores=WIDE_STORES_V1):
        op.create_table(
            "features",
            sa.Column("extraction_id", sa.Integer, nullable=False),
            sa.Column("name", sa.String(64), nullable=False),
            sa.Column("value", sa.Float, nullable=True),
            sa.PrimaryKeyConstraint("extraction_id", "name", name=op.f("pk_features")),
            sa.ForeignKeyConstraint(["extraction_id"], ["extractions.id"], ondelete="CASCADE",
                                    name=op.f("fk_features_extraction_id_extractions")),
        )
        op.create_table(
            "segment_features",
            sa.Column("extraction_id", sa.Integer, nullable=False),
            sa.Column("segment", sa.Integer, nullable=False),
            sa.Column("start_s", sa.Float, nullable=False),
            sa.Column("name", sa.String(64), nullable=False),
            sa.Column("value", sa.Float, nullable=True),
            sa.PrimaryKeyConstraint("extraction_id", "segment", "name", name=op.f("pk_segment_features")),
            sa.ForeignKeyConstraint(["extraction_id"], ["extractions.id"], ondelete="CASCADE",
                                    name=op.f("fk_segment_features_extraction_id_extractions")),
        )
        for store in NEW_STORES.values():
            for c in store.columns:  # one column at a time back to long rows (NULL: no row, as before)
                conn.execute(sa.text(f"INSERT INTO features (extraction_id, name, value) SELECT extraction_id, "
                                     f"'{c}', {_q(c)} FROM {_q(store.table)} WHERE {_q(c)} IS NOT NULL"))
                if store.segment_table:
                    conn.execute(sa.text(
                        f"INSERT INTO segment_features (extraction_id, segment, start_s, name, value) "
                        f"SELECT extraction_id, segment, start_s, '{c}', {_q(c)} FROM {_q(store.segment_table)} "
                        f"WHERE {_q(c)} IS NOT NULL"))
            if store.segment_table:
                op.drop_table(store.segment_table)
            op.drop_table(store.table)

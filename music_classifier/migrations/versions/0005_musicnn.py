"""Features: the musicnn extractor's tables and views (issue 11).

musicnn gives 450 values per extraction (and per 3 s segment). Pivoting that many names out of the
long ``features`` table costs (features)^2 CASE evaluations per row on SQLite, so its values get
tables with one column per feature, and its views are plain joins (see feature_columns.WideStore).

Revision ID: 0005_musicnn
Revises: 0004_ingest_files
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from music_classifier.db.feature_columns import (
    FEATURE_VIEWS_V1,
    FEATURE_VIEWS_V2,
    SEGMENT_VIEWS_V1,
    SEGMENT_VIEWS_V2,
    WIDE_STORES_V1,
)
from music_classifier.db.views import views_dropped

revision = "0005_musicnn"
down_revision = "0004_ingest_files"
branch_labels = None
depends_on = None

STORE = WIDE_STORES_V1["musicnn"]


def _values_table(name: str, *, segments: bool) -> None:
    key = [sa.Column("extraction_id", sa.Integer, nullable=False)]
    pk = ["extraction_id"]
    if segments:
        key += [sa.Column("segment", sa.Integer, nullable=False), sa.Column("start_s", sa.Float, nullable=False)]
        pk.append("segment")
    op.create_table(
        name,
        *key,
        *(sa.Column(c, sa.Float, nullable=True) for c in STORE.columns),
        sa.PrimaryKeyConstraint(*pk, name=op.f(f"pk_{name}")),
        sa.ForeignKeyConstraint(["extraction_id"], ["extractions.id"], ondelete="CASCADE",
                                name=op.f(f"fk_{name}_extraction_id_extractions")),
    )


def upgrade() -> None:
    conn = op.get_bind()
    with views_dropped(conn, FEATURE_VIEWS_V2, SEGMENT_VIEWS_V2, wide_stores=WIDE_STORES_V1):
        _values_table(STORE.table, segments=False)
        _values_table(STORE.segment_table, segments=True)


def downgrade() -> None:
    conn = op.get_bind()
    with views_dropped(conn, FEATURE_VIEWS_V1, SEGMENT_VIEWS_V1):  # the musicnn views go with their tables
        op.drop_table(STORE.segment_table)
        op.drop_table(STORE.table)

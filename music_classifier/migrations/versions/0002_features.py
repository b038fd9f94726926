"""Features: extractions, long-form features, segment features, service state, feature views.

Revision ID: 0002_features
Revises: 0001_foundation
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from music_classifier.db.feature_columns import FEATURE_VIEWS_V1, SEGMENT_VIEWS_V1
from music_classifier.db.views import views_dropped

revision = "0002_features"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

STATUSES = "('queued', 'running', 'done', 'failed', 'stale')"


def upgrade() -> None:
    conn = op.get_bind()
    with views_dropped(conn, FEATURE_VIEWS_V1, SEGMENT_VIEWS_V1):
        with op.batch_alter_table("tracks") as batch:
            # How the Spotify id was found: search/dataset match score in [0, 1]; 'not_found' is recorded, not guessed.
            batch.add_column(sa.Column("spotify_match_score", sa.Float, nullable=True))
            batch.add_column(sa.Column("spotify_lookup", sa.String(20), nullable=True))
            # Playlist a track came from (Spotify playlist or a CSV's playlist_id), for playlist-grouped evaluation.
            batch.add_column(sa.Column("playlist_id", sa.String(64), nullable=True))

        op.create_table(
            "extractions",
            sa.Column("id", sa.Integer),
            sa.Column("track_id", sa.Integer, nullable=False),
            sa.Column("extractor", sa.String(40), nullable=False),
            sa.Column("version", sa.String(20), nullable=False),
            sa.Column("params_hash", sa.String(32), nullable=False),
            sa.Column("params", sa.JSON, nullable=True),
            sa.Column("status", sa.String(10), nullable=False, server_default="queued"),
            sa.Column("error", sa.Text, nullable=True),
            sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
            sa.Column("worker", sa.String(200), nullable=True),
            sa.Column("rq_job_id", sa.String(64), nullable=True),
            sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("seconds", sa.Float, nullable=True),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_extractions")),
            sa.ForeignKeyConstraint(["track_id"], ["tracks.id"], ondelete="CASCADE",
                                    name=op.f("fk_extractions_track_id_tracks")),
            sa.UniqueConstraint("track_id", "extractor", "version", "params_hash",
                                name=op.f("uq_extractions_track_id_extractor_version_params_hash")),
            sa.CheckConstraint(f"status IN {STATUSES}", name=op.f("ck_extractions_status")),
        )
        op.create_index(op.f("ix_extractions_extractor_status"), "extractions", ["extractor", "status"])
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
        # Small key/value store shared by every worker, e.g. the Spotify audio-features circuit breaker.
        op.create_table(
            "service_state",
            sa.Column("key", sa.String(64), nullable=False),
            sa.Column("value", sa.Text, nullable=True),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
            sa.PrimaryKeyConstraint("key", name=op.f("pk_service_state")),
        )


def downgrade() -> None:
    conn = op.get_bind()
    with views_dropped(conn, {}, {}):
        op.drop_table("service_state")
        op.drop_table("segment_features")
        op.drop_table("features")
        op.drop_index(op.f("ix_extractions_extractor_status"), table_name="extractions")
        op.drop_table("extractions")
        with op.batch_alter_table("tracks") as batch:
            batch.drop_column("playlist_id")
            batch.drop_column("spotify_lookup")
            batch.drop_column("spotify_match_score")

"""Ingest: a sheet row's own audio file (issue 8).

``tracks.audio_origin`` says who chose a track's ``audio_path`` when a person did: ``sheet`` (the
sheet's file column names it) or ``link`` (``audio link FILE --track ID``). NULL means the audio scan
found the file (or there is none). ``audio scan`` never moves a track whose path a person chose to
another file, nor gives that file to another track; a re-sync keeps a ``sheet`` path while the row
names it.

Revision ID: 0004_ingest_files
Revises: 0003_models
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from music_classifier.db.feature_columns import FEATURE_VIEWS_V1, SEGMENT_VIEWS_V1
from music_classifier.db.views import views_dropped

revision = "0004_ingest_files"
down_revision = "0003_models"
branch_labels = None
depends_on = None

ORIGINS = "('sheet', 'link')"


def upgrade() -> None:
    with views_dropped(op.get_bind(), FEATURE_VIEWS_V1, SEGMENT_VIEWS_V1):
        with op.batch_alter_table("tracks") as batch:
            batch.add_column(sa.Column("audio_origin", sa.String(10), nullable=True))
            batch.create_check_constraint(op.f("ck_tracks_audio_origin"), f"audio_origin IN {ORIGINS}")


def downgrade() -> None:
    with views_dropped(op.get_bind(), FEATURE_VIEWS_V1, SEGMENT_VIEWS_V1):
        with op.batch_alter_table("tracks") as batch:
            batch.drop_constraint(op.f("ck_tracks_audio_origin"), type_="check")
            batch.drop_column("audio_origin")

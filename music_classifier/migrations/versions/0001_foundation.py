"""Foundation: students, tracks, proposals, genres, genre aliases, track genres.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None

# Spellings a real class sheet holds, and the labels public Spotify datasets use. Keys are already
# normalised (lower case, letters and digits only), as music_classifier.ingest.genres.genre_key does.
DEFAULT_GENRES = {
    "indierock": "Indie Rock",
    "alternativerock": "Alternative Rock",
    "classical": "Classical",
    "electronic": "Electronic",
    "hiphop": "Hip-Hop",
}
DEFAULT_ALIASES = {
    "indirock": "indierock",
    "altrock": "alternativerock",
    "classic": "classical",
    "edm": "electronic",
    "rap": "hiphop",
}


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "students",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_students")),
        sa.UniqueConstraint("name", name=op.f("uq_students_name")),
    )
    op.create_table(
        "tracks",
        sa.Column("id", sa.Integer),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("track_key", sa.String(700), nullable=False),
        sa.Column("artist", sa.String(300), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("song", sa.String(700), nullable=False),
        sa.Column("audio_path", sa.String(1024), nullable=True),
        sa.Column("file_sha256", sa.String(64), nullable=True),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("sample_rate", sa.Integer, nullable=True),
        sa.Column("channels", sa.SmallInteger, nullable=True),
        sa.Column("spotify_id", sa.String(64), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracks")),
        sa.UniqueConstraint("source", "track_key", name=op.f("uq_tracks_source_track_key")),
        sa.UniqueConstraint("audio_path", name=op.f("uq_tracks_audio_path")),
        sa.CheckConstraint(
            "source IN ('sheet', 'file', 'spotify_playlist', 'csv')", name=op.f("ck_tracks_source")
        ),
    )
    op.create_index(op.f("ix_tracks_spotify_id"), "tracks", ["spotify_id"])
    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer),
        sa.Column("student_id", sa.Integer, nullable=False),
        sa.Column("track_id", sa.Integer, nullable=False),
        sa.Column("sheet_row", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposals")),
        sa.ForeignKeyConstraint(["student_id"], ["students.id"], ondelete="CASCADE",
                                name=op.f("fk_proposals_student_id_students")),
        sa.ForeignKeyConstraint(["track_id"], ["tracks.id"], ondelete="CASCADE",
                                name=op.f("fk_proposals_track_id_tracks")),
        sa.UniqueConstraint("student_id", "track_id", name=op.f("uq_proposals_student_id_track_id")),
    )
    op.create_index(op.f("ix_proposals_track_id"), "proposals", ["track_id"])
    genres = op.create_table(
        "genres",
        sa.Column("id", sa.Integer),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_genres")),
        sa.UniqueConstraint("name", name=op.f("uq_genres_name")),
    )
    aliases = op.create_table(
        "genre_aliases",
        sa.Column("id", sa.Integer),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("genre_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_genre_aliases")),
        sa.ForeignKeyConstraint(["genre_id"], ["genres.id"], ondelete="CASCADE",
                                name=op.f("fk_genre_aliases_genre_id_genres")),
        sa.UniqueConstraint("alias", name=op.f("uq_genre_aliases_alias")),
    )
    op.create_table(
        "track_genres",
        sa.Column("track_id", sa.Integer, nullable=False),
        sa.Column("rank", sa.SmallInteger, nullable=False),
        sa.Column("genre_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("track_id", "rank", name=op.f("pk_track_genres")),
        sa.ForeignKeyConstraint(["track_id"], ["tracks.id"], ondelete="CASCADE",
                                name=op.f("fk_track_genres_track_id_tracks")),
        sa.ForeignKeyConstraint(["genre_id"], ["genres.id"], ondelete="RESTRICT",
                                name=op.f("fk_track_genres_genre_id_genres")),
        sa.CheckConstraint("rank BETWEEN 0 AND 3", name=op.f("ck_track_genres_rank")),
    )
    op.create_index(op.f("ix_track_genres_genre_id"), "track_genres", ["genre_id"])

    keys = list(DEFAULT_GENRES)
    op.bulk_insert(genres, [
        {"id": i + 1, "name": k, "display_name": DEFAULT_GENRES[k]} for i, k in enumerate(keys)
    ])
    op.bulk_insert(aliases, [
        {"alias": a, "genre_id": keys.index(g) + 1} for a, g in DEFAULT_ALIASES.items()
    ])
    if op.get_bind().dialect.name == "postgresql":
        # Explicit ids above do not advance the serial sequence.
        op.execute("SELECT setval(pg_get_serial_sequence('genres', 'id'), (SELECT MAX(id) FROM genres))")


def downgrade() -> None:
    op.drop_table("track_genres")
    op.drop_table("genre_aliases")
    op.drop_table("genres")
    op.drop_table("proposals")
    op.drop_table("tracks")
    op.drop_table("students")

"""SQL tables (SQLAlchemy Core). The migrations are the source of truth for the schema; these
definitions mirror them for queries. One MetaData naming convention gives every constraint the
same name on SQLite and PostgreSQL, which batch migrations need to find them again.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    func,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TRACK_SOURCES = ("sheet", "file", "spotify_playlist", "csv")
MAX_TEXT = 300  # artist, title, student name: longer values are rejected as bad rows
MAX_GENRE = 64

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _timestamps() -> list[Column]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


students = Table(
    "students",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(MAX_TEXT), nullable=False),
    UniqueConstraint("name"),
)

tracks = Table(
    "tracks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(20), nullable=False),
    # Identity within a source: normalised "artist\x1ftitle" for sheet and file tracks, the Spotify id
    # for playlist and CSV tracks. Re-syncs upsert on (source, track_key), which makes them idempotent.
    Column("track_key", String(700), nullable=False),
    Column("artist", String(MAX_TEXT), nullable=False),
    Column("title", String(MAX_TEXT), nullable=False),
    Column("song", String(700), nullable=False),
    Column("audio_path", String(1024), nullable=True),  # relative to the library root, POSIX separators
    Column("file_sha256", String(64), nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("sample_rate", Integer, nullable=True),
    Column("channels", SmallInteger, nullable=True),
    Column("spotify_id", String(64), nullable=True),
    Column("removed_at", DateTime(timezone=True), nullable=True),
    *_timestamps(),
    UniqueConstraint("source", "track_key"),
    UniqueConstraint("audio_path"),
    CheckConstraint("source IN ('sheet', 'file', 'spotify_playlist', 'csv')", name="source"),
)

proposals = Table(
    "proposals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("student_id", Integer, ForeignKey("students.id", ondelete="CASCADE"), nullable=False),
    Column("track_id", Integer, ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False),
    Column("sheet_row", Integer, nullable=False),
    UniqueConstraint("student_id", "track_id"),
)

genres = Table(
    "genres",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(MAX_GENRE), nullable=False),  # normalised key, e.g. "hiphop"
    Column("display_name", String(MAX_GENRE), nullable=False),  # e.g. "Hip-Hop"
    UniqueConstraint("name"),
)

genre_aliases = Table(
    "genre_aliases",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("alias", String(MAX_GENRE), nullable=False),  # normalised spelling, e.g. "indirock"
    Column("genre_id", Integer, ForeignKey("genres.id", ondelete="CASCADE"), nullable=False),
    UniqueConstraint("alias"),
)

track_genres = Table(
    "track_genres",
    metadata,
    Column("track_id", Integer, ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
    Column("rank", SmallInteger, primary_key=True),  # 0 = coarse genre, 1..3 = subgenres
    Column("genre_id", Integer, ForeignKey("genres.id", ondelete="RESTRICT"), nullable=False),
    CheckConstraint("rank BETWEEN 0 AND 3", name="rank"),
)


"""How many live tracks each coarse genre holds, and how far the biggest genres are from a target.

A classifier needs enough examples per class; a class sheet has a long tail of genres with one or
two tracks. This report says which of the top N genres need how many more tracks (and how many
more with audio, which the librosa features need) to reach K.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, case, func, select

from music_classifier.db.tables import genres, track_genres, tracks


@dataclass(frozen=True)
class GenreCount:
    genre: str  # display name
    tracks: int
    with_audio: int
    with_spotify_id: int


@dataclass(frozen=True)
class GenreShortfall:
    genre: str
    tracks: int
    need_tracks: int  # more live tracks to reach the target
    need_audio: int  # more tracks with audio to reach the target


@dataclass(frozen=True)
class GenreReport:
    counts: list[GenreCount]  # every coarse genre with at least one live track, biggest first
    top: int
    min_tracks: int
    shortfalls: list[GenreShortfall]  # of the top N genres, those below the target


def genre_counts(conn: Connection) -> list[GenreCount]:
    """Live tracks per coarse genre (rank 0), biggest first, ties by name."""
    n_tracks = func.count(tracks.c.id)
    query = (
        select(
            genres.c.display_name,
            n_tracks,
            func.sum(case((tracks.c.audio_path.is_not(None), 1), else_=0)),
            func.sum(case((tracks.c.spotify_id.is_not(None), 1), else_=0)),
        )
        .select_from(track_genres.join(tracks, tracks.c.id == track_genres.c.track_id)
                     .join(genres, genres.c.id == track_genres.c.genre_id))
        .where(track_genres.c.rank == 0, tracks.c.removed_at.is_(None))
        .group_by(genres.c.id, genres.c.display_name)
        .order_by(n_tracks.desc(), genres.c.display_name)
    )
    return [GenreCount(name, int(n), int(audio or 0), int(spotify or 0))
            for name, n, audio, spotify in conn.execute(query)]


def genre_report(conn: Connection, *, top: int = 10, min_tracks: int = 30) -> GenreReport:
    """Counts per coarse genre, and which of the ``top`` biggest genres fall short of ``min_tracks``."""
    if top < 1 or min_tracks < 1:
        from music_classifier.errors import InputError

        raise InputError("--top and --min must be at least 1")
    counts = genre_counts(conn)
    shortfalls = [
        GenreShortfall(c.genre, c.tracks, max(0, min_tracks - c.tracks), max(0, min_tracks - c.with_audio))
        for c in counts[:top]
        if c.tracks < min_tracks or c.with_audio < min_tracks
    ]
    return GenreReport(counts=counts, top=top, min_tracks=min_tracks, shortfalls=shortfalls)

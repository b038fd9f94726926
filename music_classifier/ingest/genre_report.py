"""How many live tracks each coarse genre holds, and how far the biggest genres are from a target.

A track counts under its effective genre (view ``track_effective_genres``: its label decision, else
the sheet's coarse genre), as ``dataset create`` counts it.

A classifier needs enough examples per class; a class sheet has a long tail of genres with one or
two tracks. This report says which of the top N genres need how many more tracks (and how many
more with audio, which the librosa features need) to reach K.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, case, func, select

from music_classifier.db.tables import TRACK_SOURCES, genres, track_effective_genres, tracks
from music_classifier.errors import InputError


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
    # genre -> {source: live tracks}: a class's own tracks (sheet, file) apart from imported tables
    # (spotify_playlist, csv: feature-only by design), so those never blur the class's counts.
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # the sources counted, in TRACK_SOURCES order


def _check_sources(sources: Sequence[str] | None) -> list[str]:
    if not sources:
        return list(TRACK_SOURCES)
    unknown = [s for s in sources if s not in TRACK_SOURCES]
    if unknown:
        raise InputError(f"--source {unknown[0]!r} is not a track source (one of: {', '.join(TRACK_SOURCES)})")
    return [s for s in TRACK_SOURCES if s in sources]


def _live_coarse(sources: list[str]):  # noqa: ANN202 - a select's FROM and WHERE, shared by both counts
    # The effective genre (a label decision, else the sheet's coarse genre): what `dataset create` counts.
    eg = track_effective_genres
    joined = (eg.join(tracks, tracks.c.id == eg.c.track_id)
              .join(genres, genres.c.id == eg.c.genre_id))
    where = [tracks.c.removed_at.is_(None)]
    if len(sources) < len(TRACK_SOURCES):
        where.append(tracks.c.source.in_(sources))
    return joined, where


def genre_counts(conn: Connection, *, sources: Sequence[str] | None = None) -> list[GenreCount]:
    """Live tracks per coarse genre (rank 0), biggest first, ties by name; only ``sources`` if given."""
    joined, where = _live_coarse(_check_sources(sources))
    n_tracks = func.count(tracks.c.id)
    query = (
        select(
            genres.c.display_name,
            n_tracks,
            func.sum(case((tracks.c.audio_path.is_not(None), 1), else_=0)),
            func.sum(case((tracks.c.spotify_id.is_not(None), 1), else_=0)),
        )
        .select_from(joined)
        .where(*where)
        .group_by(genres.c.id, genres.c.display_name)
        .order_by(n_tracks.desc(), genres.c.display_name)
    )
    return [GenreCount(name, int(n), int(audio or 0), int(spotify or 0))
            for name, n, audio, spotify in conn.execute(query)]


def genre_source_counts(conn: Connection, *, sources: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
    """Live tracks per coarse genre and track source: {display name: {source: tracks}}."""
    joined, where = _live_coarse(_check_sources(sources))
    query = (select(genres.c.display_name, tracks.c.source, func.count(tracks.c.id)).select_from(joined)
             .where(*where).group_by(genres.c.display_name, tracks.c.source))
    counts: dict[str, dict[str, int]] = {}
    for genre, source, n in conn.execute(query):
        counts.setdefault(genre, {})[source] = int(n)
    return counts


def genre_report(conn: Connection, *, top: int = 10, min_tracks: int = 30,
                 sources: Sequence[str] | None = None) -> GenreReport:
    """Counts per coarse genre (and per source), and which of the ``top`` biggest genres fall short
    of ``min_tracks``; with ``sources``, only tracks from those sources count."""
    if top < 1 or min_tracks < 1:
        raise InputError("--top and --min must be at least 1")
    counted = _check_sources(sources)
    counts = genre_counts(conn, sources=counted)
    by_source = genre_source_counts(conn, sources=counted)
    present = {s for per in by_source.values() for s in per}
    shortfalls = [
        GenreShortfall(c.genre, c.tracks, max(0, min_tracks - c.tracks), max(0, min_tracks - c.with_audio))
        for c in counts[:top]
        if c.tracks < min_tracks or c.with_audio < min_tracks
    ]
    return GenreReport(counts=counts, top=top, min_tracks=min_tracks, shortfalls=shortfalls, by_source=by_source,
                       sources=[s for s in counted if s in present])

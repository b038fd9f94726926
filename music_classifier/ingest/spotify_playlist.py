"""A Spotify playlist -> tracks of source ``spotify_playlist`` with one coarse genre.

Identity is the Spotify id (``track_key`` = ``spotify_id``), so re-importing a playlist updates in
place: nothing is duplicated, soft-deleted tracks come back, and the genre given last wins. The
playlist id is kept on each track for playlist-grouped evaluation. The network part (fetching all
pages) happens before the transaction opens; the write is one transaction owned by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, func, insert, select, update

from music_classifier.db.tables import MAX_TEXT, genres, track_genres, tracks
from music_classifier.ingest.genres import resolve_genres, validate_genre_name

if TYPE_CHECKING:
    from music_classifier.features.spotify_provider import Playlist, SpotifyCatalog

SOURCE = "spotify_playlist"
MAX_SONG = tracks.c.song.type.length
CHUNK = 500  # keys per IN (...) query


@dataclass
class PlaylistImportReport:
    playlist_id: str
    genre: str  # display name the tracks were filed under (after aliases)
    added: int = 0
    updated: int = 0  # artist/title/playlist changed, genre changed, or revived from soft delete
    unchanged: int = 0
    skipped: int = 0  # local files, episodes, unavailable tracks
    duplicates: int = 0  # the same track listed twice in the playlist
    genre_alias_applied: dict[str, str] = field(default_factory=dict)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def store_playlist(conn: Connection, playlist: Playlist, genre: str) -> PlaylistImportReport:
    """Upsert the playlist's tracks and their coarse genre, in the caller's transaction."""
    resolution = resolve_genres(conn, [genre])
    genre_id = resolution.ids[genre]
    display = conn.execute(select(genres.c.display_name).where(genres.c.id == genre_id)).scalar_one()
    report = PlaylistImportReport(playlist.playlist_id, display, skipped=playlist.skipped,
                                  genre_alias_applied=resolution.applied)
    wanted: dict[str, dict[str, object]] = {}
    for t in playlist.tracks:
        if t.spotify_id in wanted:
            report.duplicates += 1
            continue
        artist, title = _clip(t.artist, MAX_TEXT), _clip(t.title, MAX_TEXT)
        wanted[t.spotify_id] = {"artist": artist, "title": title, "song": _clip(f"{artist} - {title}", MAX_SONG),
                                "spotify_id": t.spotify_id, "playlist_id": playlist.playlist_id}
    keys = list(wanted)
    stored: dict[str, tuple] = {}
    for start in range(0, len(keys), CHUNK):
        rows = conn.execute(
            select(tracks.c.track_key, tracks.c.id, tracks.c.artist, tracks.c.title, tracks.c.playlist_id,
                   tracks.c.removed_at, track_genres.c.genre_id)
            .outerjoin(track_genres, (track_genres.c.track_id == tracks.c.id) & (track_genres.c.rank == 0))
            .where(tracks.c.source == SOURCE, tracks.c.track_key.in_(keys[start:start + CHUNK])))
        stored.update({r.track_key: tuple(r)[1:] for r in rows})

    new = [k for k in keys if k not in stored]
    if new:
        conn.execute(insert(tracks), [{"source": SOURCE, "track_key": k, "spotify_match_score": 1.0,
                                       "spotify_lookup": "found", **wanted[k]} for k in new])
        for start in range(0, len(new), CHUNK):
            ids = conn.execute(select(tracks.c.id).where(tracks.c.source == SOURCE,
                                                         tracks.c.track_key.in_(new[start:start + CHUNK])))
            conn.execute(insert(track_genres), [{"track_id": tid, "rank": 0, "genre_id": genre_id} for (tid,) in ids])
        report.added = len(new)

    for key, (track_id, artist, title, playlist_id, removed_at, old_genre) in stored.items():
        row = wanted[key]
        changed = (artist, title, playlist_id) != (row["artist"], row["title"], row["playlist_id"]) \
            or removed_at is not None
        if changed:
            conn.execute(update(tracks).where(tracks.c.id == track_id).values(
                artist=row["artist"], title=row["title"], song=row["song"], playlist_id=row["playlist_id"],
                spotify_id=key, removed_at=None, updated_at=func.now()))
        if old_genre is None:
            conn.execute(insert(track_genres).values(track_id=track_id, rank=0, genre_id=genre_id))
        elif old_genre != genre_id:
            conn.execute(update(track_genres).where(track_genres.c.track_id == track_id, track_genres.c.rank == 0)
                         .values(genre_id=genre_id))
        if changed or old_genre != genre_id:
            report.updated += 1
        else:
            report.unchanged += 1
    return report


def import_playlist(engine: Engine, ref: str, genre: str, *, catalog: SpotifyCatalog) -> PlaylistImportReport:
    """Fetch every page of the playlist (URL, URI or id), then store it in one transaction."""
    validate_genre_name(genre)  # a bad --genre fails before any request
    playlist = catalog.playlist(ref)
    with engine.begin() as conn:
        return store_playlist(conn, playlist, genre)

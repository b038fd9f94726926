"""Registering unmatched audio files as new tracks (source 'file'): ``--add-unmatched`` and ``--genre-from-folder``.

A file track's identity (``track_key``) is its artist + title, from its tags, else from what its
file name clearly states ("Artist - Title", "Artist_Title", "NN - Title" inside an "Artist/" folder
below the genre folder); a file that states neither (GTZAN's ``blues.00000.wav``) is identified by its
path, with the cleaned-up file name as title and no artist -- unique, and stable across re-scans.
Re-running finds every registered file by its stored path, so nothing is added twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from sqlalchemy import Connection, bindparam, func, insert, select, update

from music_classifier.db.tables import MAX_TEXT, track_genres, tracks
from music_classifier.ingest.audio_files import ScannedFile
from music_classifier.ingest.file_names import display_guess, name_guesses, stem_variants
from music_classifier.ingest.keys import track_key
from music_classifier.ingest.track_matching import MatchedFile, StoredTrack
from music_classifier.text_safety import clean_text

_MAX_PATH_KEY = 690  # track_key is 700 characters; longer paths are hashed


@dataclass(frozen=True)
class FileTrackIdentity:
    key: str
    artist: str
    title: str
    song: str


def file_track_identity(f: ScannedFile, below_genre: str) -> FileTrackIdentity:
    """Who a new file track is. ``below_genre``: the file's path below its genre folder (or the scanned one)."""
    artist, title = (f.tag_artist, f.tag_title) if f.tag_artist and f.tag_title else display_guess(f.rel)
    if not (artist and title):
        from_folder = [g for g in name_guesses(below_genre) if g.shape == "folder artist"]
        if from_folder:
            artist, title = from_folder[0].artist, from_folder[0].title
    if artist and title:
        artist, title = artist[:MAX_TEXT], title[:MAX_TEXT]
        return FileTrackIdentity(track_key(artist, title), artist, title, f"{artist} - {title}")
    name = (f.tag_title or stem_variants(f.rel)[-1] or clean_text(PurePosixPath(f.rel).stem))[:MAX_TEXT]
    # No artist/title: the relative path identifies the file (hashed when too long for track_key).
    key = f.rel if len(f.rel) <= _MAX_PATH_KEY else "sha256:" + hashlib.sha256(f.rel.encode()).hexdigest()
    return FileTrackIdentity(f"path:{key}", "", name, name)


@dataclass
class AddedFiles:
    added: list[MatchedFile]
    refused: dict[str, str]  # file path -> reason it was not added
    per_genre: dict[int, int]  # genre id -> tracks added


def add_file_tracks(conn: Connection, files: list[tuple[ScannedFile, int, str]],
                    all_tracks: list[StoredTrack]) -> AddedFiles:
    """Insert (or revive) one 'file' track per (file, genre id, path below genre folder), in bulk."""
    existing = {
        r.track_key: r.id
        for r in conn.execute(select(tracks.c.id, tracks.c.track_key).where(tracks.c.source == "file"))
    }
    removed_ids = {t.id for t in all_tracks if t.removed}
    new_rows: list[dict] = []
    revived: list[dict] = []
    genre_of: dict[str, int] = {}
    seen: dict[str, str] = {}
    refused: dict[str, str] = {}
    for f, genre_id, below in files:
        assert f.info is not None
        who = file_track_identity(f, below)
        if who.key in seen:
            refused[f.rel] = f"same song as {seen[who.key]}"
            continue
        seen[who.key] = f.rel
        values = {"audio_path": f.rel, "file_sha256": f.sha256, "duration_s": f.info.duration_s,
                  "sample_rate": f.info.sample_rate, "channels": f.info.channels}
        old_id = existing.get(who.key)
        if old_id is not None and old_id in removed_ids:
            revived.append({"b_id": old_id, **{f"b_{k}": v for k, v in values.items()}})
        elif old_id is None:
            new_rows.append({"source": "file", "track_key": who.key, "artist": who.artist, "title": who.title,
                             "song": who.song, **values})
        else:  # a live file track with this key already has other audio
            refused[f.rel] = f"same song as track #{old_id}"
            continue
        genre_of[f.rel] = genre_id
    ids_by_path: dict[str, int] = {}
    if new_rows:
        inserted = conn.execute(insert(tracks).returning(tracks.c.id, sort_by_parameter_order=True), new_rows).all()
        ids_by_path.update({row["audio_path"]: r.id for row, r in zip(new_rows, inserted, strict=True)})
    if revived:
        conn.execute(
            update(tracks).where(tracks.c.id == bindparam("b_id")).values(
                removed_at=None, audio_path=bindparam("b_audio_path"), file_sha256=bindparam("b_file_sha256"),
                duration_s=bindparam("b_duration_s"), sample_rate=bindparam("b_sample_rate"),
                channels=bindparam("b_channels"), updated_at=func.now()),
            revived,
        )
        conn.execute(track_genres.delete().where(track_genres.c.track_id.in_([r["b_id"] for r in revived]),
                                                 track_genres.c.rank == 0))
        ids_by_path.update({r["b_audio_path"]: r["b_id"] for r in revived})
    if ids_by_path:
        conn.execute(insert(track_genres), [{"track_id": tid, "rank": 0, "genre_id": genre_of[path]}
                                            for path, tid in ids_by_path.items()])
    per_genre: dict[int, int] = {}
    for path in ids_by_path:
        per_genre[genre_of[path]] = per_genre.get(genre_of[path], 0) + 1
    added = [MatchedFile(path, tid, "added") for path, tid in sorted(ids_by_path.items())]
    return AddedFiles(added, refused, per_genre)

"""Audio library scan: link the audio files under the library root to tracks.

A file is matched to a live track by, in order: the path already stored on a track, the
normalised artist + title of its tags, the same from an "Artist - Title" file name, and last a
fuzzy match (see ``FUZZY_THRESHOLD``). The scan records the file's path (relative to the library
root, POSIX separators), sha256, duration, sample rate and channels. It writes only what changed,
in bulk, inside the caller's transaction; a file whose content changed marks its finished
feature extractions stale.

The pieces live in sibling modules, by concept: ``library_paths`` (root, scan directory, walking,
symlink refusal), ``audio_files`` (header info, tags, file names, sha256) and ``track_matching``
(the matcher and ``FUZZY_THRESHOLD``). Their public names are re-exported here, so callers keep
importing them from ``music_classifier.ingest.audio_scan``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sqlalchemy import Connection, bindparam, func, insert, select, update

from music_classifier.db.tables import MAX_TEXT, extractions, track_genres, tracks
from music_classifier.errors import InputError, PathOutsideLibrary
from music_classifier.ingest.audio_files import (
    HASH_CHUNK,
    AudioFileInfo,
    ScannedFile,
    ScanProgress,
    parse_file_name,
    read_audio_info,
    read_scanned_file,
    read_tags,
    sha256_file,
)
from music_classifier.ingest.keys import track_key
from music_classifier.ingest.library_paths import (
    M4A_EXTENSIONS,
    MAX_AUDIO_PATH,
    SNDFILE_EXTENSIONS,
    SkippedFile,
    m4a_decodable,
    resolve_in_library,
    resolve_scan_dir,
    supported_extensions,
    walk_audio_files,
)
from music_classifier.ingest.track_matching import (
    FUZZY_THRESHOLD,
    MatchedFile,
    StoredTrack,
    TrackMatcher,
    fuzzy_score,
    load_tracks,
)

__all__ = [
    "FUZZY_THRESHOLD",
    "HASH_CHUNK",
    "M4A_EXTENSIONS",
    "MAX_AUDIO_PATH",
    "SNDFILE_EXTENSIONS",
    "AudioFileInfo",
    "MatchedFile",
    "ScanProgress",
    "ScanReport",
    "SkippedFile",
    "TrackWithoutAudio",
    "UnmatchedFile",
    "fuzzy_score",
    "m4a_decodable",
    "mark_features_stale",
    "parse_file_name",
    "read_audio_info",
    "read_tags",
    "resolve_in_library",
    "resolve_scan_dir",
    "scan_library",
    "sha256_file",
    "supported_extensions",
    "walk_audio_files",
]


@dataclass(frozen=True)
class UnmatchedFile:
    path: str
    artist: str | None
    title: str | None
    reason: str


@dataclass(frozen=True)
class TrackWithoutAudio:
    track_id: int
    artist: str
    title: str
    reason: str


@dataclass
class ScanReport:
    root: Path
    directory: Path
    files_seen: int = 0
    matched: list[MatchedFile] = field(default_factory=list)
    updated: int = 0  # tracks whose audio columns were written
    unchanged: int = 0
    marked_stale: int = 0  # extraction rows turned from done to stale
    added: list[MatchedFile] = field(default_factory=list)  # new 'file' tracks (--add-unmatched)
    genre_applied: dict[str, str] = field(default_factory=dict)
    unmatched: list[UnmatchedFile] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    without_audio: list[TrackWithoutAudio] = field(default_factory=list)


def scan_library(
    conn: Connection,
    *,
    root: Path,
    subdir: Path | None = None,
    add_unmatched_genre: str | None = None,
    progress: ScanProgress | None = None,
) -> ScanReport:
    """Scan ``subdir`` (default: the whole library ``root``) and link its audio files to tracks.

    Writes only what changed, in bulk, in the caller's transaction. With ``add_unmatched_genre``,
    files matching no track become new tracks (source 'file') of that coarse genre, aliases applied.
    Raises PathOutsideLibrary when ``subdir`` is outside ``root``; unreadable files are reported.
    """
    root, directory = resolve_scan_dir(root, subdir)
    report = ScanReport(root=root, directory=directory)
    genre_id: int | None = None
    if add_unmatched_genre is not None:
        from music_classifier.ingest.genres import resolve_genres

        # Resolved first, so a bad genre name fails before any file is read.
        resolution = resolve_genres(conn, [add_unmatched_genre])
        genre_id = resolution.ids[add_unmatched_genre]
        report.genre_applied = dict(resolution.applied)

    files, report.skipped = walk_audio_files(root, directory, supported_extensions())
    readable = _read_all(files, report, progress)
    report.files_seen = len(files)

    all_tracks = load_tracks(conn)
    matcher = TrackMatcher(root, all_tracks)
    by_id = {t.id: t for t in all_tracks}
    pairs: list[tuple[ScannedFile, StoredTrack]] = []
    no_match: list[ScannedFile] = []
    for f in readable:
        found, reason = matcher.match(f)
        if found is None:
            artist = f.tag_artist or f.name_artist
            title = f.tag_title or f.name_title
            report.unmatched.append(UnmatchedFile(f.rel, artist, title, reason))
            if reason in ("no matching track", "no artist/title in tags or file name"):
                no_match.append(f)
        else:
            report.matched.append(found)
            pairs.append((f, by_id[found.track_id]))

    _write_links(conn, pairs, report)
    if genre_id is not None and no_match:
        _add_file_tracks(conn, no_match, genre_id, all_tracks, report)
    report.without_audio = _tracks_without_audio(matcher, report)
    return report


def _read_all(files: list[ScannedFile], report: ScanReport, progress: ScanProgress | None) -> list[ScannedFile]:
    if progress is not None:
        progress.start(sum(f.size for f in files), len(files))
    readable = []
    for f in files:
        try:
            read_scanned_file(f, progress)
        except InputError as exc:
            report.skipped.append(SkippedFile(f.rel, f"unreadable: {exc}"))
            continue
        except OSError as exc:
            report.skipped.append(SkippedFile(f.rel, f"unreadable: {exc.strerror or exc}"))
            continue
        readable.append(f)
    return readable


def _write_links(conn: Connection, pairs: list[tuple[ScannedFile, StoredTrack]], report: ScanReport) -> None:
    changed: list[dict] = []
    content_changed: list[int] = []
    for f, t in pairs:
        assert f.info is not None
        resolve_in_library(report.root, f.rel)  # guard: never store a path that escapes the root
        new = (f.rel, f.sha256, f.info.duration_s, f.info.sample_rate, f.info.channels)
        old = (t.audio_path, t.sha256, t.duration_s, t.sample_rate, t.channels)
        if new[:2] == old[:2] and new[3:] == old[3:] and _close(new[2], old[2]):
            report.unchanged += 1
            continue
        changed.append({"b_id": t.id, "b_path": f.rel, "b_sha": f.sha256, "b_duration": f.info.duration_s,
                        "b_rate": f.info.sample_rate, "b_channels": f.info.channels})
        if t.sha256 is not None and t.sha256 != f.sha256:
            content_changed.append(t.id)
    if changed:
        # No uq_tracks_audio_path collision is possible: a path already stored on a track links its
        # file to that track (the "path" step), so a track only ever moves to a path nobody holds.
        conn.execute(
            update(tracks).where(tracks.c.id == bindparam("b_id")).values(
                audio_path=bindparam("b_path"), file_sha256=bindparam("b_sha"), duration_s=bindparam("b_duration"),
                sample_rate=bindparam("b_rate"), channels=bindparam("b_channels"), updated_at=func.now()),
            changed,
        )
    report.updated = len(changed)
    report.marked_stale = mark_features_stale(conn, content_changed)


def _close(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) < 1e-6


def mark_features_stale(conn: Connection, track_ids: Iterable[int]) -> int:
    """Finished extractions of these tracks become 'stale' (their audio changed). Returns rows changed."""
    ids = sorted(set(track_ids))
    if not ids:
        return 0
    result = conn.execute(
        update(extractions).where(extractions.c.track_id.in_(ids), extractions.c.status == "done")
        .values(status="stale")
    )
    return result.rowcount or 0


def _new_track_identity(f: ScannedFile) -> tuple[str, str, str, str]:
    """(track_key, artist, title, song) of a file registered as a new track."""
    artist = f.tag_artist if f.tag_artist and f.tag_title else f.name_artist
    title = f.tag_title if f.tag_artist and f.tag_title else f.name_title
    if artist and title:
        artist, title = artist[:MAX_TEXT], title[:MAX_TEXT]
        return track_key(artist, title), artist, title, f"{artist} - {title}"
    stem = (f.tag_title or PurePosixPath(f.rel).stem)[:MAX_TEXT]
    # No artist/title: the relative path identifies the file (hashed when too long for track_key).
    key = f.rel if len(f.rel) <= 690 else "sha256:" + hashlib.sha256(f.rel.encode()).hexdigest()
    return f"path:{key}", "", stem, stem


def _add_file_tracks(conn: Connection, files: list[ScannedFile], genre_id: int, all_tracks: list[StoredTrack],
                     report: ScanReport) -> None:
    existing = {
        r.track_key: r.id
        for r in conn.execute(select(tracks.c.id, tracks.c.track_key).where(tracks.c.source == "file"))
    }
    removed_ids = {t.id for t in all_tracks if t.removed}
    new_rows: list[dict] = []
    revived: list[dict] = []
    seen: dict[str, str] = {}
    unmatched = {u.path: u for u in report.unmatched}
    for f in files:
        assert f.info is not None
        key, artist, title, song = _new_track_identity(f)
        if key in seen:
            unmatched[f.rel] = UnmatchedFile(f.rel, artist or None, title, f"same song as {seen[key]}")
            continue
        seen[key] = f.rel
        values = {"audio_path": f.rel, "file_sha256": f.sha256, "duration_s": f.info.duration_s,
                  "sample_rate": f.info.sample_rate, "channels": f.info.channels}
        old_id = existing.get(key)
        if old_id is not None and old_id in removed_ids:
            revived.append({"b_id": old_id, **{f"b_{k}": v for k, v in values.items()}})
        elif old_id is None:
            new_rows.append({"source": "file", "track_key": key, "artist": artist, "title": title, "song": song,
                             **values})
        else:  # a live file track with this key already has other audio
            unmatched[f.rel] = UnmatchedFile(f.rel, artist or None, title, f"same song as track #{old_id}")
            continue
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
        conn.execute(insert(track_genres), [{"track_id": tid, "rank": 0, "genre_id": genre_id}
                                            for tid in ids_by_path.values()])
    report.unmatched = [u for path, u in unmatched.items() if path not in ids_by_path]
    report.added = [MatchedFile(path, tid, "added") for path, tid in sorted(ids_by_path.items())]


def _tracks_without_audio(matcher: TrackMatcher, report: ScanReport) -> list[TrackWithoutAudio]:
    added = {m.track_id for m in report.added}
    missing = []
    for t in matcher.live:
        if t.id in matcher.claimed or t.id in added:
            continue
        if t.audio_path is None:
            missing.append(TrackWithoutAudio(t.id, t.artist, t.title, "no audio file"))
            continue
        try:
            present = resolve_in_library(report.root, t.audio_path).is_file()
        except PathOutsideLibrary:
            missing.append(TrackWithoutAudio(t.id, t.artist, t.title, "stored path escapes the library root"))
            continue
        if not present:
            missing.append(TrackWithoutAudio(t.id, t.artist, t.title, f"file missing: {t.audio_path}"))
    return missing

"""Audio library scan: link the audio files under the library root to tracks.

A file is matched to a live track by, in order: the path already stored on a track, the
normalised artist + title of its tags, the same from one of its file-name readings, and last a
fuzzy match with a threshold and a margin over the runner-up (``track_matching`` has the rules,
README "How files are matched" explains them). The scan records the file's path (relative to the
library root, POSIX separators), sha256, duration, sample rate and channels. It writes only what
changed, in bulk, inside the caller's transaction; a file whose content changed marks its finished
feature extractions stale. Every file it cannot match, and every track left without audio, is
reported with its closest candidates and the command that fixes it (``scan_report``).

The pieces live in sibling modules, by concept: ``library_root`` (which root), ``library_paths``
(scan directory, walking, symlinks), ``audio_files`` (header info, tags, sha256), ``file_names``
(reading artist/title from paths), ``match_scoring`` and ``track_matching`` (scores and assignment),
``file_tracks`` (registering unmatched files), ``scan_report`` (the report). Their public names
are re-exported here, so callers keep importing them from ``music_classifier.ingest.audio_scan``.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sqlalchemy import Connection, bindparam, func, select, update

from music_classifier.db.tables import FEATURE_ONLY_SOURCES, extractions, genres, tracks
from music_classifier.errors import ConfigError, InputError, PathOutsideLibrary
from music_classifier.ingest.audio_copies import copies_of_added, find_copies, shared_audio
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
from music_classifier.ingest.file_tracks import add_file_tracks
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
from music_classifier.ingest.library_root import scan_root
from music_classifier.ingest.match_scoring import HOLD_CLOSENESS
from music_classifier.ingest.scan_report import (
    ScanReport,
    TrackWithoutAudio,
    UnmatchedFile,
    fix_for_file,
    fix_for_track,
)
from music_classifier.ingest.track_matching import (
    FUZZY_MARGIN,
    FUZZY_THRESHOLD,
    NO_MATCH,
    NO_READING,
    MatchedFile,
    StoredTrack,
    TrackMatcher,
    fuzzy_score,
    load_tracks,
)

__all__ = [
    "FUZZY_MARGIN",
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
    "read_scanned_file",
    "read_tags",
    "resolve_in_library",
    "resolve_scan_dir",
    "scan_library",
    "sha256_file",
    "supported_extensions",
    "walk_audio_files",
    "write_audio_links",
]

NOT_IN_GENRE_FOLDER = "not inside a genre folder (--genre-from-folder reads DIR/<genre>/...)"


def scan_library(
    conn: Connection,
    *,
    root: Path | None,
    subdir: Path | None = None,
    add_unmatched_genre: str | None = None,
    genre_from_folder: bool = False,
    new_genre: bool = False,
    progress: ScanProgress | None = None,
    move_root: bool = False,
) -> ScanReport:
    """Scan ``subdir`` (default: the whole library root) and link its audio files to tracks.

    ``root``: the configured library root, or None when none is configured (``library_root`` then
    decides, and may adopt ``subdir``). Writes only what changed, in bulk, in the caller's
    transaction. Files matching no track become new tracks (source 'file') with
    ``add_unmatched_genre`` (that coarse genre) or ``genre_from_folder`` (the name of their top folder
    below ``subdir``), aliases applied. A genre that looks like a typo of a known one (``Jaz`` for
    ``Jazz``, ``Bleus/`` for ``Blues``; :func:`~music_classifier.ingest.genres.near_misses`) is refused
    unless ``new_genre``: InputError naming it and its fix, before anything is read or written.
    Raises PathOutsideLibrary when ``subdir`` is outside the root; unreadable files are reported.
    A root other than the stored one is refused (RootMismatch) unless ``move_root``: it then becomes
    the root and the stored paths are rewritten (``library_root.scan_root``).
    """
    if add_unmatched_genre is not None and genre_from_folder:
        raise ConfigError("--genre-from-folder and --genre G exclude each other: the genre comes from one of them")
    chosen = scan_root(conn, root, subdir, move_root=move_root)
    root, directory = resolve_scan_dir(chosen.path, None if chosen.directory_is_root else subdir)
    report = ScanReport(root=root, directory=directory, root_origin=chosen.origin, root_note=chosen.describe())
    genre_id: int | None = None
    if add_unmatched_genre is not None:
        from music_classifier.ingest.genres import near_miss, resolve_genres

        miss = None if new_genre else near_miss(conn, add_unmatched_genre)
        if miss is not None:
            raise InputError(f"--genre {miss.spelling!r} is new and close to the existing genre {miss.existing!r}: "
                             f"use --genre {shlex.quote(miss.existing)}, or pass --new-genre to create "
                             f"{miss.spelling!r}; nothing was written")

        # Resolved first, so a bad genre name fails before any file is read.
        resolution = resolve_genres(conn, [add_unmatched_genre])
        genre_id = resolution.ids[add_unmatched_genre]
        report.genre_applied = dict(resolution.applied)

    files, report.skipped = walk_audio_files(root, directory, supported_extensions())
    if genre_from_folder and not new_genre:
        _refuse_near_misses(conn, _files_per_top_folder(files, directory), "folder")
    readable = _read_all(files, report, progress)
    report.files_seen = len(files)

    all_tracks = load_tracks(conn)
    matcher = TrackMatcher(root, all_tracks)
    pairs, reasons = _match(matcher, readable, report)
    write = write_audio_links(conn, root, pairs)
    report.updated, report.unchanged, report.marked_stale = write.updated, write.unchanged, write.marked_stale
    report.copies = find_copies(matcher, readable, pairs, reasons)  # never registered: out of `reasons`
    report.shared_audio = shared_audio(pairs)

    addable = [f for f in readable if reasons.get(f.rel) in (NO_MATCH, NO_READING)]
    if genre_id is not None or genre_from_folder:
        report.copies_not_added = [c.path for c in report.copies]
    if addable and (genre_id is not None or genre_from_folder):
        addable = _hold_back_near_tracks(matcher, addable, reasons)
        _register_files(conn, addable, genre_id, directory, all_tracks, reasons, report)
        report.copies = copies_of_added(conn, report.copies, report.added)
    _report_misses(matcher, readable, reasons, report)
    return report


def _match(matcher: TrackMatcher, readable: list[ScannedFile],
           report: ScanReport) -> tuple[list[tuple[ScannedFile, StoredTrack]], dict[str, str]]:
    """Exact rules for every file first, then fuzzy for the rest. Returns (file, track) pairs and misses."""
    pairs: list[tuple[ScannedFile, StoredTrack]] = []
    reasons: dict[str, str] = {}
    pending: list[ScannedFile] = []
    for f in readable:
        found, reason = matcher.match_exact(f)
        if found is not None:
            report.matched.append(found)
            pairs.append((f, matcher.by_id[found.track_id]))
        elif reason:
            reasons[f.rel] = reason
        else:
            pending.append(f)
    fuzzy = matcher.match_fuzzy(pending)
    for f, found in fuzzy.matched:
        report.matched.append(found)
        pairs.append((f, matcher.by_id[found.track_id]))
    reasons.update(fuzzy.refused)
    report.matched.sort(key=lambda m: m.path)
    return pairs, reasons


def _hold_back_near_tracks(matcher: TrackMatcher, addable: list[ScannedFile],
                           reasons: dict[str, str]) -> list[ScannedFile]:
    """Files too close to a stored track to register as new ones (``HOLD_CLOSENESS``): reported instead."""
    closest = matcher.candidates_for_files(addable)
    kept = []
    for f in addable:
        near = closest[f.rel][0] if closest[f.rel] else None
        if near is not None and near.closeness >= HOLD_CLOSENESS:
            reasons[f.rel] = (f"not registered: close to track #{near.track_id} ({near.artist} - {near.title}); "
                              "link it if it is that song")
        else:
            kept.append(f)
    return kept


def _files_per_top_folder(files: list[ScannedFile], directory: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in files:
        parts = Path(f.abs_path).relative_to(directory).parts
        if len(parts) >= 2:
            counts[parts[0]] = counts.get(parts[0], 0) + 1
    return counts


def _refuse_near_misses(conn: Connection, spellings: dict[str, int], what: str) -> None:
    """InputError (one line, every near miss with its fix) when a genre name looks like a typo of a known one."""
    from music_classifier.ingest.genres import near_misses

    found = near_misses(conn, spellings)
    if not found:
        return
    each = "; ".join(f"{what} {m.spelling!r} looks like genre {m.existing!r} (fix: {m.fix_command})"
                     for m in sorted(found.values(), key=lambda m: m.spelling))
    raise InputError(f"{each}; or pass --new-genre if it really is a new genre")


def _register_files(conn: Connection, addable: list[ScannedFile], genre_id: int | None, directory: Path,
                    all_tracks: list[StoredTrack], reasons: dict[str, str], report: ScanReport) -> None:
    """--add-unmatched / --genre-from-folder: unmatched files become 'file' tracks."""
    from music_classifier.ingest.genres import resolve_genres, validate_genre_name

    placed: list[tuple[ScannedFile, str | None, str]] = []  # file, genre folder (None: --genre), path below it
    for f in addable:
        below = PurePosixPath(Path(f.abs_path).relative_to(directory).as_posix())
        if genre_id is not None:
            placed.append((f, None, below.as_posix()))
        elif len(below.parts) < 2:
            reasons[f.rel] = NOT_IN_GENRE_FOLDER
        else:
            try:
                placed.append((f, validate_genre_name(below.parts[0]), PurePosixPath(*below.parts[1:]).as_posix()))
            except InputError as exc:
                reasons[f.rel] = f"folder {below.parts[0]!r} is not a genre name: {exc}"
    folder_ids: dict[str, int] = {}
    if genre_id is None:
        folders = sorted({folder for _, folder, _ in placed if folder is not None})
        resolution = resolve_genres(conn, folders)
        folder_ids = resolution.ids
        report.genre_applied = dict(resolution.applied)
    result = add_file_tracks(conn, [(f, genre_id if folder is None else folder_ids[folder], below)
                                    for f, folder, below in placed], all_tracks)
    for m in result.added:
        reasons.pop(m.path, None)
    reasons.update(result.refused)
    report.added = result.added
    names = dict(conn.execute(select(genres.c.id, genres.c.display_name)
                              .where(genres.c.id.in_(list(result.per_genre)))).all()) if result.per_genre else {}
    report.added_per_genre = {names[gid]: n for gid, n in sorted(result.per_genre.items(), key=lambda p: names[p[0]])}


def _report_misses(matcher: TrackMatcher, readable: list[ScannedFile], reasons: dict[str, str],
                   report: ScanReport) -> None:
    """Unmatched files and tracks without audio, each with its closest candidates and its fix."""
    unmatched = [f for f in readable if f.rel in reasons]
    added = {m.track_id for m in report.added}
    for_files = matcher.candidates_for_files(unmatched)
    report.unmatched = [
        UnmatchedFile(f.rel, f.tag_artist or f.name_artist, f.tag_title or f.name_title, reasons[f.rel],
                      tuple(for_files[f.rel]), fix_for_file(f.rel, reasons[f.rel], tuple(for_files[f.rel])))
        for f in unmatched
    ]
    missing = _tracks_without_audio(matcher, report.root, added)
    for_tracks = matcher.candidates_for_tracks([m.track_id for m in missing], unmatched)
    report.without_audio = [
        TrackWithoutAudio(m.track_id, m.artist, m.title, m.reason, tuple(for_tracks[m.track_id]),
                          fix_for_track(m.track_id, matcher.by_id[m.track_id].source, tuple(for_tracks[m.track_id])))
        for m in missing
    ]


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


@dataclass(frozen=True)
class LinkWrite:
    updated: int  # tracks whose audio columns were written
    unchanged: int
    marked_stale: int  # extraction rows turned from done to stale


def write_audio_links(conn: Connection, root: Path, pairs: list[tuple[ScannedFile, StoredTrack]]) -> LinkWrite:
    """Store each file's path and audio facts on its track (only what changed), marking changed audio stale."""
    changed: list[dict] = []
    content_changed: list[int] = []
    unchanged = 0
    for f, t in pairs:
        assert f.info is not None
        resolve_in_library(root, f.rel)  # guard: never store a path that escapes the root
        new = (f.rel, f.sha256, f.info.duration_s, f.info.sample_rate, f.info.channels)
        old = (t.audio_path, t.sha256, t.duration_s, t.sample_rate, t.channels)
        if new[:2] == old[:2] and new[3:] == old[3:] and _close(new[2], old[2]):
            unchanged += 1
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
    return LinkWrite(len(changed), unchanged, mark_features_stale(conn, content_changed))


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


@dataclass(frozen=True)
class _Missing:
    track_id: int
    artist: str
    title: str
    reason: str


def _tracks_without_audio(matcher: TrackMatcher, root: Path, added: set[int]) -> list[_Missing]:
    missing = []
    for t in matcher.live:
        if t.id in matcher.claimed or t.id in added:
            continue
        if t.audio_path is None and t.source in FEATURE_ONLY_SOURCES:
            continue  # imported with its features (features import-csv): no audio by design
        if t.audio_path is None:
            missing.append(_Missing(t.id, t.artist, t.title, "no audio file"))
            continue
        try:
            present = resolve_in_library(root, t.audio_path).is_file()
        except PathOutsideLibrary:
            missing.append(_Missing(t.id, t.artist, t.title, "stored path escapes the library root"))
            continue
        if not present:
            missing.append(_Missing(t.id, t.artist, t.title, f"file missing: {t.audio_path}"))
    return missing

"""`audio link FILE --track ID`: the fix a scan report offers for a file or track it could not match.

The link is stored as the track's audio path with ``audio_origin = 'link'``, so every later scan
keeps it: the scan never moves such a track to another file nor gives its file to another track.
A file already linked to another track moves: that track loses its audio and its finished features
turn stale, as do the target's when its audio changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, func, update

from music_classifier.db.tables import tracks
from music_classifier.errors import InputError, PathOutsideLibrary
from music_classifier.ingest.audio_files import ScannedFile, read_scanned_file
from music_classifier.ingest.audio_scan import mark_features_stale, write_audio_links
from music_classifier.ingest.library_paths import (
    MAX_AUDIO_PATH,
    ROOT_HINT,
    SNDFILE_EXTENSIONS,
    as_given,
    inside_root,
    supported_extensions,
)
from music_classifier.ingest.library_root import root_for_files
from music_classifier.ingest.track_matching import load_tracks


@dataclass(frozen=True)
class LinkResult:
    path: str  # relative to the library root
    track_id: int
    artist: str
    title: str
    changed: bool  # False when the track already had exactly this file
    taken_from: int | None  # the track that held the file before, if another one
    replaced_path: str | None  # the track's previous audio path, if another one
    marked_stale: int


def library_relative(root: Path, file: Path) -> tuple[Path, str]:
    """(absolute path, path relative to ``root``) of a file given relative to the root, the cwd, or absolute."""
    lexical = as_given(root, file)
    if not lexical.exists():
        raise InputError(f"no such file: {file}")
    if not lexical.is_file():
        raise InputError(f"{file} is not a file")
    if not inside_root(root, lexical):  # a symlink out of the root is not followed (library_paths)
        what = "a symlink that leads outside" if lexical.is_relative_to(root) else "outside"
        raise PathOutsideLibrary(f"{file} is {what} the library root {root}: move it inside the root")
    path = lexical if lexical.is_relative_to(root) else lexical.resolve()
    return path, path.relative_to(root).as_posix()


def link_file(conn: Connection, *, root: Path | None, file: Path, track_id: int) -> LinkResult:
    """Link ``file`` to track ``track_id``. ``root``: the configured library root (None: the stored one;
    ``library_root.root_for_files`` sets it on first use and refuses another).

    Refuses (InputError, one line, nothing written) a missing or unreadable file, one outside the root,
    an unknown or removed track.
    """
    library = root_for_files(conn, root, "audio link stores a path relative to the library root").path
    try:
        library = library.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        raise InputError(f"library root {library} does not exist ({ROOT_HINT})") from None
    abs_path, rel = library_relative(library, file)
    if abs_path.suffix.lower() not in supported_extensions():
        kinds = ", ".join(sorted(e.lstrip(".") for e in SNDFILE_EXTENSIONS))
        raise InputError(f"{file}: not an audio file the scan reads ({kinds}; m4a with ffmpeg)")
    if len(rel) > MAX_AUDIO_PATH:
        raise InputError(f"{file}: path longer than {MAX_AUDIO_PATH} characters")
    stored = {t.id: t for t in load_tracks(conn)}
    track = stored.get(track_id)
    if track is None:
        raise InputError(f"--track {track_id}: no such track")
    if track.removed:
        raise InputError(f"--track {track_id}: track #{track_id} ({track.artist} - {track.title}) was removed")
    scanned = ScannedFile(rel=rel, abs_path=abs_path, size=abs_path.stat().st_size)
    try:
        read_scanned_file(scanned, None)
    except OSError as exc:
        raise InputError(f"{file}: unreadable ({exc.strerror or exc})") from None
    holder = next((t for t in stored.values() if t.audio_path == rel and t.id != track_id), None)
    stale = 0
    if holder is not None:
        conn.execute(update(tracks).where(tracks.c.id == holder.id).values(
            audio_path=None, file_sha256=None, duration_s=None, sample_rate=None, channels=None, audio_origin=None,
            updated_at=func.now()))
        stale += mark_features_stale(conn, [holder.id])
    write = write_audio_links(conn, library, [(scanned, track)])
    if track.audio_origin != "link":  # a person chose this file: later scans keep it (track_matching rule 1)
        conn.execute(update(tracks).where(tracks.c.id == track_id).values(audio_origin="link"))
    previous = track.audio_path if track.audio_path not in (None, rel) else None
    return LinkResult(rel, track_id, track.artist, track.title,
                      write.updated > 0 or holder is not None or track.audio_origin != "link",
                      holder.id if holder else None, previous, stale + write.marked_stale)

"""Which file the page may play for a track: its stored path, only inside the library root.

The request names a track id and nothing else; the path is the one the database stores for that
track, resolved by :func:`~music_classifier.ingest.library_paths.resolve_in_library` (no absolute
paths, no ``..``) and then checked with every symlink followed: a link inside the library that leads
out of the root is refused, as the scan refuses it.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Connection

from music_classifier.db.browse import audio_path_of
from music_classifier.errors import PathOutsideLibrary
from music_classifier.ingest.library_paths import inside_root, resolve_in_library
from music_classifier.ingest.library_root import stored_library_root


class AudioRefused(Exception):
    """No playable file for the track (one line, shown as a 404)."""


def audio_file(conn: Connection, track_id: int, configured_root: Path | None) -> Path:
    """The absolute path of the track's audio file; AudioRefused when there is none or it is outside the root."""
    relative = audio_path_of(conn, track_id)
    if relative is None:
        raise AudioRefused(f"track {track_id} has no audio file")
    root = configured_root or stored_library_root(conn)
    if root is None:
        raise AudioRefused("no library root is set (start the server with --library DIR)")
    root = root.expanduser().resolve()
    try:
        path = resolve_in_library(root, relative)
    except PathOutsideLibrary:
        raise AudioRefused(f"track {track_id}: its stored path is not inside the library root") from None
    if not inside_root(root, path):
        raise AudioRefused(f"track {track_id}: its file leads outside the library root")
    real = Path(os.path.realpath(path))  # served by its real path: the one just checked
    if not real.is_file():
        raise AudioRefused(f"track {track_id}: its file is missing from the library")
    return real

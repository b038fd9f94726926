"""Which directory is the library root: set once, remembered by the database, moved only when asked.

Stored audio paths are relative to the root, so every command that stores or opens a file (scan,
link, a sheet's ``file`` cells, feature jobs) must agree on it. The root is set once, before any
path is stored, and the database remembers it (``service_state`` key ``library_root``):

1. ``--library DIR`` / ``MUSIC_CLASSIFIER_LIBRARY`` on the first command that stores paths (scan,
   link, sheet sync with a ``file`` column) sets it;
2. else the first ``audio scan [DIR]`` sets it to the directory it scans (DIR, or the working
   directory), and says so;
3. a sheet sync with ``file`` cells and no root set refuses with one line saying how to set it:
   the working directory is never taken silently (a cell resolved against wherever the teacher
   happened to be was how paths ended up relative to a folder nobody recorded).

Once set, a scan of another root (``--library`` elsewhere, or a DIR outside the root) refuses
with one line unless ``--move-root``, which makes it the root and rewrites the stored paths to
stay relative to it. ``audio link`` and ``sheet sync`` with another ``--library`` refuse too.
Feature jobs only read: a worker's ``--library`` / ``MUSIC_CLASSIFIER_LIBRARY`` wins (the same
library mounted elsewhere), then the stored root, then the working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sqlalchemy import Connection, bindparam, func, insert, select, update

from music_classifier.db.tables import service_state, tracks
from music_classifier.errors import ConfigError, InputError, PathOutsideLibrary
from music_classifier.ingest.library_paths import MAX_AUDIO_PATH, ROOT_HINT

ROOT_KEY = "library_root"
SET_ROOT_HINT = "pass --library DIR once (the folder your audio files are in; the database remembers it)"


class RootMismatch(PathOutsideLibrary):
    """A command names a library root other than the one the database records."""


@dataclass(frozen=True)
class LibraryRoot:
    path: Path
    origin: str  # configured | stored | adopted | moved | working directory
    previous: Path | None = None  # the root before --move-root
    paths_rewritten: int = 0  # stored paths rewritten by --move-root
    directory_is_root: bool = False  # the scan's DIR became the root (adopted or moved to): scan all of it

    def describe(self) -> str:
        notes = {
            "configured": "from --library / MUSIC_CLASSIFIER_LIBRARY; remembered by the database",
            "stored": "remembered by the database",
            "adopted": "no root was configured and no paths were stored, so the scanned directory became the "
                       "root; remembered by the database",
            "working directory": "the working directory: no --library / MUSIC_CLASSIFIER_LIBRARY given",
        }
        if self.origin == "moved":
            return (f"library root: {self.path} (moved from {self.previous} by --move-root; "
                    f"{self.paths_rewritten} stored path(s) rewritten)")
        return f"library root: {self.path} ({notes[self.origin]})"


def stored_library_root(conn: Connection) -> Path | None:
    value = conn.execute(select(service_state.c.value).where(service_state.c.key == ROOT_KEY)).scalar()
    return Path(value) if value else None


def library_root_for(conn: Connection, configured: Path | None) -> LibraryRoot:
    """The root a reader of stored paths uses (feature jobs): configured, else stored, else the working directory."""
    if configured is not None:
        return LibraryRoot(configured.expanduser().resolve(), "configured")
    stored = stored_library_root(conn)
    if stored is not None:
        return LibraryRoot(stored, "stored")
    return LibraryRoot(Path.cwd().resolve(), "working directory")


def any_path_stored(conn: Connection) -> bool:
    return conn.execute(select(tracks.c.id).where(tracks.c.audio_path.is_not(None)).limit(1)).first() is not None


def root_for_files(conn: Connection, configured: Path | None, what: str, *, record: bool = True) -> LibraryRoot:
    """The root for a command that stores paths but scans no directory (``audio link``, a sheet's file cells).

    The stored root; a ``configured`` one sets it when none is stored (in the caller's transaction,
    unless not ``record``: a dry run) and must equal it otherwise. ConfigError (one line, how to set
    it) when neither is there; ``what`` starts that line.
    """
    stored = stored_library_root(conn)
    if configured is None:
        if stored is None:
            raise ConfigError(f"{what} but no library root is set: {SET_ROOT_HINT}, or run "
                              "`music-classifier audio scan DIR` first")
        return LibraryRoot(stored, "stored")
    wanted = _existing_dir(configured)
    if stored is None:
        if record:
            _store(conn, wanted, insert_row=True)
        return LibraryRoot(wanted, "configured")
    if wanted != stored:
        raise RootMismatch(f"--library {configured} is not the library root the database records ({stored}): "
                           f"drop --library, or move the root with `music-classifier audio scan {wanted} "
                           "--move-root`")
    return LibraryRoot(stored, "configured")


def scan_root(conn: Connection, configured: Path | None, directory: Path | None, *,
              move_root: bool = False) -> LibraryRoot:
    """The root for ``audio scan [DIR]``, set or moved in the caller's transaction (module docstring).

    Without ``move_root`` a root other than the stored one is refused (RootMismatch, one line, before
    anything is written); a DIR outside the stored root is refused later by ``resolve_scan_dir``.
    """
    stored = stored_library_root(conn)
    if configured is not None:
        wanted, origin = _existing_dir(configured), "configured"
    elif stored is None or move_root:
        if directory is None and move_root:
            raise ConfigError("--move-root needs the new root: audio scan DIR --move-root (or --library DIR)")
        # DIR as written from the working directory: no root to take it relative to yet.
        candidate = Path.cwd() / directory.expanduser() if directory else Path.cwd()
        if not candidate.is_dir():
            raise InputError(f"directory {directory} does not exist" if not candidate.exists()
                             else f"{directory} is not a directory")
        wanted, origin = candidate.resolve(), "adopted"
    else:
        return LibraryRoot(stored, "stored")
    whole = configured is None
    if stored is None:
        if whole and any_path_stored(conn):  # a database from before roots were recorded: its root is unknown
            raise ConfigError(f"audio paths are stored but no library root is recorded: {SET_ROOT_HINT}")
        _store(conn, wanted, insert_row=True)
        return LibraryRoot(wanted, origin, directory_is_root=whole)
    if wanted == stored:
        return LibraryRoot(stored, origin if origin == "configured" else "stored")
    if not move_root:
        raise RootMismatch(f"{wanted} is not the library root the database records ({stored}): scan a folder "
                           "inside the root, or pass --move-root to make it the root (stored paths are rewritten)")
    rewritten = _move_paths(conn, stored, wanted)
    _store(conn, wanted, insert_row=False)
    return LibraryRoot(wanted, "moved", previous=stored, paths_rewritten=rewritten, directory_is_root=whole)


def _existing_dir(path: Path) -> Path:
    try:
        resolved = path.expanduser().resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        raise ConfigError(f"library root {path} does not exist ({ROOT_HINT})") from None
    if not resolved.is_dir():
        raise ConfigError(f"library root {path} is not a directory ({ROOT_HINT})")
    return resolved


def _store(conn: Connection, root: Path, *, insert_row: bool) -> None:
    if insert_row:
        conn.execute(insert(service_state).values(key=ROOT_KEY, value=str(root)))
    else:
        conn.execute(update(service_state).where(service_state.c.key == ROOT_KEY).values(value=str(root)))


def _move_paths(conn: Connection, old: Path, new: Path) -> int:
    """Rewrite every stored path (removed tracks' too) from relative-to-``old`` to relative-to-``new``.

    ``new`` containing ``old`` (the parent folder) prefixes them; ``new`` inside ``old`` strips the
    prefix, and refuses (InputError, nothing written) when a path lies outside ``new``: its track
    would lose its audio. Unrelated folders (the library was moved or copied) keep the paths as
    they are. Returns how many paths changed.
    """
    if not (old.is_relative_to(new) or new.is_relative_to(old)):
        return 0
    rows = conn.execute(select(tracks.c.id, tracks.c.audio_path).where(tracks.c.audio_path.is_not(None))).all()
    moved: list[dict] = []
    outside: list[str] = []
    for track_id, path in rows:
        absolute = Path(os.path.normpath(old / PurePosixPath(path)))
        if not absolute.is_relative_to(new):
            outside.append(path)
            continue
        rel = absolute.relative_to(new).as_posix()
        if len(rel) > MAX_AUDIO_PATH:
            raise InputError(f"--move-root: {path} would become longer than {MAX_AUDIO_PATH} characters under "
                             f"{new}; nothing was written")
        if rel != path:
            moved.append({"b_id": track_id, "b_path": rel})
    if outside:
        raise InputError(f"--move-root: {len(outside)} stored audio path(s) lie outside {new} (first: {outside[0]}) "
                         "and would lose their audio; choose a root that contains them; nothing was written")
    if moved:
        ids = [m["b_id"] for m in moved]
        # Cleared first: audio_path is unique, and a new path may equal another row's old one.
        for start in range(0, len(ids), 500):
            conn.execute(update(tracks).where(tracks.c.id.in_(ids[start:start + 500])).values(audio_path=None))
        conn.execute(update(tracks).where(tracks.c.id == bindparam("b_id"))
                     .values(audio_path=bindparam("b_path"), updated_at=func.now()), moved)
    return len(moved)

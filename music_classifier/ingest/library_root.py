"""Which directory is the library root: configured, remembered by the database, adopted, or the default.

Stored audio paths are relative to the root, so every command that opens a file (scan, link,
feature jobs) must agree on it. In order:

1. ``--library DIR`` / ``MUSIC_CLASSIFIER_LIBRARY`` (workers on other machines mount it elsewhere);
2. the root stored in the database (``service_state`` key ``library_root``), written when a scan
   adopted one;
3. for ``audio scan DIR`` only, and only while no track has a stored path: DIR itself, said in the
   report and stored (rule 2 then applies to every later command);
4. the working directory (the documented default).

Once any path is stored, a scan never adopts a new root: a directory outside the root is refused
with the way to set it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, insert, select

from music_classifier.db.tables import service_state, tracks

ROOT_KEY = "library_root"


@dataclass(frozen=True)
class LibraryRoot:
    path: Path
    origin: str  # configured | stored | adopted | working directory

    def describe(self) -> str:
        notes = {
            "configured": "from --library / MUSIC_CLASSIFIER_LIBRARY",
            "stored": "remembered by the database; --library overrides it",
            "adopted": "no root was configured and no paths were stored, so the scanned directory became the "
                       "root; remembered by the database (--library overrides it)",
            "working directory": "the working directory: no --library / MUSIC_CLASSIFIER_LIBRARY given",
        }
        return f"library root: {self.path} ({notes[self.origin]})"


def stored_library_root(conn: Connection) -> Path | None:
    value = conn.execute(select(service_state.c.value).where(service_state.c.key == ROOT_KEY)).scalar()
    return Path(value) if value else None


def library_root_for(conn: Connection, configured: Path | None) -> LibraryRoot:
    """The root every command but a first scan uses (rules 1, 2, 4)."""
    if configured is not None:
        return LibraryRoot(configured.expanduser().resolve(), "configured")
    stored = stored_library_root(conn)
    if stored is not None:
        return LibraryRoot(stored, "stored")
    return LibraryRoot(Path.cwd().resolve(), "working directory")


def any_path_stored(conn: Connection) -> bool:
    return conn.execute(select(tracks.c.id).where(tracks.c.audio_path.is_not(None)).limit(1)).first() is not None


def scan_root(conn: Connection, configured: Path | None, directory: Path | None) -> LibraryRoot:
    """The root for ``audio scan [DIR]``: rules 1-4; adopting DIR stores it (in the caller's transaction)."""
    chosen = library_root_for(conn, configured)
    if chosen.origin != "working directory" or directory is None or any_path_stored(conn):
        return chosen
    candidate = directory.expanduser()
    if not candidate.is_absolute():
        candidate = Path.cwd() / candidate
    if not candidate.is_dir():
        return chosen  # resolve_scan_dir names the missing directory
    adopted = candidate.resolve()
    conn.execute(insert(service_state).values(key=ROOT_KEY, value=str(adopted)))
    return LibraryRoot(adopted, "adopted")

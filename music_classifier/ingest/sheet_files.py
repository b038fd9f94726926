"""A sheet column naming each row's audio file (``file``, ``audio``, ``path`` or ``filename``).

A cell is a path relative to the library root (``blues/track 3.mp3``), or a bare file name looked up
anywhere under the root (``track 3.mp3``). The file a row names wins over every match the audio scan
could make: it is stored as the track's audio path with ``audio_origin = 'sheet'``, which later
scans keep (they never move the track to another file nor give the file to another track), and
re-syncs keep while the row names it. A file held by another track moves to the row's track (that
track loses its audio, its finished features turn stale; a track registered from that very file by
``audio scan --add-unmatched`` / ``--genre-from-folder`` is removed, being the same recording).

Cells that cannot be used (no such file, a bare name found twice, outside the root, not audio, a
file another row already names) are reported per sheet row with the row number and leave that
track's audio as it was. :func:`plan_sheet_files` reads only (files, and the database for nothing);
:func:`apply_sheet_files` writes, after the sync has created the rows' tracks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from music_classifier.db.tables import tracks
from music_classifier.errors import ConfigError, InputError
from music_classifier.ingest.audio_files import ScannedFile, ScanProgress, read_scanned_file
from music_classifier.ingest.library_paths import (
    MAX_AUDIO_PATH,
    ROOT_HINT,
    SNDFILE_EXTENSIONS,
    inside_root,
    supported_extensions,
    walk_audio_files,
)

ORIGIN = "sheet"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_AMBIGUOUS_SHOWN = 3


@dataclass(frozen=True)
class FileProblem:
    """A row whose file cell could not be used (the rest of the row synced)."""

    row_number: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row_number}: {self.reason}"


@dataclass(frozen=True)
class SheetFile:
    row_number: int
    key: str  # the row's track key
    file: ScannedFile  # read: sha256 and header info filled in


@dataclass
class FilePlan:
    root: Path | None
    files: list[SheetFile] = field(default_factory=list)  # one per song, the first row naming a file wins
    problems: list[FileProblem] = field(default_factory=list)
    keys_with_cell: set[str] = field(default_factory=set)  # songs whose rows name a file, usable or not


@dataclass
class FileLinks:
    """What applying a plan did (or, on a dry run, would do)."""

    linked: int = 0  # tracks whose audio the sheet set or changed
    unchanged: int = 0  # tracks that already had exactly the named file
    unpinned: int = 0  # tracks whose row no longer names a file: later scans may match them again
    marked_stale: int = 0  # finished extractions whose audio changed
    taken: list[str] = field(default_factory=list)  # "row N: file F was track #ID's (A - T)" notes


def plan_sheet_files(rows: Sequence[tuple[int, str, str]], root: Path | None, *,
                     progress: ScanProgress | None = None) -> FilePlan:
    """Resolve and read the files named by ``rows`` ((sheet row number, track key, cell), sheet order).

    ``root``: the library root. Raises ConfigError when files are named but the root does not exist;
    every other problem is a :class:`FileProblem` of its row. Writes nothing.
    """
    plan = FilePlan(root=None)
    if not rows:
        return plan
    if root is None:
        raise ConfigError(f"the sheet names audio files but no library root is set ({ROOT_HINT})")
    try:
        plan.root = root = root.expanduser().resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        raise ConfigError(f"the sheet names audio files but the library root {root} does not exist "
                          f"({ROOT_HINT})") from None
    finder = _Finder(root)
    by_path: dict[str, int] = {}  # relative path -> the row that named it first
    by_key: dict[str, tuple[int, str]] = {}  # track key -> (row, path) of the song's first usable file
    found: list[tuple[int, str, Path, str]] = []
    for row_number, key, cell in rows:
        plan.keys_with_cell.add(key)
        try:
            abs_path, rel = finder.locate(cell)
        except InputError as exc:
            plan.problems.append(FileProblem(row_number, str(exc)))
            continue
        if rel in by_path and (by_key.get(key) or (0, ""))[1] != rel:
            plan.problems.append(FileProblem(row_number, f"file {rel!r} is already named by row {by_path[rel]} "
                                                         "(another song); one file per song"))
            continue
        if key in by_key:
            first_row, first_rel = by_key[key]
            if first_rel != rel:
                plan.problems.append(FileProblem(row_number, f"names {rel!r} but row {first_row} names {first_rel!r} "
                                                             "for the same song; the first row's file is used"))
            continue
        by_path[rel] = row_number
        by_key[key] = (row_number, rel)
        found.append((row_number, key, abs_path, rel))
    if progress is not None:
        progress.start(sum(p.stat().st_size for _, _, p, _ in found), len(found))
    for row_number, key, abs_path, rel in found:
        scanned = ScannedFile(rel=rel, abs_path=abs_path, size=abs_path.stat().st_size)
        try:
            read_scanned_file(scanned, progress)
        except InputError as exc:
            plan.problems.append(FileProblem(row_number, f"file {rel!r} is not readable audio: {exc}"))
            continue
        except OSError as exc:
            plan.problems.append(FileProblem(row_number, f"file {rel!r} is unreadable: {exc.strerror or exc}"))
            continue
        plan.files.append(SheetFile(row_number, key, scanned))
    plan.problems.sort(key=lambda p: p.row_number)
    return plan


class _Finder:
    """Turns a cell into (absolute path, path relative to the root); InputError says why it cannot."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.extensions = supported_extensions()
        self._by_name: dict[str, list[str]] | None = None

    def locate(self, cell: str) -> tuple[Path, str]:
        text = cell.strip()
        if _CONTROL.search(text):
            raise InputError("file cell has a control character")
        if len(text) > MAX_AUDIO_PATH:
            raise InputError(f"file cell is longer than {MAX_AUDIO_PATH} characters")
        text = text.replace("\\", "/")  # a path typed on Windows
        suffix = PurePosixPath(text).suffix.lower()
        if suffix not in self.extensions:
            kinds = ", ".join(sorted(e.lstrip(".") for e in SNDFILE_EXTENSIONS))
            raise InputError(f"file {cell.strip()!r} is not an audio file the scan reads ({kinds}; m4a with ffmpeg)")
        if "/" not in text:
            return self._bare_name(text)
        given = Path(text).expanduser()
        candidate = given if given.is_absolute() else self.root / given
        lexical = Path(os.path.abspath(candidate))
        if not inside_root(self.root, lexical):  # a symlink out of the root is not followed (library_paths)
            what = "a symlink that leads outside" if lexical.is_relative_to(self.root) else "outside"
            raise InputError(f"file {cell.strip()!r} is {what} the library root {self.root}")
        if not lexical.is_file():
            raise InputError(f"file {cell.strip()!r} not found under the library root {self.root}")
        base = lexical if lexical.is_relative_to(self.root) else lexical.resolve()
        return lexical, base.relative_to(self.root).as_posix()

    def _bare_name(self, name: str) -> tuple[Path, str]:
        if self._by_name is None:
            files, _ = walk_audio_files(self.root, self.root, self.extensions)
            self._by_name = {}
            for f in files:
                self._by_name.setdefault(PurePosixPath(f.rel).name, []).append(f.rel)
                folded = PurePosixPath(f.rel).name.casefold()
                if folded != PurePosixPath(f.rel).name:
                    self._by_name.setdefault(folded, []).append(f.rel)
        matches = self._by_name.get(name) or self._by_name.get(name.casefold()) or []
        matches = sorted(set(matches))
        if not matches:
            raise InputError(f"file {name!r} not found under the library root {self.root}")
        if len(matches) > 1:
            shown = ", ".join(matches[:_AMBIGUOUS_SHOWN]) + (", …" if len(matches) > _AMBIGUOUS_SHOWN else "")
            raise InputError(f"file {name!r} is ambiguous: {len(matches)} files of that name under the library "
                             f"root ({shown}); write its path relative to the root")
        return self.root / matches[0], matches[0]


def apply_sheet_files(conn: Connection, plan: FilePlan, *, dry_run: bool = False) -> FileLinks:
    """Link each planned file to its row's sheet track (pinned), and unpin tracks whose rows name none.

    Runs after the sync created the rows' tracks, in the caller's transaction; writes only what
    changed (a re-sync with the same files writes nothing).
    """
    from music_classifier.ingest.audio_scan import mark_features_stale

    result = FileLinks()
    # Only the tracks involved are read (a 100,000-row sheet without files reads none but its pins).
    pinned = conn.execute(select(tracks.c.id, tracks.c.track_key).where(
        tracks.c.audio_origin == ORIGIN, tracks.c.source == ORIGIN)).all()
    # A row that names no file any more gives its track back to the scan (the path stays until then).
    unpin = [r.id for r in pinned if r.track_key not in plan.keys_with_cell]
    result.unpinned = len(unpin)
    columns = (tracks.c.id, tracks.c.source, tracks.c.track_key, tracks.c.artist, tracks.c.title, tracks.c.audio_path,
               tracks.c.audio_origin, tracks.c.file_sha256, tracks.c.duration_s, tracks.c.sample_rate,
               tracks.c.channels)
    sheet_tracks: dict[str, Any] = {}
    holders: dict[str, Any] = {}
    keys = sorted({f.key for f in plan.files})
    paths = sorted({f.file.rel for f in plan.files})
    for start in range(0, len(keys), 500):
        for r in conn.execute(select(*columns).where(tracks.c.source == ORIGIN,
                                                     tracks.c.track_key.in_(keys[start:start + 500]))):
            sheet_tracks[r.track_key] = r
    for start in range(0, len(paths), 500):
        for r in conn.execute(select(*columns).where(tracks.c.audio_path.in_(paths[start:start + 500]))):
            holders[r.audio_path] = r

    holders_released: set[int] = set()  # tracks that lose their file to a row
    moving: set[int] = set()  # rows' tracks whose path changes (cleared first too: audio_path is unique)
    remove: set[int] = set()  # 'file' tracks registered from a file a row now names: the same recording
    writes: list[dict] = []
    content_changed: list[int] = []
    for planned in plan.files:
        f = planned.file
        assert f.info is not None
        target = sheet_tracks.get(planned.key)
        holder = holders.get(f.rel)
        if holder is not None and (target is None or holder.id != target.id):
            holders_released.add(holder.id)
            if holder.source == "file":
                remove.add(holder.id)
            who = f"{holder.artist} - {holder.title}" if holder.artist else holder.title
            result.taken.append(f"row {planned.row_number}: file {f.rel!r} was the audio of track #{holder.id} "
                                f"({who}); it is now this row's")
        if target is None:  # only on a dry run: the row's track does not exist yet
            result.linked += 1
            continue
        new = (f.rel, f.sha256, f.info.sample_rate, f.info.channels, ORIGIN)
        old = (target.audio_path, target.file_sha256, target.sample_rate, target.channels, target.audio_origin)
        if new == old and target.duration_s is not None and abs(target.duration_s - f.info.duration_s) < 1e-6:
            result.unchanged += 1
            continue
        result.linked += 1
        if target.audio_path not in (None, f.rel):
            moving.add(target.id)
        if target.file_sha256 is not None and target.file_sha256 != f.sha256:
            content_changed.append(target.id)
        writes.append({"b_id": target.id, "b_path": f.rel, "b_sha": f.sha256, "b_duration": f.info.duration_s,
                       "b_rate": f.info.sample_rate, "b_channels": f.info.channels})
    if dry_run:
        return result
    written = {w["b_id"] for w in writes}
    cleared = sorted(holders_released | moving)
    if cleared:
        conn.execute(update(tracks).where(tracks.c.id.in_(cleared)).values(
            audio_path=None, file_sha256=None, duration_s=None, sample_rate=None, channels=None, audio_origin=None,
            updated_at=func.now()))
    # A track left without its file: its features describe audio it no longer has.
    result.marked_stale += mark_features_stale(conn, holders_released - written)
    if remove:
        conn.execute(update(tracks).where(tracks.c.id.in_(sorted(remove))).values(removed_at=func.now()))
    if writes:
        conn.execute(update(tracks).where(tracks.c.id == bindparam("b_id")).values(
            audio_path=bindparam("b_path"), file_sha256=bindparam("b_sha"), duration_s=bindparam("b_duration"),
            sample_rate=bindparam("b_rate"), channels=bindparam("b_channels"), audio_origin=ORIGIN,
            updated_at=func.now()), writes)
    result.marked_stale += mark_features_stale(conn, content_changed)
    if unpin:
        conn.execute(update(tracks).where(tracks.c.id.in_(unpin)).values(audio_origin=None, updated_at=func.now()))
    return result

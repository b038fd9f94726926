"""The class sheet -> students, tracks, proposals and track genres.

:func:`parse_rows` turns a :class:`SheetTable` into validated rows and bad rows (each with its sheet
row number; :func:`parse_for_sync` does the same reusing the stored track keys). :func:`sync_sheet`
applies them in the caller's transaction: it loads the current state with one query per table,
computes the diff in Python and writes only the difference in bulk (executemany in chunks; COPY
on PostgreSQL for large inserts), so a 100,000-row sheet syncs in seconds and a re-sync with no
change writes nothing at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, Integer, Table, bindparam, delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from music_classifier.db.tables import MAX_TEXT, proposals, students, track_genres, tracks
from music_classifier.errors import InputError
from music_classifier.ingest.audio_files import ScanProgress
from music_classifier.ingest.genres import (
    NearMiss,
    genre_key,
    load_alias_map,
    near_misses,
    resolve_genres,
    validate_genre_name,
)
from music_classifier.ingest.keys import KEY_SEPARATOR, fold, normalise_artist, normalise_title
from music_classifier.ingest.label_decisions import DecisionConflict, decision_conflicts
from music_classifier.ingest.sheet_files import (
    FileLinks,
    FilePlan,
    FileProblem,
    apply_sheet_files,
    plan_sheet_files,
)
from music_classifier.ingest.sheet_source import SheetTable

SOURCE = "sheet"
MAX_SONG = tracks.c.song.type.length
REMOVAL_LIMIT = 0.20  # a sync dropping more than this share of the live sheet tracks is probably the wrong sheet
RELABEL_LIMIT = REMOVAL_LIMIT  # the same for changing their coarse genre (swapped genre columns, wrong sheet)
RELABEL_SAMPLE = 3  # changes shown when a sync stops for relabelling
CHUNK = 5_000  # rows per executemany: bounded memory, few round trips
COPY_THRESHOLD = 2_000  # below this, a plain executemany is as fast as COPY on PostgreSQL
SQLITE_BIG_CACHE_MIN_ROWS = 10_000  # from this many sheet rows, a sync on SQLite gets a larger page cache
SQLITE_BIG_CACHE_KIB = -65_536  # PRAGMA cache_size: negative = KiB, so 64 MiB
FK_BULK_CHECK_MIN_ROWS = 20_000  # PostgreSQL: from this many new child rows, check foreign keys in one pass
_SEPARATOR = re.compile(r"\s+[-\u2013\u2014]\s+")  # "Artist - Title", also with an en or em dash
_HEADER_NOISE = re.compile(r"[\s_\-]+")
_WORDS = re.compile(r"[^\W_]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc, as a regex: fast on 100,000 rows
GENRE_COLUMNS = ("coarse_genre", "genre1", "genre2", "genre3")
_HEADER_ALIASES = {
    "student": "student", "studentname": "student",
    "song": "song", "track": "song",
    "artist": "artist", "title": "title",
    "coarsegenre": "coarse_genre",
    "genre1": "genre1", "genre2": "genre2", "genre3": "genre3",
    # The row's own audio file (ingest/sheet_files.py), relative to the library root or a bare name.
    "file": "file", "audio": "file", "path": "file", "filename": "file",
}


class SheetRow(NamedTuple):  # a NamedTuple: 100,000 of them are built per sync, and tuples are cheap
    row_number: int
    student: str
    artist: str
    title: str
    song: str
    genres: tuple[str, ...]  # genres[0] is the coarse genre, then up to three subgenres
    key: str


@dataclass(frozen=True)
class BadRow:
    row_number: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row_number}: {self.reason}"


@dataclass
class ParsedSheet:
    rows: list[SheetRow]
    bad_rows: list[BadRow]
    origin: str = ""
    # (row number, track key, cell) of the good rows whose file column names a file, in sheet order
    file_cells: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class GenreNearMiss:
    """A new coarse genre of the sheet that is probably a typo of a known one, and the rows using it."""

    miss: NearMiss
    rows: tuple[int, ...]

    def __str__(self) -> str:
        shown = ", ".join(map(str, self.rows[:10])) + (", …" if len(self.rows) > 10 else "")
        return (f"row{'s' if len(self.rows) > 1 else ''} {shown}: coarse genre {self.miss.spelling!r} is new and "
                f"close to {self.miss.existing!r}; if it is a typo, run: {self.miss.fix_command}")


@dataclass
class SyncReport:
    """What a sync did (or, with ``dry_run``, would do). Counts are tracks unless named otherwise."""

    added: int = 0
    revived: int = 0  # soft-deleted tracks that are back in the sheet
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped_rows: list[BadRow] = field(default_factory=list)
    genre_mapping_applied: dict[str, str] = field(default_factory=dict)  # sheet spelling -> genre
    genres_created: list[str] = field(default_factory=list)
    genre_near_misses: list[GenreNearMiss] = field(default_factory=list)  # new coarse genres that look like typos
    file_problems: list[FileProblem] = field(default_factory=list)  # file cells that could not be used
    files: FileLinks = field(default_factory=FileLinks)  # what the file column did to the tracks' audio
    students_added: int = 0
    proposals_added: int = 0
    proposals_removed: int = 0
    proposals_moved: int = 0  # same student and song, different sheet row
    # Decided tracks (label_decisions) whose sheet genre this sync changed: the decision stands, listed here
    decision_conflicts: list[DecisionConflict] = field(default_factory=list)
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return any((self.added, self.revived, self.updated, self.removed, self.genres_created, self.students_added,
                    self.proposals_added, self.proposals_removed, self.proposals_moved, self.files.linked,
                    self.files.unpinned))


# --------------------------------------------------------------------------- parsing


def _header_map(table: SheetTable) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, header in enumerate(table.headers):
        name = _HEADER_ALIASES.get(_HEADER_NOISE.sub("", header.casefold()))
        if name is None:
            continue  # extra columns (comments, links) are allowed and ignored
        if name in found:
            raise InputError(f"{table.origin}: columns {table.headers[found[name]]!r} and {header!r} "
                             f"both mean {name!r}; keep one")
        found[name] = index
    missing = [c for c in ("student", "coarse_genre") if c not in found]
    if "song" not in found and not {"artist", "title"} <= found.keys():
        missing.insert(1, "song" if "artist" not in found else "title")
    if missing:
        have = ", ".join(table.headers) or "none"
        raise InputError(f"{table.origin}: missing column {' and '.join(repr(m) for m in missing)} "
                         f"(found: {have}){table.worksheet_hint()}")
    return found


def _clean(value: str, what: str, limit: int) -> str:
    """Collapse outer whitespace; refuse control characters and over-long text (InputError = bad row)."""
    text = value.strip()
    if _CONTROL.search(text):
        raise InputError(f"control character in {what}")
    if len(text) > limit:
        raise InputError(f"{what} is longer than {limit} characters")
    return text


def _key_part(text: str, normalise: Any) -> str:
    """keys.normalise_* keep only Latin letters and digits, so "Кино" or "坂本龍一" normalise to "";
    every Cyrillic song would then share one key. Fall back to the text's Unicode words, folded.
    TODO(keys.py owner): make keys.py Unicode-aware and drop this fallback."""
    key = normalise(text)
    if key:
        return key
    return " ".join(_WORDS.findall(fold(text)))


_new_tuple = tuple.__new__


class _RowParser:
    """Validates one row at a time with per-sheet caches: a class sheet repeats its genres, artists
    and (on a re-sync) whole songs, and the normalisation in keys.py is the costly part."""

    def __init__(self, cols: dict[str, int], known_keys: dict[tuple[str, str], str]) -> None:
        self.student = cols["student"]
        self.artist = cols.get("artist")
        # With an artist column the song column holds the title; without one it holds "Artist - Title".
        self.song = cols.get("title", cols.get("song")) if self.artist is not None else cols["song"]
        self.genre_cols = [(name, cols[name]) for name in GENRE_COLUMNS if name in cols]
        self.known_keys = known_keys
        self.genre_cache: dict[str, str | InputError] = {}
        self.artist_keys: dict[str, str] = {}
        self.student_names: dict[str, str] = {}

    def parse(self, cells: Sequence[str], row_number: int) -> SheetRow:
        # Fast path: one join and one regex per row (a row shorter than MAX_TEXT in total has no
        # over-long cell); the field-by-field checks only run when something may be wrong.
        joined = "".join(cells)
        if len(joined) > MAX_TEXT or _CONTROL.search(joined):
            student = _clean(cells[self.student], "student", MAX_TEXT)
            raw_song = _clean(cells[self.song], "song", MAX_SONG)
            raw_artist = _clean(cells[self.artist], "artist", MAX_TEXT) if self.artist is not None else ""
        else:
            student = cells[self.student].strip()
            raw_song = cells[self.song].strip()
            raw_artist = cells[self.artist].strip() if self.artist is not None else ""
        if not student:
            raise InputError("empty student")
        if self.artist is not None:
            artist, title = raw_artist, raw_song
            if not artist or not title:
                raise InputError("empty song" if not artist and not title else
                                 "empty artist" if not artist else "empty title")
            song = f"{artist} - {title}"
        else:
            if not raw_song:
                raise InputError("empty song")
            parts = _SEPARATOR.split(raw_song, maxsplit=1)
            if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
                raise InputError(f"song {raw_song[:60]!r} is not \"Artist - Title\"")
            artist, title = parts[0].strip(), parts[1].strip()
            song = raw_song
        if len(artist) > MAX_TEXT or len(title) > MAX_TEXT or len(song) > MAX_SONG:
            raise InputError(f"artist or title is longer than {MAX_TEXT} characters")
        genres: list[str] = []
        for column, index in self.genre_cols:
            value = cells[index]
            if not value or value.isspace():
                if column == "coarse_genre":
                    raise InputError("blank genre")
                continue  # subgenres are optional
            verdict = self.genre_cache.get(value)
            if verdict is None:
                verdict = self.genre_cache[value] = self._check_genre(value)
            if isinstance(verdict, InputError):
                raise InputError(f"{column}: {verdict}")
            genres.append(verdict)
        key = self.known_keys.get((artist, title)) or self._key(artist, title)
        name = self.student_names.get(student)
        if name is None:
            name = self.student_names[student] = " ".join(student.split())
        # tuple.__new__ skips the NamedTuple's Python-level __new__: this runs once per row.
        return _new_tuple(SheetRow, (row_number, name, artist, title, song, tuple(genres), key))

    @staticmethod
    def _check_genre(value: str) -> str | InputError:
        """The cleaned genre name, or the error (cached per spelling, so not raised here)."""
        try:
            return validate_genre_name(_clean(value, "genre", 10 * MAX_TEXT))
        except InputError as exc:
            return exc

    def _key(self, artist: str, title: str) -> str:
        """keys.track_key(artist, title), with the artist half cached: artists repeat down a sheet."""
        artist_key = self.artist_keys.get(artist)
        if artist_key is None:
            artist_key = self.artist_keys[artist] = _key_part(artist, normalise_artist)
        title_key = _key_part(title, normalise_title)
        if not artist_key and not title_key:
            raise InputError("song has no letters or digits")
        return f"{artist_key}{KEY_SEPARATOR}{title_key}"


def parse_rows(table: SheetTable, *, known_keys: dict[tuple[str, str], str] | None = None) -> ParsedSheet:
    """Validate every row. Blank rows are ignored; bad and duplicated rows are reported with their
    sheet row number (the header is row 1) and left out. A missing column raises InputError.

    ``known_keys`` ((artist, title) -> track key, see :func:`sheet_track_keys`) lets a re-sync skip
    recomputing the keys of songs already stored with exactly that spelling."""
    columns = _header_map(table)
    parser = _RowParser(columns, known_keys or {})
    fast = _fast_parser(parser, table.rows)
    file_col = columns.get("file")
    file_cells: list[tuple[int, str, str]] = []
    rows: list[SheetRow] = []
    bad: list[BadRow] = []
    seen: dict[tuple[str, str], int] = {}
    first = table.first_row_number
    folded_names: dict[str, str] = {}  # student name -> casefolded: a student proposes many songs
    for offset, cells in enumerate(table.rows):
        if not any(cells):
            continue  # an empty row (an XLSX gap may hold a million): skipped before any parsing
        row = fast(cells, first + offset) if fast is not None else None
        if row is None:  # not the common case, or the table has a suspicious cell: validate field by field
            try:
                row = parser.parse(cells, first + offset)
            except InputError as exc:
                if any(c.strip() for c in cells):  # blank rows are not errors, just gaps in the sheet
                    bad.append(BadRow(first + offset, str(exc)))
                continue
        folded = folded_names.get(row.student)
        if folded is None:
            folded = folded_names[row.student] = row.student.casefold()
        identity = (folded, row.key)
        if identity in seen:
            bad.append(BadRow(row.row_number, f"duplicate of row {seen[identity]} (same student and song)"))
            continue
        seen[identity] = row.row_number
        rows.append(row)
        if file_col is not None and cells[file_col].strip():
            file_cells.append((row.row_number, row.key, cells[file_col]))
    return ParsedSheet(rows=rows, bad_rows=bad, origin=table.origin, file_cells=file_cells)


_Fast = Callable[[Sequence[str], int], "SheetRow | None"]


def _fast_parser(parser: _RowParser, rows: list[list[str]]) -> _Fast | None:
    """A lean parser for the common row of a common sheet, or None when the table does not qualify.

    It returns exactly what :meth:`_RowParser.parse` returns, or None when the row needs that
    method's field-by-field checks (an empty, bad or over-long field; it then raises the precise
    error). What makes it lean: the control-character and length checks are done once per column
    for the whole table instead of once per row, and each distinct genre spelling is validated
    once (a sheet repeats its genres)."""
    if parser.artist is not None or not rows:
        return None  # separate artist/title columns: rare enough for the general path
    student_col, song_col = parser.student, parser.song
    for index, limit in ((student_col, MAX_TEXT), (song_col, MAX_SONG)):
        column = [cells[index] for cells in rows]
        if max(map(len, column)) > limit or _CONTROL.search("".join(column)):
            return None
    # Genre spelling -> cleaned name, "" when blank, or None when invalid (the general path then
    # names the column and the reason).
    verdicts: dict[str, str | None] = {}
    for _, index in parser.genre_cols:
        for value in {cells[index] for cells in rows}:
            if value in verdicts:
                continue
            if not value or value.isspace():
                verdicts[value] = ""
                continue
            checked = parser.genre_cache.get(value)
            if checked is None:
                checked = parser.genre_cache[value] = parser._check_genre(value)
            verdicts[value] = checked if isinstance(checked, str) else None
    (_, coarse_col), *sub_cols = parser.genre_cols
    sub_indexes = [index for _, index in sub_cols]
    split = _SEPARATOR.split
    known_get = parser.known_keys.get if parser.known_keys else None
    names = parser.student_names
    make_key = parser._key

    def fast(cells: Sequence[str], row_number: int) -> SheetRow | None:
        student = cells[student_col].strip()
        song = cells[song_col].strip()
        if not student or not song:
            return None
        parts = split(song, 1)
        if len(parts) != 2:
            return None
        artist, title = parts[0].strip(), parts[1].strip()
        if not artist or not title or (len(song) > MAX_TEXT and (len(artist) > MAX_TEXT or len(title) > MAX_TEXT)):
            return None
        coarse = verdicts[cells[coarse_col]]
        if not coarse:
            return None
        genres = [coarse]
        for index in sub_indexes:
            sub = verdicts[cells[index]]
            if sub is None:
                return None
            if sub:
                genres.append(sub)
        key = known_get((artist, title)) if known_get is not None else None
        if not key:
            try:
                key = make_key(artist, title)
            except InputError:
                return None
        name = names.get(student)
        if name is None:
            name = names[student] = " ".join(student.split())
        return _new_tuple(SheetRow, (row_number, name, artist, title, song, tuple(genres), key))

    return fast


def sheet_track_keys(conn: Connection) -> dict[tuple[str, str], str]:
    """(artist, title) -> track key of the sheet tracks already stored (one query)."""
    # A full scan filtered in Python: on SQLite twice as fast as the (source, track_key) index here.
    return {(artist, title): key for source, artist, title, key in _fetch(
        conn, select(tracks.c.source, tracks.c.artist, tracks.c.title, tracks.c.track_key)) if source == SOURCE}


def parse_for_sync(conn: Connection, table: SheetTable) -> ParsedSheet:
    """:func:`parse_rows` with the stored keys reused: what `sheet sync` runs before :func:`sync_sheet`."""
    return parse_rows(table, known_keys=sheet_track_keys(conn))


# --------------------------------------------------------------------------- bulk reads and writes


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _fetch(conn: Connection, statement: Any) -> list[tuple]:
    """Run a SELECT on the DBAPI cursor and return plain tuples: loading 100,000s of rows through
    SQLAlchemy's Row objects costs more than the whole diff. Parameters stay bound."""
    compiled = statement.compile(dialect=conn.dialect)
    params: Any = compiled.params
    if compiled.positional:
        params = tuple(compiled.params[name] for name in compiled.positiontup)
    sql = str(compiled)
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    except conn.dialect.loaded_dbapi.Error as exc:  # wrap as SQLAlchemy does, so callers see one error type
        raise DBAPIError.instance(sql, params, exc, conn.dialect.loaded_dbapi.Error) from exc
    finally:
        cursor.close()


def _is_int_columns(table: Table, columns: Sequence[str]) -> bool:
    return all(isinstance(table.c[c].type, Integer) and not table.c[c].nullable for c in columns)


def _bulk_insert(conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple]) -> None:
    """Insert many rows in the caller's transaction: COPY on PostgreSQL (the data is streamed, never
    spliced into SQL), one prepared INSERT with executemany elsewhere."""
    if not rows:
        return
    preparer = conn.dialect.identifier_preparer
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        names = ", ".join(preparer.quote(c) for c in columns)
        sql = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
        # NOT NULL integer columns need no escaping in COPY's text format: format whole blocks
        # with str.join instead of one write_row call per row (350,000 calls for a 100,000-row sheet).
        as_text = _is_int_columns(table, columns)
        try:
            with conn.connection.driver_connection.cursor() as cursor, cursor.copy(sql) as copy:
                if as_text:
                    for chunk in _chunks(rows, 10 * CHUNK):
                        copy.write("".join(["\t".join(map(str, row)) + "\n" for row in chunk]))
                else:
                    for row in rows:
                        copy.write_row(row)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(sql, None, exc, conn.dialect.loaded_dbapi.Error) from exc
        return
    if conn.dialect.paramstyle == "qmark":
        sql = str(insert(table).values({c: bindparam(c) for c in columns}).compile(dialect=conn.dialect))
        for chunk in _chunks(rows):
            conn.exec_driver_sql(sql, list(chunk))
        return
    for chunk in _chunks(rows):
        conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in chunk])


def _insert_children(conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple],
                     stored: int) -> None:
    """Bulk-insert rows of a table with foreign keys (``stored`` = rows it holds already).

    PostgreSQL checks a foreign key with one trigger query per inserted row, COPY included, and
    for a 100,000-row sheet (~350,000 child rows, two foreign keys each) those checks cost more
    than the whole rest of the sync. For a load that at least doubles the table, the foreign keys
    are dropped and re-added, with their exact definitions and names, around the COPY, in this
    transaction: ADD CONSTRAINT checks every row in one pass (a join), so nothing unchecked is
    ever committed, and no other session sees the table without its constraints (ALTER TABLE
    holds an ACCESS EXCLUSIVE lock until commit). This is the bulk-load recipe of PostgreSQL's
    manual ("Populating a Database: Remove Foreign Key Constraints"). Triggers are never disabled.
    When the role may not alter the table, the per-row checks stay."""
    if conn.dialect.name != "postgresql" or len(rows) < FK_BULK_CHECK_MIN_ROWS or len(rows) < stored:
        _bulk_insert(conn, table, columns, rows)
        return
    name = conn.dialect.identifier_preparer.format_table(table)
    quote = conn.dialect.identifier_preparer.quote
    foreign_keys = [(con, definition) for con, definition in conn.execute(text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = CAST(:table AS regclass) AND contype = 'f' ORDER BY conname"), {"table": name})]
    if not foreign_keys:
        _bulk_insert(conn, table, columns, rows)
        return
    try:
        with conn.begin_nested():  # a savepoint: a refused ALTER must not abort the sync
            conn.exec_driver_sql(f"ALTER TABLE {name} "
                                 + ", ".join(f"DROP CONSTRAINT {quote(con)}" for con, _ in foreign_keys))
    except DBAPIError:
        _bulk_insert(conn, table, columns, rows)
        return
    _bulk_insert(conn, table, columns, rows)
    conn.exec_driver_sql(f"ALTER TABLE {name} "
                         + ", ".join(f"ADD CONSTRAINT {quote(con)} {definition}" for con, definition in foreign_keys))


def _bulk_execute(conn: Connection, statement: Any, params: list[dict[str, Any]]) -> None:
    for chunk in _chunks(params):
        conn.execute(statement, list(chunk))


def _update_tracks(conn: Connection, ids: Iterable[int], values: dict[str, Any]) -> None:
    ids = sorted(ids)
    for chunk in _chunks(ids, 1_000):
        conn.execute(update(tracks).where(tracks.c.id.in_(chunk)).values(**values))


# --------------------------------------------------------------------------- sync


def _preview_genres(conn: Connection, names: Iterable[str]) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """What resolve_genres would do, without creating anything (for --dry-run). Unknown genres get
    negative placeholder ids, so they compare as changes."""
    from music_classifier.db.tables import genres
    from music_classifier.ingest.genres import display_name

    mapping = load_alias_map(conn)
    displays = dict(_fetch(conn, select(genres.c.id, genres.c.display_name)))
    ids: dict[str, int] = {}
    applied: dict[str, str] = {}
    created: list[str] = []
    for raw in dict.fromkeys(names):
        key = genre_key(raw)
        if key not in mapping:
            mapping[key] = -1 - len(created)
            created.append(display_name(raw))
            displays[mapping[key]] = created[-1]
        ids[raw] = mapping[key]
        if displays[mapping[key]] != raw:
            applied[raw] = displays[mapping[key]]
    return ids, applied, created


def _resolve_genre_names(conn: Connection, wanted: dict[str, SheetRow], report: SyncReport) -> dict[str, int]:
    names = [g for row in wanted.values() for g in row.genres]
    if report.dry_run:
        ids, report.genre_mapping_applied, report.genres_created = _preview_genres(conn, names)
        return ids
    resolution = resolve_genres(conn, names)
    report.genre_mapping_applied, report.genres_created = dict(resolution.applied), list(resolution.created)
    return resolution.ids


def genre_near_misses(conn: Connection, parsed: ParsedSheet) -> list[GenreNearMiss]:
    """The sheet's new coarse genres that look like typos of known ones (or of a commoner new
    spelling in the same sheet), with the rows that use them, in sheet order. Reads only."""
    rows_by_spelling: dict[str, list[int]] = {}
    for row in parsed.rows:
        rows_by_spelling.setdefault(row.genres[0], []).append(row.row_number)
    found = near_misses(conn, {spelling: len(rows) for spelling, rows in rows_by_spelling.items()})
    # One report per normalised key ("Metall", "metall"): one alias command fixes every spelling of it.
    by_key: dict[str, tuple[NearMiss, list[int]]] = {}
    for spelling, miss in sorted(found.items(), key=lambda item: rows_by_spelling[item[0]][0]):
        first = by_key.setdefault(genre_key(spelling), (miss, []))
        first[1].extend(rows_by_spelling[spelling])
    return [GenreNearMiss(miss, tuple(sorted(rows))) for miss, rows in by_key.values()]


def sync_sheet(conn: Connection, parsed: ParsedSheet, *, dry_run: bool = False, strict: bool = False,
               allow_removals: bool = False, allow_relabel: bool = False, library_root: Path | None = None,
               progress: ScanProgress | None = None) -> SyncReport:
    """Make the sheet tracks, students, proposals and track genres match ``parsed``, in ``conn``'s
    transaction (the caller commits). Tracks gone from the sheet are soft-deleted (their features
    stay); tracks back in the sheet are revived. Before writing anything, raises InputError when
    ``strict`` and there are bad rows or new coarse genres that look like typos of known ones
    (:func:`genre_near_misses`; without ``strict`` they are reported), when more than 20% of the
    live sheet tracks would be removed and not ``allow_removals``, or when more than 20% of them
    would change coarse genre and not ``allow_relabel``. With ``dry_run`` nothing is written.

    Rows naming their audio file (:mod:`~music_classifier.ingest.sheet_files`) get it as their track's
    pinned audio; ``library_root`` is the configured root (None: the stored one; with neither, such a
    sheet is refused with how to set it; a configured one sets it on first use, see
    ``library_root.root_for_files``). Unusable file cells are reported per row (``--strict`` refuses
    them); ``progress`` sees the files being hashed."""
    plan = None
    if parsed.file_cells:
        from music_classifier.ingest.library_root import root_for_files

        # The stored root, or --library setting it: never the working directory (library_root).
        root = root_for_files(conn, library_root, "the sheet names audio files", record=not dry_run)
        plan = plan_sheet_files(parsed.file_cells, root.path, progress=progress)
        if strict and plan.problems:
            raise InputError(f"--strict: {len(plan.problems)} file cell(s) unusable, first {plan.problems[0]}; "
                             "nothing was written")
    with _sqlite_page_cache(conn, len(parsed.rows)):
        report = _sync(conn, parsed, dry_run=dry_run, strict=strict, allow_removals=allow_removals,
                       allow_relabel=allow_relabel)
    if not dry_run:  # the fixes are printed after the sync: a genre it created needs no --new-genre
        report.genre_near_misses = [GenreNearMiss(n.miss.as_stored(conn), n.rows) for n in report.genre_near_misses]
    if plan is not None:
        report.file_problems = list(plan.problems)
    # Also without a file column: rows that stopped naming a file give their tracks back to the scan.
    report.files = apply_sheet_files(conn, plan or FilePlan(root=None), dry_run=dry_run)
    return report


@contextmanager
def _sqlite_page_cache(conn: Connection, rows: int) -> Iterator[None]:
    """A large SQLite sync writes ~30 MB of table and index pages in one transaction; with the
    default 2 MB page cache SQLite keeps evicting and re-reading the pages of the random-order
    track-key index. Raise the connection's cache for the sync (restored afterwards: the
    connection goes back to the pool); memory, not durability, is what this trades."""
    if conn.dialect.name != "sqlite" or rows < SQLITE_BIG_CACHE_MIN_ROWS:
        yield
        return
    previous = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = {SQLITE_BIG_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(previous)}")


def _sync(conn: Connection, parsed: ParsedSheet, *, dry_run: bool, strict: bool,
          allow_removals: bool, allow_relabel: bool = False) -> SyncReport:
    report = SyncReport(skipped_rows=list(parsed.bad_rows), dry_run=dry_run)
    if strict and parsed.bad_rows:
        raise InputError(f"--strict: {len(parsed.bad_rows)} bad row(s), first {parsed.bad_rows[0]}; "
                         "nothing was written")
    report.genre_near_misses = genre_near_misses(conn, parsed)
    if strict and report.genre_near_misses:
        first, more = report.genre_near_misses[0], len(report.genre_near_misses) - 1
        raise InputError(f"--strict: {first}" + (f" (and {more} more new genre(s) like it)" if more else "")
                         + "; nothing was written")

    # The first row naming a song decides its spelling and genres; later rows only add proposals.
    wanted: dict[str, SheetRow] = {}
    for row in parsed.rows:
        wanted.setdefault(row.key, row)

    # One query per table; full scans filtered in Python beat index lookups and joins when most
    # rows are wanted (SQLite: 0.7 s -> 0.3 s for a 100,000-row sheet).
    existing = {key: (tid, artist, title, song, removed_at) for tid, source, key, artist, title, song, removed_at in
                _fetch(conn, select(tracks.c.id, tracks.c.source, tracks.c.track_key, tracks.c.artist,
                                    tracks.c.title, tracks.c.song, tracks.c.removed_at)) if source == SOURCE}
    live = sum(1 for t in existing.values() if t[4] is None)
    to_remove = [t[0] for key, t in existing.items() if t[4] is None and key not in wanted]
    if len(to_remove) > REMOVAL_LIMIT * live and not allow_removals:
        raise InputError(f"this sync would remove {len(to_remove)} of {live} live sheet tracks "
                         f"(more than {REMOVAL_LIMIT:.0%}: wrong sheet or worksheet?); nothing was written. "
                         "Pass --allow-removals if that is intended")
    new_tracks: list[tuple] = []
    changed: list[dict[str, Any]] = []
    revive: list[int] = []
    kept_live: list[tuple[int, SheetRow]] = []  # (track id, row) of live tracks the sheet keeps
    for key, row in wanted.items():
        current = existing.get(key)
        if current is None:
            new_tracks.append((SOURCE, key, row.artist, row.title, row.song))
            continue
        tid, artist, title, song, removed_at = current
        if removed_at is not None:
            revive.append(tid)
        else:
            kept_live.append((tid, row))
        if artist != row.artist or title != row.title or song != row.song:
            changed.append({"b_id": tid, "artist": row.artist, "title": row.title, "song": row.song})
    all_genres = _fetch(conn, select(track_genres.c.track_id, track_genres.c.rank, track_genres.c.genre_id))
    if not allow_relabel:
        _stop_mass_relabel(conn, kept_live, all_genres, live)
    genre_ids = _resolve_genre_names(conn, wanted, report)
    report.added, report.revived, report.removed = len(new_tracks), len(revive), len(to_remove)

    sheet_ids = {t[0] for t in existing.values()}
    # Only the wanted tracks' stored genres are compared (soft-deleted tracks keep theirs).
    kept_ids = {existing[key][0] for key in wanted if key in existing}
    # (track, rank) as one int, track * 4 + rank (rank is 0..3 by a CHECK constraint): cheaper to hash
    # and build than 250,000 tuples.
    stored_genres = {tid * 4 + rank: gid for tid, rank, gid in all_genres if tid in kept_ids}
    all_proposals = _fetch(conn, select(proposals.c.id, proposals.c.student_id, proposals.c.track_id,
                                        proposals.c.sheet_row))
    current_proposals = {(sid, tid): (pid, sheet_row) for pid, sid, tid, sheet_row in all_proposals
                         if tid in sheet_ids}
    student_ids = dict(_fetch(conn, select(students.c.name, students.c.id)))
    new_students = sorted({row.student for row in parsed.rows} - student_ids.keys())
    report.students_added = len(new_students)

    # New rows need ids before their genres and proposals can be compared: insert them now, or
    # give them negative placeholders on a dry run.
    if dry_run:
        track_ids = {key: t[0] for key, t in existing.items()}
        track_ids.update({r[1]: -1 - i for i, r in enumerate(new_tracks)})
        student_ids.update({name: -1 - i for i, name in enumerate(new_students)})
    else:
        _bulk_insert(conn, tracks, ("source", "track_key", "artist", "title", "song"), new_tracks)
        _bulk_insert(conn, students, ("name",), [(name,) for name in new_students])
        track_ids = {key: t[0] for key, t in existing.items()}
        if new_tracks:
            track_ids = {key: tid for tid, source, key in _fetch(
                conn, select(tracks.c.id, tracks.c.source, tracks.c.track_key)) if source == SOURCE}
        if new_students:
            student_ids = dict(_fetch(conn, select(students.c.name, students.c.id)))
    new_ids = {track_ids[r[1]] for r in new_tracks}

    if stored_genres:
        # (track, rank) -> genre, wanted vs stored, with dict and set operations rather than a loop per rank.
        wanted_genres = {base + rank: genre_ids[name] for key, row in wanted.items()
                         for base in (track_ids[key] * 4,) for rank, name in enumerate(row.genres)}
        genre_inserts = [(pair >> 2, pair & 3, gid) for pair, gid in wanted_genres.items()
                         if pair not in stored_genres]
        genre_updates = [{"b_track": pair >> 2, "b_rank": pair & 3, "genre_id": gid}
                         for pair, gid in wanted_genres.items() if stored_genres.get(pair, gid) != gid]
        genre_deletes = [{"b_track": pair >> 2, "b_rank": pair & 3}
                         for pair in stored_genres.keys() - wanted_genres.keys()]
    else:  # nothing stored (a first sync): every wanted genre is an insert; no dict of 250,000 pairs needed
        genre_inserts = [(tid, rank, genre_ids[name]) for key, row in wanted.items()
                         for tid in (track_ids[key],) for rank, name in enumerate(row.genres)]
        genre_updates, genre_deletes = [], []
    # The sheet's coarse genre (rank 0) of kept tracks, before -> after: a decided track whose sheet genre
    # changes is a conflict to report; the sync writes track_genres (the students' genre), never a decision.
    sheet_changes = {r["b_track"]: (stored_genres.get(r["b_track"] * 4), r.get("genre_id"))
                     for r in (*genre_updates, *genre_deletes) if r["b_rank"] == 0}
    sheet_changes.update({tid: (None, gid) for tid, rank, gid in genre_inserts if rank == 0 and tid in kept_ids})
    report.decision_conflicts = decision_conflicts(conn, sheet_changes)
    genre_changed = ({r[0] for r in genre_inserts} | {r["b_track"] for r in genre_updates}
                     | {r["b_track"] for r in genre_deletes})

    if current_proposals:
        wanted_proposals = {(student_ids[row.student], track_ids[row.key]): row.row_number for row in parsed.rows}
        proposal_inserts = [(sid, tid, n) for (sid, tid), n in wanted_proposals.items()
                            if (sid, tid) not in current_proposals]
    else:  # parse_rows dropped duplicated (student, song) rows, so every pair is new and distinct
        wanted_proposals = {}
        proposal_inserts = [(student_ids[row.student], track_ids[row.key], row.row_number) for row in parsed.rows]
    proposal_moves = [{"b_id": pid, "sheet_row": wanted_proposals[ident]}
                      for ident, (pid, n) in current_proposals.items()
                      if ident in wanted_proposals and wanted_proposals[ident] != n]
    proposal_deletes = [pid for ident, (pid, _) in current_proposals.items() if ident not in wanted_proposals]
    report.proposals_added, report.proposals_moved = len(proposal_inserts), len(proposal_moves)
    report.proposals_removed = len(proposal_deletes)

    changed_ids = {c["b_id"] for c in changed}
    touched = (changed_ids | genre_changed) - new_ids
    report.updated = len(touched - set(revive))
    report.unchanged = len(wanted) - report.added - report.revived - report.updated
    if not dry_run:
        _apply(conn, _Writes(
            changed=changed, touch=(touched - changed_ids) | set(revive), remove=to_remove,
            genre_deletes=genre_deletes, genre_updates=genre_updates, genre_inserts=genre_inserts,
            proposal_deletes=proposal_deletes, proposal_moves=proposal_moves, proposal_inserts=proposal_inserts,
            stored_genres=len(all_genres), stored_proposals=len(all_proposals)))
    return report


def _stop_mass_relabel(conn: Connection, kept_live: list[tuple[int, SheetRow]], all_genres: list[tuple],
                       live: int) -> None:
    """Raise InputError, before anything is written, when more than RELABEL_LIMIT of the live sheet
    tracks would get another coarse genre (rank 0); the message shows a few of the changes. New
    genres are not created to compare: an unknown name simply differs from every stored genre."""
    if len(kept_live) <= RELABEL_LIMIT * live:
        return
    coarse_of = {tid: gid for tid, rank, gid in all_genres if not rank}
    spelled = _GenreIds(load_alias_map(conn))
    changes = [(row, gid) for tid, row in kept_live
               if (gid := coarse_of.get(tid)) is not None and spelled[row.genres[0]] != gid]
    if len(changes) <= RELABEL_LIMIT * live:
        return
    from music_classifier.db.tables import genres

    changes.sort(key=lambda change: change[0].row_number)
    names = dict(_fetch(conn, select(genres.c.id, genres.c.display_name)))
    sample = "; ".join(f"row {row.row_number} {row.song!r}: {names.get(gid, gid)} -> "
                       f"{names.get(spelled[row.genres[0]], row.genres[0])}"
                       for row, gid in changes[:RELABEL_SAMPLE])
    raise InputError(f"this sync would change the coarse genre of {len(changes)} of {live} live sheet tracks "
                     f"(more than {RELABEL_LIMIT:.0%}: swapped genre columns or the wrong sheet?), e.g. {sample}; "
                     "nothing was written. Pass --allow-relabel if that is intended")


class _GenreIds(dict):
    """Sheet spelling -> stored genre id (None for a genre not stored yet), resolved once per spelling."""

    def __init__(self, alias_map: dict[str, int]) -> None:
        super().__init__()
        self.alias_map = alias_map

    def __missing__(self, spelling: str) -> int | None:
        self[spelling] = gid = self.alias_map.get(genre_key(spelling))
        return gid


@dataclass
class _Writes:
    """The diff, as bulk statements' parameters. Empty lists issue no statement at all."""

    changed: list[dict[str, Any]]  # tracks whose artist/title/song text changed
    touch: set[int]  # other tracks to mark updated (genres changed) or revive
    remove: list[int]  # tracks to soft-delete
    genre_deletes: list[dict[str, Any]]
    genre_updates: list[dict[str, Any]]
    genre_inserts: list[tuple]
    proposal_deletes: list[int]
    proposal_moves: list[dict[str, Any]]
    proposal_inserts: list[tuple]
    stored_genres: int = 0  # rows in track_genres and proposals before the sync (all sources)
    stored_proposals: int = 0


def _apply(conn: Connection, w: _Writes) -> None:
    now = datetime.now(UTC)
    _bulk_execute(conn, update(tracks).where(tracks.c.id == bindparam("b_id")).values(
        artist=bindparam("artist"), title=bindparam("title"), song=bindparam("song"), updated_at=now,
        removed_at=None), w.changed)
    _update_tracks(conn, w.touch, {"updated_at": now, "removed_at": None})
    _update_tracks(conn, w.remove, {"removed_at": now, "updated_at": now})
    track_rank = (track_genres.c.track_id == bindparam("b_track")) & (track_genres.c.rank == bindparam("b_rank"))
    _bulk_execute(conn, delete(track_genres).where(track_rank), w.genre_deletes)
    _bulk_execute(conn, update(track_genres).where(track_rank).values(genre_id=bindparam("genre_id")),
                  w.genre_updates)
    _insert_children(conn, track_genres, ("track_id", "rank", "genre_id"), w.genre_inserts, w.stored_genres)
    for chunk in _chunks(w.proposal_deletes, 1_000):
        conn.execute(delete(proposals).where(proposals.c.id.in_(chunk)))
    _bulk_execute(conn, update(proposals).where(proposals.c.id == bindparam("b_id"))
                  .values(sheet_row=bindparam("sheet_row")), w.proposal_moves)
    _insert_children(conn, proposals, ("student_id", "track_id", "sheet_row"), w.proposal_inserts,
                     w.stored_proposals)

"""`sheet push`: write :mod:`.push_rows` to a tab of its own in the class's Google Sheet, or to CSV/XLSX.

The students' tab is never written: the push writes one tab (default ``music-classifier``), creates it
when missing (a ``spreadsheets.batchUpdate`` ``addSheet``), and refuses a tab whose first row is not the
push's header, so a ``--worksheet`` naming the students' (or any other) tab fails before anything is sent.

An existing tab is rewritten in place with ONE ``values.batchUpdate``: the new rows over the whole
extent of the old content, cells beyond the new rows sent as ``""`` (the Sheets API's way to empty a
cell; ``null`` would leave it as it is), so no clear request races the write and a failed request
leaves the old content whole. Values are sent with ``valueInputOption=RAW``: a song title starting
with ``=`` stays text, never a formula. A tab too small for the rows is grown first
(``updateSheetProperties``), as the API refuses a write beyond the grid.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from music_classifier.csv_safety import neutralise_row
from music_classifier.errors import InputError
from music_classifier.ingest.push_rows import PUSH_HEADER, PushTable

if TYPE_CHECKING:
    from music_classifier.settings import Settings

DEFAULT_WORKSHEET = "music-classifier"
SHEETS_SCOPE = "https://www.googleapis.com/auth/spreadsheets"  # read and write; the sync only reads
MIN_GRID_ROWS = 1000  # what a new Google Sheets tab gets by default


# --------------------------------------------------------------------------- diff


def _norm(value: Any) -> Any:
    """A cell as comparable: numbers by value (the API may give 3 or 3.0), text as is, empty as ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, int | float):
        return round(float(value), 6) if math.isfinite(value) else str(value)
    return str(value)


@dataclass
class PushDiff:
    """What a push changes in the tab, rows keyed by track id (the first column)."""

    added: list[int] = field(default_factory=list)
    changed: dict[int, list[str]] = field(default_factory=dict)  # track id -> the columns that change
    removed: list[str] = field(default_factory=list)  # the first cell of each row that goes away
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


def diff_rows(current: list[list[Any]], table: PushTable) -> PushDiff:
    """Compare the tab's current values (header first, as the API returns them) with ``table``."""
    width = len(PUSH_HEADER)
    old: dict[Any, list[Any]] = {}
    diff = PushDiff()
    for row in current[1:]:
        cells = [_norm(c) for c in (list(row) + [""] * width)[:width]]
        if not any(cells):
            continue
        key = cells[0]
        if key in old or not isinstance(key, float):  # a duplicate or a row a person typed: it goes
            diff.removed.append(str(row[0]) if row else "")
            continue
        old[key] = cells
    for r in table.rows:
        cells = [_norm(c) for c in r.cells()]
        before = old.pop(float(r.track_id), None)
        if before is None:
            diff.added.append(r.track_id)
        elif before != cells:
            diff.changed[r.track_id] = [PUSH_HEADER[i] for i in range(width) if before[i] != cells[i]]
        else:
            diff.unchanged += 1
    diff.removed += [f"{k:g}" for k in old]
    return diff


# --------------------------------------------------------------------------- files


def write_csv(table: PushTable, path: Path) -> None:
    """CSV with a header row; text that a spreadsheet would run as a formula is neutralised
    (:mod:`music_classifier.csv_safety`), as ``sql --csv`` does."""
    try:
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerows(neutralise_row(row) for row in table.cells())
    except OSError as exc:
        raise InputError(f"--csv {path}: cannot write the file ({exc.strerror or exc})") from None


def write_xlsx(table: PushTable, path: Path, *, worksheet: str = DEFAULT_WORKSHEET) -> None:
    """An XLSX workbook with one worksheet. Every text cell is stored as a string, never a formula
    (openpyxl would store text starting with ``=`` as one); control characters, which XLSX cannot hold
    (openpyxl refuses them), are dropped."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    workbook = Workbook(write_only=False)
    ws = workbook.active
    ws.title = _xlsx_title(worksheet)
    for r, row in enumerate(table.cells(), start=1):
        for c, value in enumerate(row, start=1):
            if isinstance(value, str):
                value = ILLEGAL_CHARACTERS_RE.sub("", value)
            cell = ws.cell(row=r, column=c, value=value)
            if isinstance(value, str):
                cell.data_type = "s"
    try:
        workbook.save(path)
    except OSError as exc:
        raise InputError(f"--xlsx {path}: cannot write the file ({exc.strerror or exc})") from None


def _xlsx_title(name: str) -> str:
    bad = set("[]:*?/\\")
    if not name or len(name) > 31 or bad & set(name):
        raise InputError(f"--worksheet {name!r}: an XLSX worksheet name has 1-31 characters, none of [ ] : * ? / \\")
    return name


# --------------------------------------------------------------------------- Google Sheets


@dataclass
class PushResult:
    key: str
    worksheet: str
    created: bool  # the tab did not exist (and was created, unless dry_run)
    diff: PushDiff
    n_rows: int
    dry_run: bool


def _quoted(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


def _a1_range(title: str, n_rows: int, n_cols: int) -> str:
    from music_classifier.ingest.sheet_source import column_letter

    return f"{_quoted(title)}!A1:{column_letter(n_cols - 1)}{n_rows}"


def _is_push_tab(values: list[list[Any]]) -> bool:
    """Empty, or written by a push: its first row is the push's header, every column of it (a students'
    tab that happens to start with "track, song" is still refused)."""
    if not any(any(_norm(c) != "" for c in row) for row in values):
        return True
    header = [str(c).strip() for c in values[0]] if values else []
    return header[:len(PUSH_HEADER)] == list(PUSH_HEADER)


def _open(key: str, credentials: Path, settings: Settings) -> tuple[Any, str, dict[str, Any]]:
    import gspread
    from google.auth.exceptions import GoogleAuthError
    from google.oauth2.service_account import Credentials

    from music_classifier.ingest.sheet_source import _load_service_account, _sheets_http_client

    info = _load_service_account(credentials)
    try:
        creds = Credentials.from_service_account_info(info, scopes=[SHEETS_SCOPE])
    except (ValueError, GoogleAuthError) as exc:
        raise InputError(f"--credentials {credentials}: unusable service-account key ({exc})") from None
    client = gspread.Client(auth=creds, http_client=_sheets_http_client(settings.sheets_api_url))
    return client, str(info["client_email"]), info


def push_to_google_sheet(table: PushTable, key_or_url: str, *, worksheet: str = DEFAULT_WORKSHEET,
                         credentials: str | Path | None = None, settings: Settings,
                         dry_run: bool = False) -> PushResult:
    """Write ``table`` to ``worksheet`` of the Google Sheet (see the module docstring). With ``dry_run``
    only read: the metadata and the tab's values, to say what would change."""
    from music_classifier.ingest.google_errors import google_sheet_errors
    from music_classifier.ingest.sheet_source import split_key

    credentials = credentials or settings.google_credentials
    if credentials is None or str(credentials) in ("", "."):
        raise InputError("sheet push --sheet needs --credentials FILE or GOOGLE_APPLICATION_CREDENTIALS (a service "
                         "account the sheet is shared with as Editor)")
    key, _gid = split_key(key_or_url)
    if not worksheet.strip():
        raise InputError("--worksheet: the tab name is empty")
    client, email, info = _open(key, Path(credentials), settings)
    cells = table.cells()
    n_cols = len(PUSH_HEADER)
    forbidden = (f"Google Sheet {key}: the service account {email} may not edit it; share the sheet "
                 "with that address as Editor")
    with google_sheet_errors(key, email, info["token_uri"], forbidden=forbidden):
        http = client.http_client  # gspread's request methods, without gspread.Spreadsheet's extra metadata GET
        props = next((s["properties"] for s in http.fetch_sheet_metadata(key).get("sheets", [])
                      if s["properties"]["title"] == worksheet), None)
        current: list[list[Any]] = []
        if props is not None:
            got = http.values_get(key, _quoted(worksheet), params={"valueRenderOption": "UNFORMATTED_VALUE"})
            current = got.get("values", [])
            if not _is_push_tab(current):
                first = ", ".join(str(c) for c in current[0][:4]) if current else ""
                raise InputError(f"Google Sheet {key}: worksheet {worksheet!r} holds other data (first row: {first}); "
                                 "sheet push writes only its own tab: choose another --worksheet")
        diff = diff_rows(current, table)
        result = PushResult(key=key, worksheet=worksheet, created=props is None, diff=diff,
                            n_rows=len(table.rows), dry_run=dry_run)
        if dry_run:
            return result
        n_rows = max(len(cells), len(current))
        width = max([n_cols] + [len(r) for r in current])
        if props is None:
            # The body gspread's Spreadsheet.add_worksheet sends.
            http.batch_update(key, {"requests": [{"addSheet": {"properties": {
                "title": worksheet, "sheetType": "GRID",
                "gridProperties": {"rowCount": max(MIN_GRID_ROWS, n_rows), "columnCount": width}}}}]})
        else:
            grid = props.get("gridProperties", {})
            if grid.get("rowCount", 0) < n_rows or grid.get("columnCount", 0) < width:
                http.batch_update(key, {"requests": [{"updateSheetProperties": {
                    "properties": {"sheetId": props["sheetId"], "gridProperties": {
                        "rowCount": max(grid.get("rowCount", 0), n_rows),
                        "columnCount": max(grid.get("columnCount", 0), width)}},
                    "fields": "gridProperties(rowCount,columnCount)"}}]})
        # Every cell of the old extent is sent: "" empties a leftover cell, in the same request.
        padded = [list(r) + [""] * (width - len(r)) for r in cells] + [[""] * width] * (n_rows - len(cells))
        http.values_batch_update(key, {"valueInputOption": "RAW", "data": [
            {"range": _a1_range(worksheet, n_rows, width), "majorDimension": "ROWS", "values": padded}]})
    return result


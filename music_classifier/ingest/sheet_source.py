"""Reading the class sheet: a local CSV or XLSX export, a Google Sheet through gspread, or the CSV
export of a sheet shared by link. Every reader returns a :class:`SheetTable` of strings; parsing
the columns is :mod:`music_classifier.ingest.sheet_sync`'s job.

Every problem with the input is an :class:`InputError` (the file or sheet is unusable) or a
:class:`RemoteError` (Google refused or failed), with a one-line message naming the file, the
sheet or the column at fault.
"""

from __future__ import annotations

import csv
import json
import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from music_classifier.errors import InputError, RemoteError
from music_classifier.ingest.input_limits import MAX_CELLS, MAX_COLUMNS, MAX_ROWS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from music_classifier.settings import Settings

SHEETS_READONLY_SCOPE = "https://www.googleapis.com/auth/spreadsheets.readonly"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ATTEMPTS = 5  # one call plus four retries: enough for a short quota burst, bounded for a stuck server
MAX_RETRY_AFTER_S = 30.0  # a Retry-After longer than this is not worth waiting for in a CLI run
BACKOFF_BASE_S = 0.5  # 5xx without Retry-After: 0.5, 1, 2, 4 s
_URL_KEY = re.compile(r"/spreadsheets/d/([a-zA-Z0-9_-]+)")
_URL_GID = re.compile(r"[#&?]gid=(\d+)")
# One physical line of CSV text and its end (\r\n, \r or \n, as io.StringIO(newline="") splits).
_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+")


@dataclass
class SheetTable:
    """A sheet as strings. ``rows[i]`` is sheet row ``first_row_number + i`` (the header is row 1)."""

    headers: list[str]
    rows: list[list[str]]
    first_row_number: int
    origin: str
    worksheet: str | None = None  # the worksheet read, when the source has several (XLSX, Google Sheets)
    worksheets: list[str] = field(default_factory=list)  # every worksheet of the source, in tab order

    def worksheet_hint(self) -> str:
        """"; read worksheet 'Instructions' (worksheets: Instructions, Songs): choose the one with the songs
        with --worksheet NAME", or "" for a one-worksheet source: for a header that is not the songs'."""
        if len(self.worksheets) < 2:
            return ""
        return (f"; read worksheet {self.worksheet!r} (worksheets: {', '.join(self.worksheets)}): choose the one "
                "with the songs with --worksheet NAME")


# --------------------------------------------------------------------------- building a table


def column_letter(index: int) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA": how a spreadsheet user names a column."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def _too_wide(origin: str, where: str) -> InputError:
    return InputError(f"{origin}: {where} has cells beyond column {column_letter(MAX_COLUMNS - 1)} (the cap is "
                      f"{MAX_COLUMNS} columns); delete the cells far to the right or export only the song columns")


def cap_row(row: list[str], row_number: int, origin: str) -> list[str]:
    """``row`` without its blank cells beyond :data:`MAX_COLUMNS`; a non-blank one there is an
    InputError naming the row."""
    if len(row) <= MAX_COLUMNS:
        return row
    if any(c.strip() for c in row[MAX_COLUMNS:]):
        raise _too_wide(origin, f"row {row_number}")
    return row[:MAX_COLUMNS]


def build_table(cells: list[list[str]], origin: str) -> SheetTable:
    """Header row 1 + data rows, padded to the header's width. Empty header cells are refused
    unless the whole column is empty (spreadsheets often export a few blank trailing columns).
    Rows wider than :data:`MAX_COLUMNS` are cut to it when the cells beyond are blank, refused
    otherwise. Blank rows may share one list: treat the rows as read-only."""
    cells = [cap_row(row, number, origin) for number, row in enumerate(cells, start=1)]
    if not any(any(c.strip() for c in row) for row in cells):
        raise InputError(f"{origin}: the file is empty (no header row and no data)")
    headers = [c.strip() for c in cells[0]]
    if not any(headers):
        raise InputError(f"{origin}: row 1 (the header row) is empty; the first row must name the columns")
    width = max(map(len, cells))
    headers += [""] * (width - len(headers))
    # Only columns without a header need to be checked for data (most sheets name every column).
    # One pass over the rows, looking at each row's cells under a blank header only: the work is
    # at most the number of cells, however many blank columns a row adds.
    blank = [i for i, h in enumerate(headers) if not h]
    used: set[int] = set()
    if blank:
        first_blank = blank[0]
        for row in cells[1:]:
            if len(row) <= first_blank:
                continue
            for i in blank:
                if i >= len(row):
                    break
                if row[i].strip():
                    used.add(i)
    keep = width
    while keep and not headers[keep - 1] and keep - 1 not in used:
        keep -= 1  # trailing blank columns
    for i in range(keep):
        if not headers[i]:
            raise InputError(f"{origin}: column {column_letter(i)} has an empty header cell (row 1); "
                             "name the column or delete it")
    headers = headers[:keep]
    padded_blank = [""] * keep  # shared by every empty row (an XLSX gap of a million rows stays cheap)
    rows = [row if len(row) == keep else (row + [""] * (keep - len(row)))[:keep] if row else padded_blank
            for row in cells[1:]]
    return SheetTable(headers=headers, rows=rows, first_row_number=2, origin=origin)


# --------------------------------------------------------------------------- text files


def _binary_error(origin: str, data: bytes) -> InputError:
    if data.startswith(b"PK\x03\x04"):
        return InputError(f"{origin}: this is a ZIP/XLSX file, not a CSV; use --xlsx")
    return InputError(f"{origin}: not a text CSV file (binary content); export the sheet as CSV or XLSX")


def _looks_cyrillic(text: str) -> bool:
    """cp1251 maps every byte 0xC0-0xFF to a Cyrillic letter, so Latin-1 "Beyoncé" also decodes to
    Cyrillic ("Beyoncй"). Real Russian text comes in runs of Cyrillic letters; a Latin-1 accent
    decoded as cp1251 sits alone between ASCII letters. Require most Cyrillic letters to have a
    Cyrillic neighbour."""
    cyr = [i for i, c in enumerate(text) if "\u0400" <= c <= "\u04ff"]
    non_ascii = sum(1 for c in text if ord(c) > 127)
    if not cyr or len(cyr) < 0.8 * non_ascii:
        return False
    cyr_set = set(cyr)
    in_runs = sum(1 for i in cyr if i - 1 in cyr_set or i + 1 in cyr_set)
    return in_runs >= 0.7 * len(cyr)


def decode_text(data: bytes, origin: str) -> str:
    """UTF-8 (with or without BOM) first, then UTF-16 with a BOM, then cp1251 (Russian Excel) or
    cp1252 (Western Excel) when the text looks like it; anything else is refused, not guessed."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise _binary_error(origin, data) from None
    if b"\x00" in data[:65536]:
        raise _binary_error(origin, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = ""
        for encoding in ("cp1251", "cp1252"):
            try:
                candidate = data.decode(encoding)
            except UnicodeDecodeError:
                continue
            if encoding == "cp1252" or _looks_cyrillic(candidate):
                text = candidate
                break
        if not text:
            raise InputError(f"{origin}: the text encoding is neither UTF-8 nor cp1251/cp1252; "
                             "save the file as CSV UTF-8") from None
    controls = sum(1 for c in text[:65536] if unicodedata.category(c) == "Cc" and c not in "\t\r\n")
    if controls > max(2, len(text[:65536]) // 200):
        raise _binary_error(origin, data)
    return text


def _bounded_lines(text: str, delimiter: str, origin: str) -> Iterator[str]:
    """The physical lines of ``text`` for csv.reader, none with :data:`MAX_COLUMNS` delimiters or
    more: such a line loses its trailing delimiters (blank cells) before the reader sees it, or is
    refused with its line number. csv.reader would otherwise build one string per delimiter
    (a 50 MB line of commas: 50 million cells)."""
    for number, match in enumerate(_LINE.finditer(text), start=1):
        line = match.group()
        if line.count(delimiter) >= MAX_COLUMNS:
            body = line.rstrip("\r\n")
            end = line[len(body):]
            body = body.rstrip(delimiter)
            if body.count(delimiter) >= MAX_COLUMNS:
                raise _too_wide(origin, f"line {number}")
            line = body + end
        yield line


def parse_csv_text(text: str, origin: str) -> SheetTable:
    """Parse CSV text; the delimiter (comma, semicolon, tab) is sniffed from the header line.
    Time and memory are linear in the text's length whatever the rows' widths."""
    newline = text.find("\n")
    first_line = text if newline < 0 else text[:newline]
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    delimiter = max(counts, key=counts.get) if any(counts.values()) else ","
    try:
        cells = list(csv.reader(_bounded_lines(text, delimiter, origin), delimiter=delimiter))
    except csv.Error as exc:
        raise InputError(f"{origin}: not a valid CSV file ({exc})") from None
    if not cells:
        raise InputError(f"{origin}: the file is empty (no header row and no data)")
    return build_table(cells, origin)


def read_csv(path: str | Path) -> SheetTable:
    """Read a CSV export (UTF-8, UTF-8 with BOM, UTF-16, cp1251 or cp1252)."""
    path = Path(path)
    origin = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{origin}: cannot read the file ({exc.strerror or exc})") from None
    if not data.strip(b" \t\r\n\xef\xbb\xbf"):
        raise InputError(f"{origin}: the file is empty (no header row and no data)")
    return parse_csv_text(decode_text(data, origin), origin)


# --------------------------------------------------------------------------- XLSX


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a year typed as 1999 comes back as 1999.0
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _xlsx_problem(exc: BaseException) -> str:
    """What is wrong with a workbook, from the exception openpyxl raised (it wraps XML errors in a
    ValueError). openpyxl parses with defusedxml (a dependency), which refuses DTD entities; without
    it, expat's amplification limit raises ParseError. Either way an entity bomb is named as such."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DefusedXmlException) or "amplification" in str(seen):
            return "the workbook declares XML entities (refused: a possible entity bomb)"
        if isinstance(seen, ParseError):
            return "the workbook holds malformed XML"
        seen = seen.__cause__ or seen.__context__
    return "not a valid XLSX workbook"


def _xlsx_cells(ws: Any, origin: str) -> list[list[str]]:
    """The worksheet's rows as strings, each as wide as its last non-empty cell. Built from the
    cells present, not from the declared ``<dimension>`` nor by openpyxl's padding: openpyxl's
    ``iter_rows`` pads every row, gaps included, to the declared width (A1:XFD1048576 asks for 17
    billion cells) or to the row's last cell, styled or not. A missing row is one shared empty
    list. A value beyond :data:`MAX_COLUMNS`, a row number beyond :data:`MAX_ROWS` or more than
    :data:`MAX_CELLS` cells to build (a compressed file can hold gigabytes of XML) is refused."""
    from openpyxl.worksheet._reader import WorkSheetParser

    workbook = ws.parent
    rows: list[list[str]] = []
    gap: list[str] = []  # every missing or empty row is this one list
    built = 0  # cells built so far: the rows' widths, gaps cost none
    # The same parser and arguments as openpyxl's own read-only iteration (ReadOnlyWorksheet._cells_by_row).
    with ws._get_source() as source:
        parser = WorkSheetParser(source, ws._shared_strings, data_only=workbook.data_only, epoch=workbook.epoch,
                                 date_formats=workbook._date_formats, timedelta_formats=workbook._timedelta_formats)
        for number, row_cells in parser.parse():
            if number <= len(rows):
                continue  # a repeated or out-of-order row number: openpyxl skips it too
            if number > MAX_ROWS:
                raise InputError(f"{origin}: row {number} is beyond row {MAX_ROWS} (the cap, Excel's own limit)")
            values = {c["column"]: c["value"] for c in row_cells if c["value"] is not None and c["column"] >= 1}
            if values and max(values) > MAX_COLUMNS:
                raise _too_wide(origin, f"row {number}")
            rows.extend([gap] * (number - 1 - len(rows)))
            if values:
                built += max(values)
                if built > MAX_CELLS:
                    raise InputError(f"{origin}: more than {MAX_CELLS:,} cells up to row {number} (the cap); "
                                     "export only the song rows and columns")
                row = [""] * max(values)
                for column, value in values.items():
                    row[column - 1] = _cell_text(value)
                rows.append(row)
            else:
                rows.append(gap)
    return rows


def read_xlsx(path: str | Path, *, worksheet: str | None = None) -> SheetTable:
    """Read the first (or the named) worksheet of an XLSX workbook."""
    import zipfile
    from xml.etree.ElementTree import ParseError

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    path = Path(path)
    origin = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{origin}: cannot read the file ({exc.strerror or exc})") from None
    if size == 0:
        raise InputError(f"{origin}: the file is empty (no header row and no data)")
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            if worksheet is None:
                ws = workbook.worksheets[0]
            elif worksheet in workbook.sheetnames:
                ws = workbook[worksheet]
            else:
                raise InputError(f"{origin}: no worksheet {worksheet!r} (worksheets: {', '.join(workbook.sheetnames)})")
            cells = _xlsx_cells(ws, origin)  # parses the sheet
            sheetnames = list(workbook.sheetnames)
        finally:
            workbook.close()
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, IndexError, ParseError) as exc:
        raise InputError(f"{origin}: {_xlsx_problem(exc)}; export the sheet again as .xlsx or use --csv") from None
    if worksheet is not None:
        origin = f"{origin} [{worksheet}]"
    table = build_table(cells, origin)
    table.worksheet, table.worksheets = ws.title, list(sheetnames)
    return table


# --------------------------------------------------------------------------- Google Sheets


def split_key(key_or_url: str) -> tuple[str, str | None]:
    """A spreadsheet key and, when the URL names one, the worksheet gid."""
    text = key_or_url.strip()
    match = _URL_KEY.search(text)
    if match:
        gid = _URL_GID.search(text)
        return match.group(1), gid.group(1) if gid else None
    if re.fullmatch(r"[a-zA-Z0-9_-]{10,}", text):
        return text, None
    raise InputError(f"--sheet {key_or_url!r} is neither a spreadsheet key nor a docs.google.com/spreadsheets URL")


def _retry_delay(response: Any, attempt: int) -> float:
    """Honour Retry-After (seconds) when the server sends it; otherwise exponential backoff."""
    header = response.headers.get("Retry-After", "")
    if header.strip().isdigit():
        return min(float(header), MAX_RETRY_AFTER_S)
    return BACKOFF_BASE_S * 2**attempt


def _send_with_retries(send: Any) -> Any:
    """Call ``send()`` until the response is not 429/5xx or the attempts run out."""
    for attempt in range(MAX_ATTEMPTS):
        response = send()
        if response.status_code not in RETRY_STATUSES or attempt == MAX_ATTEMPTS - 1:
            return response
        time.sleep(_retry_delay(response, attempt))
    raise AssertionError("unreachable")


def _sheets_http_client(base_url: str) -> type:
    """gspread's HTTPClient with the Sheets base URL replaced (so tests can use a local fake)
    and a bounded retry for 429 (honouring Retry-After) and 5xx. gspread's own BackOffHTTPClient
    ignores Retry-After and waits up to 128 s."""
    from gspread import urls
    from gspread.exceptions import APIError
    from gspread.http_client import HTTPClient

    google_base = urls.SPREADSHEETS_API_V4_BASE_URL
    our_base = base_url.rstrip("/")

    class SheetsHTTPClient(HTTPClient):
        def request(self, method: str, endpoint: str, params: Any = None, data: Any = None, json: Any = None,
                    files: Any = None, headers: Any = None) -> Any:
            if endpoint.startswith(google_base):
                endpoint = our_base + endpoint[len(google_base):]
            response = _send_with_retries(lambda: self.session.request(
                method=method, url=endpoint, json=json, params=params, data=data, files=files,
                headers=headers, timeout=self.timeout or 60))
            if response.ok:
                return response
            raise APIError(response)

    return SheetsHTTPClient


def _load_service_account(credentials: Path) -> dict[str, Any]:
    try:
        info = json.loads(Path(credentials).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"--credentials {credentials}: cannot read the file ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"--credentials {credentials}: not a JSON file") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise InputError(f"--credentials {credentials}: not a Google service-account key (\"type\" must be "
                         "\"service_account\")")
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if missing:
        raise InputError(f"--credentials {credentials}: missing {', '.join(missing)}")
    return info


def read_google_sheet(key_or_url: str, *, worksheet: str | None = None, credentials: str | Path | None = None,
                      settings: Settings) -> SheetTable:
    """Read a worksheet (the named one, the URL's gid, or the first) through the Sheets API with a
    service account. The sheet must be shared with the service account's email address."""
    import gspread
    from google.auth.exceptions import GoogleAuthError
    from google.oauth2.service_account import Credentials

    from music_classifier.ingest.google_errors import google_sheet_errors

    credentials = credentials or settings.google_credentials
    if credentials is None or str(credentials) in ("", "."):
        raise InputError("--sheet with the Sheets API needs --credentials FILE or GOOGLE_APPLICATION_CREDENTIALS")
    info = _load_service_account(Path(credentials))
    email = info["client_email"]
    key, gid = split_key(key_or_url)
    try:
        creds = Credentials.from_service_account_info(info, scopes=[SHEETS_READONLY_SCOPE])
    except (ValueError, GoogleAuthError) as exc:
        raise InputError(f"--credentials {credentials}: unusable service-account key ({exc})") from None
    client = gspread.Client(auth=creds, http_client=_sheets_http_client(settings.sheets_api_url))
    forbidden = (f"Google Sheet {key} is not shared with the service account {email}: share it with that address "
                 "as Viewer")
    with google_sheet_errors(key, email, info["token_uri"], forbidden=forbidden):
        try:
            spreadsheet = gspread.Spreadsheet(client.http_client, {"id": key})
            if worksheet is not None:
                ws = spreadsheet.worksheet(worksheet)
            elif gid is not None:
                ws = spreadsheet.get_worksheet_by_id(int(gid))
            else:
                ws = spreadsheet.sheet1
            values = ws.get_values()
        except gspread.exceptions.WorksheetNotFound:
            names = ", ".join(w.title for w in spreadsheet.worksheets())
            what = f"worksheet {worksheet!r}" if worksheet is not None else f"worksheet gid={gid}"
            raise InputError(f"Google Sheet {key}: no {what} (worksheets: {names})") from None
    cells = [[_cell_text(v) for v in row] for row in values]
    return build_table(cells or [[]], f"Google Sheet {key} [{ws.title}]")


def read_sheet_csv_export(key_or_url: str, gid: str | int | None = None, *, settings: Settings) -> SheetTable:
    """Read a sheet shared by link ("anyone with the link can view") through its CSV export."""
    import requests

    key, url_gid = split_key(key_or_url)
    gid = gid if gid is not None else url_gid
    url = f"{settings.sheets_export_url.rstrip('/')}/{key}/export"
    params = {"format": "csv"} | ({"gid": str(gid)} if gid is not None else {})
    origin = f"Google Sheet {key} (CSV export)"
    try:
        with requests.Session() as session:
            response = _send_with_retries(lambda: session.get(url, params=params, timeout=60))
    except requests.RequestException as exc:
        raise RemoteError(f"cannot reach {url}: {type(exc).__name__}") from None
    content_type = response.headers.get("Content-Type", "")
    if response.status_code in (401, 403) or (response.ok and "text/html" in content_type):
        raise RemoteError(f"Google Sheet {key} is not shared by link; share it (anyone with the link can view) "
                          "or give a service account with --credentials") from None
    if response.status_code == 404:
        raise RemoteError(f"Google Sheet {key} not found (CSV export); check the key or URL") from None
    if not response.ok:
        raise RemoteError(f"Google Sheets CSV export of {key} failed with HTTP {response.status_code}")
    if not response.content.strip():
        raise InputError(f"{origin}: the sheet is empty (no header row and no data)")
    return parse_csv_text(decode_text(response.content, origin), origin)

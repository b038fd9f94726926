"""A local fake of the Google pieces `sheet sync` talks to, on 127.0.0.1 in a thread:

- ``POST /token``: the OAuth 2.0 JWT-bearer grant a service account uses. The assertion's
  signature is verified against the public key registered for the account.
- ``GET /v4/spreadsheets/{id}`` (metadata) and ``GET /v4/spreadsheets/{id}/values/{range}``: the
  Sheets API v4 as gspread calls it, with Google's error bodies (403 PERMISSION_DENIED for a sheet
  not shared with the caller, 404 NOT_FOUND).
- ``GET /spreadsheets/d/{id}/export?format=csv[&gid=N]``: the CSV export of a sheet shared by link.
- The writes gspread sends (`sheet push`): ``POST /v4/spreadsheets/{id}:batchUpdate`` (``addSheet``,
  ``updateSheetProperties``), ``POST /v4/spreadsheets/{id}/values:batchUpdate``, ``PUT
  /v4/spreadsheets/{id}/values/{range}`` and ``POST .../values/{range}:clear``. As the real API: they
  need a token with the read-write scope and a caller the sheet is shared with as editor; a write
  beyond a tab's grid is refused (400 "exceeds grid limits"); a ``null`` cell is left as it is, ``""``
  empties it. Request bodies are recorded (``Recorded.body``).

Tests configure sheets, who they are shared with and injected failures (``fail_next``), and read
``requests`` to assert what the client did.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fake_http import LocalServer, QuietHandler


@dataclass
class FakeSheet:
    title: str
    worksheets: dict[str, list[list[str]]]  # worksheet title -> rows (header first)
    shared_with: set[str] = field(default_factory=set)  # service-account emails (viewers)
    link_shared: bool = False
    editors: set[str] = field(default_factory=set)  # service-account emails that may write
    grids: dict[str, list[int]] = field(default_factory=dict)  # title -> [rowCount, columnCount] once set

    def grid(self, title: str) -> list[int]:
        return self.grids.setdefault(title, [max(len(self.worksheets[title]), 1000), 26])

    def gid(self, title: str) -> int:
        return list(self.worksheets).index(title) * 1000  # gids are arbitrary integers, not indexes


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    status: int
    at: float
    body: Any = None  # the JSON body of a write request


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class FakeGoogle:
    def __init__(self) -> None:
        self.sheets: dict[str, FakeSheet] = {}
        self.public_keys: dict[str, Any] = {}  # service-account email -> RSA public key
        self.tokens: dict[str, str] = {}  # access token -> email
        self.token_scopes: dict[str, str] = {}  # access token -> the scope(s) granted
        self.requests: list[Recorded] = []
        self._failures: list[tuple[int, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server = LocalServer(self._handler())

    # -- configuration ------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return self._server.base

    @property
    def sheets_api_url(self) -> str:
        return f"{self.base}/v4/spreadsheets/"

    @property
    def export_url(self) -> str:
        return f"{self.base}/spreadsheets/d/"

    @property
    def token_uri(self) -> str:
        return f"{self.base}/token"

    def add_sheet(self, key: str, rows: list[list[str]], *, title: str = "Class songs", worksheet: str = "Sheet1",
                  shared_with: set[str] | None = None, link_shared: bool = False,
                  more: dict[str, list[list[str]]] | None = None, editors: set[str] | None = None) -> FakeSheet:
        sheet = FakeSheet(title, {worksheet: rows, **(more or {})}, set(shared_with or ()), link_shared,
                          set(editors or ()))
        self.sheets[key] = sheet
        return sheet

    def service_account(self, email: str = "sync@class-project.iam.gserviceaccount.com") -> dict[str, Any]:
        """A service-account key (a fresh 2048-bit RSA key) whose token_uri is this fake."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_keys[email] = key.public_key()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": "class-project", "private_key_id": "k1",
                "private_key": pem, "client_email": email, "client_id": "1",
                "token_uri": self.token_uri}

    def write_service_account(self, path: Path, email: str = "sync@class-project.iam.gserviceaccount.com") -> Path:
        path.write_text(json.dumps(self.service_account(email)), encoding="utf-8")
        return path

    def fail_next(self, status: int, count: int = 1, headers: dict[str, str] | None = None) -> None:
        """The next ``count`` Sheets/export requests (not /token) get ``status`` instead."""
        with self._lock:
            self._failures.extend([(status, dict(headers or {}))] * count)

    def api_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path != "/token"]

    def write_requests(self) -> list[Recorded]:
        return [r for r in self.api_requests() if r.method in ("POST", "PUT")]

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> FakeGoogle:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    # -- the HTTP side -------------------------------------------------------------------------

    def _verify_assertion(self, assertion: str) -> tuple[str, str] | None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            header_b64, payload_b64, sig_b64 = assertion.split(".")
            claims = json.loads(_b64decode(payload_b64))
            key = self.public_keys[claims["iss"]]
            key.verify(_b64decode(sig_b64), f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(),
                       hashes.SHA256())
        except (ValueError, KeyError, InvalidSignature):
            return None
        if claims.get("exp", 0) < time.time():
            return None
        return claims["iss"], str(claims.get("scope", ""))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None):
                split = urlsplit(self.path)
                with fake._lock:
                    fake.requests.append(Recorded(self.command, split.path, parse_qs(split.query),
                                                  {k.lower(): v for k, v in self.headers.items()}, status,
                                                  time.monotonic(), getattr(self, "json_body", None)))
                self.write_response(status, body, content_type, headers)

            def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(payload).encode(), "application/json; charset=UTF-8", headers)

            def _error(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None):
                self._json(status, {"error": {"code": status, "message": message, "status": reason}}, headers)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode()
                if urlsplit(self.path).path != "/token":
                    return self._write(raw)
                form = parse_qs(raw)
                if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
                    return self._json(400, {"error": "unsupported_grant_type"})
                verified = fake._verify_assertion(form.get("assertion", [""])[0])
                if verified is None:
                    return self._json(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
                token = f"ya29.fake-{len(fake.tokens)}"
                fake.tokens[token], fake.token_scopes[token] = verified
                self._json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

            def do_PUT(self) -> None:  # noqa: N802
                self._write(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())

            def _write(self, raw: str) -> None:
                """The Sheets API's write endpoints (module docstring)."""
                try:
                    self.json_body = json.loads(raw) if raw else None
                except ValueError:
                    return self._error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
                with fake._lock:
                    failure = fake._failures.pop(0) if fake._failures else None
                if failure is not None:
                    status, headers = failure
                    return self._error(status, "INTERNAL", f"injected {status}", headers)
                parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
                if parts[:2] != ["v4", "spreadsheets"] or len(parts) < 3:
                    return self._error(404, "NOT_FOUND", "no such endpoint")
                key, _, method = parts[2].partition(":")
                sheet = self._authorised(key, write=True)
                if sheet is None:
                    return None
                rest = parts[3:]
                if not rest and method == "batchUpdate" and self.command == "POST":
                    return self._batch_update(key, sheet, self.json_body or {})
                if rest == ["values:batchUpdate"] and self.command == "POST":
                    body = self.json_body or {}
                    return self._write_values(key, sheet, body.get("valueInputOption"), body.get("data", []))
                if rest[:1] == ["values"] and len(rest) == 2 and self.command == "PUT":
                    data = [{"range": rest[1], **(self.json_body or {})}]
                    query = parse_qs(urlsplit(self.path).query)
                    return self._write_values(key, sheet, query.get("valueInputOption", [None])[0], data)
                if rest[:1] == ["values"] and len(rest) == 2 and rest[1].endswith(":clear"):
                    title = rest[1].removesuffix(":clear").split("!")[0].strip("'").replace("''", "'")
                    if title not in sheet.worksheets:
                        return self._error(400, "INVALID_ARGUMENT", f"Unable to parse range: {rest[1]}")
                    sheet.worksheets[title] = []
                    return self._json(200, {"spreadsheetId": key, "clearedRange": rest[1]})
                self._error(404, "NOT_FOUND", "no such endpoint")

            def _authorised(self, key: str, *, write: bool = False) -> FakeSheet | None:
                """The sheet, or None after answering 401/403/404 as Google does."""
                auth = self.headers.get("Authorization", "").removeprefix("Bearer ")
                email = fake.tokens.get(auth)
                if email is None:
                    self._error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
                    return None
                sheet = fake.sheets.get(key)
                if sheet is None:
                    self._error(404, "NOT_FOUND", "Requested entity was not found.")
                    return None
                if write and "https://www.googleapis.com/auth/spreadsheets" not in fake.token_scopes[auth].split():
                    self._error(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.")
                    return None
                if email not in (sheet.editors if write else sheet.shared_with | sheet.editors):
                    self._error(403, "PERMISSION_DENIED", "The caller does not have permission")
                    return None
                return sheet

            def _batch_update(self, key: str, sheet: FakeSheet, body: dict[str, Any]) -> None:
                replies: list[dict[str, Any]] = []
                for i, request in enumerate(body.get("requests", [])):
                    if "addSheet" in request:
                        props = request["addSheet"].get("properties", {})
                        title = props.get("title") or f"Sheet{len(sheet.worksheets) + 1}"
                        if title in sheet.worksheets:
                            return self._error(400, "INVALID_ARGUMENT", f"Invalid requests[{i}].addSheet: A sheet "
                                               f"with the name \"{title}\" already exists. Please enter another name.")
                        grid = props.get("gridProperties", {})
                        sheet.worksheets[title] = []
                        sheet.grids[title] = [int(grid.get("rowCount", 1000)), int(grid.get("columnCount", 26))]
                        replies.append({"addSheet": {"properties": {
                            "sheetId": sheet.gid(title), "title": title, "index": len(sheet.worksheets) - 1,
                            "sheetType": "GRID", "gridProperties": {"rowCount": sheet.grids[title][0],
                                                                    "columnCount": sheet.grids[title][1]}}}})
                    elif "updateSheetProperties" in request:
                        props = request["updateSheetProperties"]["properties"]
                        title = next((t for t in sheet.worksheets if sheet.gid(t) == props.get("sheetId")), None)
                        if title is None:
                            return self._error(400, "INVALID_ARGUMENT", f"Invalid requests[{i}]: no sheet with id "
                                               f"{props.get('sheetId')}")
                        grid = props.get("gridProperties", {})
                        current = sheet.grid(title)
                        sheet.grids[title] = [int(grid.get("rowCount", current[0])),
                                              int(grid.get("columnCount", current[1]))]
                        replies.append({})
                    else:
                        return self._error(400, "INVALID_ARGUMENT", f"requests[{i}]: not supported by the fake")
                self._json(200, {"spreadsheetId": key, "replies": replies})

            def _write_values(self, key: str, sheet: FakeSheet, option: str | None,
                              data: list[dict[str, Any]]) -> None:
                if option not in ("RAW", "USER_ENTERED"):
                    return self._error(400, "INVALID_ARGUMENT", "'valueInputOption' is required but not specified")
                # Check every range first: the real API applies a batch all or nothing.
                plans = []
                for item in data:
                    target = item.get("range", "")
                    title, _, cells = target.partition("!")
                    title = title.strip("'").replace("''", "'")
                    if title not in sheet.worksheets:
                        return self._error(400, "INVALID_ARGUMENT", f"Unable to parse range: {target}")
                    start = (cells or "A1").split(":")[0]
                    col0 = sum((ord(c) - 64) * 26**i for i, c in enumerate(reversed(start.rstrip("0123456789"))))
                    row0 = int(start[len(start.rstrip("0123456789")):] or 1)
                    values = item.get("values", [])
                    last_row = row0 + len(values) - 1
                    last_col = col0 + max((len(r) for r in values), default=1) - 1
                    rows, cols = sheet.grid(title)
                    if last_row > rows or last_col > cols:
                        return self._error(400, "INVALID_ARGUMENT", f"Range ({target}) exceeds grid limits. "
                                           f"Max rows: {rows}, max columns: {cols}")
                    plans.append((title, row0 - 1, col0 - 1, values))
                for title, r0, c0, values in plans:
                    grid = sheet.worksheets[title]
                    for i, row in enumerate(values):
                        while len(grid) <= r0 + i:
                            grid.append([])
                        target_row = grid[r0 + i]
                        for j, value in enumerate(row):
                            if value is None:
                                continue  # null: the cell is left as it is
                            while len(target_row) <= c0 + j:
                                target_row.append("")
                            target_row[c0 + j] = value
                self._json(200, {"spreadsheetId": key, "totalUpdatedRows": sum(len(p[3]) for p in plans)})

            def do_GET(self) -> None:  # noqa: N802
                with fake._lock:
                    failure = fake._failures.pop(0) if fake._failures else None
                if failure is not None:
                    status, headers = failure
                    reason = "RESOURCE_EXHAUSTED" if status == 429 else "INTERNAL"
                    return self._error(status, reason, f"injected {status}", headers)
                split = urlsplit(self.path)
                parts = [unquote(p) for p in split.path.strip("/").split("/")]
                query = parse_qs(split.query)
                if parts[:2] == ["v4", "spreadsheets"] and len(parts) >= 3:
                    return self._sheets_api(parts[2], parts[3:], query)
                if parts[:2] == ["spreadsheets", "d"] and len(parts) == 4 and parts[3] == "export":
                    return self._export(parts[2], query)
                self._error(404, "NOT_FOUND", "no such endpoint")

            def _sheets_api(self, key: str, rest: list[str], query: dict[str, list[str]]) -> None:
                sheet = self._authorised(key)
                if sheet is None:
                    return None
                if not rest:
                    return self._json(200, {
                        "spreadsheetId": key,
                        "properties": {"title": sheet.title, "locale": "en_US", "timeZone": "Europe/Berlin"},
                        "sheets": [{"properties": {
                            "sheetId": sheet.gid(t), "title": t, "index": i, "sheetType": "GRID",
                            "gridProperties": {"rowCount": sheet.grid(t)[0], "columnCount": sheet.grid(t)[1]}}}
                            for i, t in enumerate(sheet.worksheets)],
                    })
                if rest[0] == "values" and len(rest) == 2:
                    title = rest[1].split("!")[0].strip("'").replace("''", "'")
                    if title not in sheet.worksheets:
                        return self._error(400, "INVALID_ARGUMENT", f"Unable to parse range: {rest[1]}")
                    rows = sheet.worksheets[title]
                    # The API drops trailing empty cells and rows, as the real one does.
                    values = [list(r) for r in rows]  # numbers stay numbers (valueRenderOption ignored)
                    for r in values:
                        while r and r[-1] == "":
                            r.pop()
                    while values and not values[-1]:
                        values.pop()
                    return self._json(200, {"range": f"'{title}'!A1:Z{len(rows)}", "majorDimension": "ROWS",
                                            "values": values})
                self._error(404, "NOT_FOUND", "no such endpoint")

            def _export(self, key: str, query: dict[str, list[str]]) -> None:
                sheet = fake.sheets.get(key)
                if sheet is None:
                    return self._send(404, b"<html>Not found</html>", "text/html; charset=utf-8")
                if not sheet.link_shared:
                    # Google answers a private sheet's export with a sign-in page.
                    return self._send(401, b"<html>Sign in</html>", "text/html; charset=utf-8")
                gid = query.get("gid", [None])[0]
                titles = [t for t in sheet.worksheets if gid is None or str(sheet.gid(t)) == gid]
                if not titles:
                    return self._send(400, b"<html>Bad gid</html>", "text/html; charset=utf-8")
                out = io.StringIO()
                csv.writer(out, lineterminator="\r\n").writerows(sheet.worksheets[titles[0]])
                self._send(200, out.getvalue().encode("utf-8"), "text/csv")

        return Handler

"""A local fake of the Google pieces `sheet sync` talks to, on 127.0.0.1 in a thread:

- ``POST /token``: the OAuth 2.0 JWT-bearer grant a service account uses. The assertion's
  signature is verified against the public key registered for the account.
- ``GET /v4/spreadsheets/{id}`` (metadata) and ``GET /v4/spreadsheets/{id}/values/{range}``: the
  Sheets API v4 as gspread calls it, with Google's error bodies (403 PERMISSION_DENIED for a sheet
  not shared with the caller, 404 NOT_FOUND).
- ``GET /spreadsheets/d/{id}/export?format=csv[&gid=N]``: the CSV export of a sheet shared by link.

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
    shared_with: set[str] = field(default_factory=set)  # service-account emails
    link_shared: bool = False

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


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class FakeGoogle:
    def __init__(self) -> None:
        self.sheets: dict[str, FakeSheet] = {}
        self.public_keys: dict[str, Any] = {}  # service-account email -> RSA public key
        self.tokens: dict[str, str] = {}  # access token -> email
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
                  more: dict[str, list[list[str]]] | None = None) -> FakeSheet:
        sheet = FakeSheet(title, {worksheet: rows, **(more or {})}, set(shared_with or ()), link_shared)
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

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> FakeGoogle:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    # -- the HTTP side -------------------------------------------------------------------------

    def _verify_assertion(self, assertion: str) -> str | None:
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
        return claims["iss"]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None):
                split = urlsplit(self.path)
                with fake._lock:
                    fake.requests.append(Recorded(self.command, split.path, parse_qs(split.query),
                                                  {k.lower(): v for k, v in self.headers.items()}, status,
                                                  time.monotonic()))
                self.write_response(status, body, content_type, headers)

            def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(payload).encode(), "application/json; charset=UTF-8", headers)

            def _error(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None):
                self._json(status, {"error": {"code": status, "message": message, "status": reason}}, headers)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                if urlsplit(self.path).path != "/token":
                    return self._error(404, "NOT_FOUND", "no such endpoint")
                if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
                    return self._json(400, {"error": "unsupported_grant_type"})
                email = fake._verify_assertion(form.get("assertion", [""])[0])
                if email is None:
                    return self._json(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
                token = f"ya29.fake-{len(fake.tokens)}"
                fake.tokens[token] = email
                self._json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

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
                auth = self.headers.get("Authorization", "")
                email = fake.tokens.get(auth.removeprefix("Bearer "))
                if email is None:
                    return self._error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
                sheet = fake.sheets.get(key)
                if sheet is None:
                    return self._error(404, "NOT_FOUND", "Requested entity was not found.")
                if email not in sheet.shared_with:
                    return self._error(403, "PERMISSION_DENIED", "The caller does not have permission")
                if not rest:
                    return self._json(200, {
                        "spreadsheetId": key,
                        "properties": {"title": sheet.title, "locale": "en_US", "timeZone": "Europe/Berlin"},
                        "sheets": [{"properties": {
                            "sheetId": sheet.gid(t), "title": t, "index": i, "sheetType": "GRID",
                            "gridProperties": {"rowCount": max(len(rows), 1000), "columnCount": 26}}}
                            for i, (t, rows) in enumerate(sheet.worksheets.items())],
                    })
                if rest[0] == "values" and len(rest) == 2:
                    title = rest[1].split("!")[0].strip("'").replace("''", "'")
                    if title not in sheet.worksheets:
                        return self._error(400, "INVALID_ARGUMENT", f"Unable to parse range: {rest[1]}")
                    rows = sheet.worksheets[title]
                    # The API drops trailing empty cells and rows, as the real one does.
                    values = [list(r) for r in rows]
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

"""A local fake of the Spotify Web API (and of ReccoBeats' audio-features) on 127.0.0.1.

It speaks the real wire format: POST /api/token (client credentials, HTTP Basic), GET /v1/search,
GET /v1/audio-features?ids= (at most 100 ids, null for unknown ones), GET /v1/playlists/{id}/items
(and /tracks) with offset/limit paging and absolute ``next`` links, and GET /recco/v1/audio-features
(ReccoBeats' shape: ``content`` rows keyed by ``href``, unknown ids left out, at most 40 ids).
Failures are scripted with :meth:`FakeSpotify.fail`; every request is recorded in ``requests``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fake_http import LocalServer, QuietHandler

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"
_FIELDS = ["danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
           "instrumentalness", "liveness", "valence", "tempo", "duration_ms", "time_signature"]


def fake_id(n: int, prefix: str = "t") -> str:
    """A valid-looking 22-character base62 Spotify id."""
    return f"{prefix}{n:021d}"[:22]


def features_for(spotify_id: str) -> dict[str, Any]:
    """Deterministic audio features for an id, so tests can check the values that were stored."""
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(spotify_id)) % 1000
    return {
        "danceability": seed / 1000, "energy": (seed % 500) / 500, "key": seed % 12, "loudness": -(seed % 30) - 1.5,
        "mode": seed % 2, "speechiness": 0.05, "acousticness": 0.1, "instrumentalness": 0.001, "liveness": 0.2,
        "valence": 0.5, "tempo": 60.0 + seed % 120, "duration_ms": 180_000 + seed, "time_signature": 4,
    }


@dataclass
class Failure:
    path_prefix: str
    status: int
    remaining: int | None  # None: forever
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]


class FakeSpotify:
    def __init__(self) -> None:
        self.tracks: dict[str, dict[str, Any]] = {}  # id -> Spotify track object
        self.features: dict[str, dict[str, Any]] = {}  # id -> audio-features object (without id)
        self.recco_known: set[str] | None = None  # ids ReccoBeats knows (None: all with features)
        self.playlists: dict[str, list[str | None]] = {}  # id -> track ids (None: a local file / episode)
        self.failures: list[Failure] = []
        self.requests: list[Recorded] = []
        self.tokens: set[str] = set()
        self._lock = threading.Lock()
        self._server: LocalServer | None = None

    # --- set-up ---
    def add_track(self, spotify_id: str, artist: str | list[str], title: str, *, with_features: bool = True) -> str:
        artists = [artist] if isinstance(artist, str) else artist
        self.tracks[spotify_id] = {
            "id": spotify_id, "name": title, "type": "track", "is_local": False, "duration_ms": 200_000,
            "uri": f"spotify:track:{spotify_id}", "artists": [{"name": a, "type": "artist"} for a in artists],
        }
        if with_features:
            self.features[spotify_id] = features_for(spotify_id)
        return spotify_id

    def fail(self, path_prefix: str, status: int, times: int | None = 1, **headers: str) -> None:
        """Answer ``status`` to the next ``times`` requests whose path starts with ``path_prefix``."""
        with self._lock:
            self.failures.append(Failure(path_prefix, status, times, {k.replace("_", "-"): v
                                                                      for k, v in headers.items()}))

    def count(self, path_prefix: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path.startswith(path_prefix))

    # --- server ---
    @property
    def base(self) -> str:
        assert self._server is not None
        return self._server.base

    @property
    def api_url(self) -> str:
        return self.base + "/v1/"

    @property
    def auth_url(self) -> str:
        return self.base + "/api/token"

    @property
    def reccobeats_url(self) -> str:
        return self.base + "/recco/v1/"

    def start(self) -> FakeSpotify:
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

        self._server = LocalServer(Handler)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    # --- routing ---
    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(req.path)
        query = parse_qs(parts.query)
        body = b""
        if method == "POST":
            body = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        with self._lock:
            self.requests.append(Recorded(method, parts.path, query))
            failure = next((f for f in self.failures if parts.path.startswith(f.path_prefix)
                            and (f.remaining is None or f.remaining > 0)), None)
            if failure is not None and failure.remaining is not None:
                failure.remaining -= 1
        if failure is not None:
            messages = {429: "API rate limit exceeded", 403: "Forbidden", 404: "Resource not found",
                        500: "Server error", 502: "Bad gateway", 503: "Service unavailable"}
            return self._send(req, failure.status, {"error": {"status": failure.status,
                                                              "message": messages.get(failure.status, "error")}},
                              failure.headers)
        if method == "POST" and parts.path == "/api/token":
            return self._token(req, body)
        if method == "GET" and parts.path.startswith("/recco/v1/audio-features"):
            return self._recco_features(req, query)
        if method == "GET" and parts.path.startswith("/v1/"):
            if not self._authorised(req):
                return self._send(req, 401, {"error": {"status": 401, "message": "No token provided"}})
            path = parts.path[len("/v1/"):].rstrip("/")
            if path == "search":
                return self._search(req, query)
            if path == "audio-features":
                return self._features(req, query)
            found = re.fullmatch(r"playlists/([0-9A-Za-z]+)/(items|tracks)", path)
            if found:
                return self._playlist(req, found.group(1), query, found.group(2))
        return self._send(req, 404, {"error": {"status": 404, "message": "Service not found"}})

    def _send(self, req: QuietHandler, status: int, payload: Any, headers: dict[str, str] | None = None):
        req.write_response(status, json.dumps(payload).encode(), "application/json; charset=utf-8", headers)

    def _token(self, req: BaseHTTPRequestHandler, body: bytes) -> None:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = parse_qs(body.decode())
        if req.headers.get("Authorization") != expected:
            return self._send(req, 400, {"error": "invalid_client", "error_description": "Invalid client"})
        if form.get("grant_type") != ["client_credentials"]:
            return self._send(req, 400, {"error": "unsupported_grant_type"})
        token = uuid.uuid4().hex
        with self._lock:
            self.tokens.add(token)
        return self._send(req, 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    def _authorised(self, req: BaseHTTPRequestHandler) -> bool:
        header = req.headers.get("Authorization") or ""
        return header.startswith("Bearer ") and header[7:] in self.tokens

    def _search(self, req: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        q = (query.get("q") or [""])[0]
        limit = int((query.get("limit") or ["10"])[0])
        words = {w for w in re.split(r"[^0-9a-z]+", re.sub(r"\b(track|artist):", " ", q.lower())) if len(w) > 2}
        hits = []
        for track in self.tracks.values():
            text = (track["name"] + " " + " ".join(a["name"] for a in track["artists"])).lower()
            overlap = sum(1 for w in words if w in text)
            if overlap:
                hits.append((-overlap, track["id"], track))
        items = [t for _, _, t in sorted(hits)][:limit]
        return self._send(req, 200, {"tracks": {"href": "", "items": items, "limit": limit, "offset": 0,
                                                "next": None, "previous": None, "total": len(items)}})

    def _features(self, req: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        ids = [i for i in ",".join(query.get("ids") or []).split(",") if i]
        if not ids or len(ids) > 100:
            return self._send(req, 400, {"error": {"status": 400, "message": "Invalid request: 1..100 ids"}})
        rows = [dict(self.features[i], id=i, type="audio_features", uri=f"spotify:track:{i}")
                if i in self.features else None for i in ids]
        return self._send(req, 200, {"audio_features": rows})

    def _recco_features(self, req: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        ids = [i for i in ",".join(query.get("ids") or []).split(",") if i]
        if not ids or len(ids) > 40:
            return self._send(req, 400, {"status": 4004, "errors": [{"message": "size must be between 1 and 40"}]})
        known = self.recco_known if self.recco_known is not None else set(self.features)
        content = []
        for i in ids:
            if i in known and i in self.features:
                row = {k: v for k, v in self.features[i].items() if k not in ("duration_ms", "time_signature")}
                content.append(dict(row, id=str(uuid.uuid5(uuid.NAMESPACE_URL, i)),
                                    href=f"https://open.spotify.com/track/{i}"))
        return self._send(req, 200, {"content": content})

    def _playlist(self, req: BaseHTTPRequestHandler, playlist_id: str, query: dict[str, list[str]], kind: str):
        if playlist_id not in self.playlists:  # editorial playlists included: that is what new apps get
            return self._send(req, 404, {"error": {"status": 404, "message": "Resource not found"}})
        offset = int((query.get("offset") or ["0"])[0])
        limit = int((query.get("limit") or ["100"])[0])
        if not 1 <= limit <= 100:
            return self._send(req, 400, {"error": {"status": 400, "message": "Invalid limit"}})
        ids = self.playlists[playlist_id]
        items = []
        for tid in ids[offset:offset + limit]:
            if tid is None:
                items.append({"track": {"id": None, "name": "local file", "type": "track", "is_local": True,
                                        "artists": [{"name": "someone"}], "duration_ms": 1000}})
            else:
                items.append({"track": self.tracks[tid]})
        nxt = None
        if offset + limit < len(ids):
            nxt = f"{self.api_url}playlists/{playlist_id}/{kind}?offset={offset + limit}&limit={limit}"
        return self._send(req, 200, {"href": "", "items": items, "limit": limit, "offset": offset, "next": nxt,
                                     "previous": None, "total": len(ids)})

"""The page's guards, as one ASGI middleware in front of every route (docs/security.md, ``serve``).

- **Token** (when the server has one: required for any host but the loopback): every request carries
  it, as the ``mc_token`` cookie, an ``X-Music-Classifier-Token`` header or ``Authorization: Bearer``.
  A first visit with ``?token=T`` sets the cookie (HttpOnly, SameSite=Strict) and redirects to the same
  address without it, so the token does not stay in the address bar or the history.
- **Host**: without a token the server answers only to a loopback Host header (127.0.0.1, localhost,
  [::1]): a web page that rebinds its own domain name to 127.0.0.1 gets nothing (DNS rebinding).
- **CSRF**: every request but GET and HEAD must carry this server's CSRF token (an ``X-CSRF-Token``
  header, which the page's htmx sends on every request, or a ``csrf_token`` form field) and, when the
  browser says where it comes from, an ``Origin`` of this server. The token is made at start-up and
  lives only in the pages this server renders, which another site cannot read.
- **Headers** on every answer, errors included: a Content-Security-Policy allowing only the page's own
  origin (no inline script or style, no eval), ``nosniff``, no referrer, no framing.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode

TOKEN_COOKIE = "mc_token"
TOKEN_HEADER = "x-music-classifier-token"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_FORM_BYTES = 1 << 20  # a state-changing request's body is a small form

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def host_name(host_header: str) -> str:
    """The name of a Host header without its port: ``[::1]:8765`` -> ``::1``."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class Guard:
    """ASGI middleware enforcing the module docstring's rules around ``app``."""

    def __init__(self, app: ASGIApp, *, csrf_token: str, token: str | None = None) -> None:
        self.app = app
        self.csrf_token = csrf_token
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_headers(send, SECURITY_HEADERS)
        headers = _headers(scope)
        if self.token is None and host_name(headers.get("host", "")) not in LOOPBACK_HOSTS:
            await _plain(send, 403, "this server answers only to 127.0.0.1 / localhost (start it with --token "
                                    "to serve other hosts)")
            return
        if self.token is not None:
            query_token = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[-1]
            if scope["method"] in ("GET", "HEAD") and _same(query_token, self.token):
                await _redirect_setting_cookie(scope, send, self.token)  # also when the cookie is there already
                return
        if self.token is not None and not self._authorised(scope, headers):
            await _plain(send, 401, "a token is needed: open the address printed by `music-classifier serve` "
                                    "(it ends in ?token=...)")
            return
        if scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        origin = headers.get("origin")
        if origin is not None and origin != _own_origin(scope, headers):
            await _plain(send, 403, "refused: the request comes from another site")
            return
        body = await _read_body(receive)
        if body is None:
            await _plain(send, 413, "request body too large")
            return
        if not (_same(headers.get(CSRF_HEADER), self.csrf_token) or _same(_form_field(headers, body),
                                                                          self.csrf_token)):
            await _plain(send, 403, "refused: missing or wrong CSRF token (reload the page)")
            return
        await self.app(scope, _replay(body), send)

    def _authorised(self, scope: Scope, headers: dict[str, str]) -> bool:
        assert self.token is not None
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer ") and _same(bearer[7:].strip(), self.token):
            return True
        if _same(headers.get(TOKEN_HEADER), self.token):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is no token
            return False
        morsel = cookie.get(TOKEN_COOKIE)
        return morsel is not None and _same(morsel.value, self.token)


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        out[name.decode("latin-1").lower()] = value.decode("latin-1")
    return out


def _own_origin(scope: Scope, headers: dict[str, str]) -> str:
    return f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"


def _form_field(headers: dict[str, str], body: bytes) -> str | None:
    if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    return parse_qs(body.decode("utf-8", "replace")).get(CSRF_FIELD, [None])[-1]


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _with_headers(send: Send, extra: Iterable[tuple[bytes, bytes]]) -> Send:
    extra = list(extra)

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            names = {n.lower() for n, _ in message.get("headers", [])}
            message = {**message, "headers": [*message.get("headers", []),
                                              *((n, v) for n, v in extra if n not in names)]}
        await send(message)

    return wrapped


async def _plain(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _redirect_setting_cookie(scope: Scope, send: Send, token: str) -> None:
    query = [(k, v) for k, vs in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()
             if k != "token" for v in vs]
    path = scope.get("root_path", "") + scope["path"]
    if not path.startswith("/") or path.startswith("//"):  # "//host/x" would send the browser to another site
        path = "/"
    location = path + (f"?{urlencode(query)}" if query else "")
    cookie = f"{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"set-cookie", cookie.encode()),
                            (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})

"""Bodies the page sends often and computes once (plotly.js, its CSS, a model's map): kept in memory as they
are and gzipped, with an ETag, so a repeated request costs a 304 and a first one a compressed transfer."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    media_type: str
    status: int = 200


def make_asset(body: bytes, media_type: str, *, status: int = 200) -> Asset:
    return Asset(body=body, gzipped=gzip.compress(body, compresslevel=6, mtime=0),
                 etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"', media_type=media_type, status=status)


def asset_response(request: Request, asset: Asset, *, cache_control: str) -> Response:
    """The asset, gzipped when the client accepts it; 304 when the client's copy is current."""
    headers = {"etag": asset.etag, "cache-control": cache_control, "vary": "accept-encoding"}
    if asset.status == 200 and asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = asset.body
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        body, headers["content-encoding"] = asset.gzipped, "gzip"
    return Response(body, status_code=asset.status, media_type=asset.media_type, headers=headers)

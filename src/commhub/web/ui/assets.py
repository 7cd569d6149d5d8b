"""The console's own stylesheet and scripts, served from the package.

URLs carry a hash of the file (``/static/console.css?v=…``) so browsers may
keep a file for a year and still fetch a new one after an upgrade. Only
files that ship in ``static/`` are served; no path from the request reaches
the file system.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Final

from aiohttp import web

from commhub.web.endpoints import endpoint

TYPES: Final = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    version: str


@functools.cache
def assets() -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for entry in resources.files("commhub.web.ui").joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in TYPES:
            body = entry.read_bytes()
            version = hashlib.sha256(body).hexdigest()[:12]
            found[entry.name] = Asset(body=body, content_type=TYPES[suffix], version=version)
    return found


def static_url(name: str) -> str:
    """The versioned URL of a shipped file; a typo fails the page loudly, not silently."""
    return f"/static/{name}?v={assets()[name].version}"


@endpoint("The console's stylesheet and scripts.", permission=None, tag="pages")
async def static_file(request: web.Request) -> web.StreamResponse:
    asset = assets().get(request.match_info["name"])
    if asset is None:
        raise web.HTTPNotFound()
    etag = f'"{asset.version}"'
    cache = "public, max-age=31536000, immutable"
    if request.query.get("v") != asset.version:
        cache = "no-cache"
    headers = {"ETag": etag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, content_type=asset.content_type, headers=headers)

"""One-time messages after a form: "Note added", carried across the redirect.

Post/redirect/get: a form handler redirects, and the next page shows what
happened. The message rides in a short-lived cookie as English source text
and is translated when shown, in the viewer's language.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final, Literal

from aiohttp import web

FLASH_COOKIE: Final = "commhub_flash"
Kind = Literal["ok", "error"]


@dataclass(frozen=True, slots=True)
class Flash:
    message: str
    values: dict[str, str]
    kind: Kind


def redirect(
    location: str, message: str = "", *, kind: Kind = "ok", **values: object
) -> web.HTTPSeeOther:
    """A 303 to ``location`` that shows ``message`` there once (raise it)."""
    response = web.HTTPSeeOther(location)
    if message:
        payload = {"m": message, "k": kind, "v": {k: str(v) for k, v in values.items()}}
        response.set_cookie(
            FLASH_COOKIE, json.dumps(payload), max_age=60, httponly=True, samesite="Lax", path="/"
        )
    return response


def take(request: web.Request) -> Flash | None:
    """The message waiting for this page, if any; a mangled cookie is ignored."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        payload = json.loads(raw)
        kind: Kind = "error" if payload.get("k") == "error" else "ok"
        values = {str(k): str(v) for k, v in dict(payload.get("v", {})).items()}
        return Flash(message=str(payload["m"]), values=values, kind=kind)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None

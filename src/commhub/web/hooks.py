"""``/hooks/{channel}/{path}``: where gateways call back (delivery reports, inbound SMS).

No user logs in here: the channel itself checks each request (Twilio's
signature, Kannel's secret) and a refused one gets 403 and a log line that
names the channel, the path and the caller's address, never the query
string (it may hold the secret). Behind a TLS proxy the request's own URL
is not the one the gateway signed, so with ``COMMHUB_PUBLIC_URL`` set the
URL is rebuilt on it.
"""

from __future__ import annotations

import logging
from typing import Final
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import CIMultiDict

from commhub.channels import (
    ChannelUnavailable,
    WebhookInvalid,
    WebhookReceiver,
    WebhookRefused,
    WebhookRequest,
)
from commhub.web.endpoints import endpoint
from commhub.web.keys import CHANNELS, HUB, SETTINGS
from commhub.web.problems import Problem

log = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 64 * 1024
"""Gateway callbacks are a few form fields; anything larger is not one."""
FORM: Final = "application/x-www-form-urlencoded"


@endpoint(
    "A gateway's callback: checked by its channel, then filed.",
    permission=None,
    tag="webhooks",
    csrf=False,
    content_type="text/plain",
)
async def gateway_callback(request: web.Request) -> web.StreamResponse:
    name = request.match_info["channel"]
    channel = request.app[CHANNELS].get(name)
    if not isinstance(channel, WebhookReceiver):
        raise Problem(404, f"no channel {name!r} takes callbacks")
    if not request.app[HUB].listening:
        raise Problem(
            503, "this process does not listen to channels: route /hooks/ to the one that does"
        )
    hook = await _read(request)
    try:
        answer = await channel.webhook(hook)
    except WebhookRefused as exc:
        log.warning(
            "%s: refused callback %s %s from %s: %s",
            name, request.method, request.path, request.remote, exc,
        )  # fmt: skip
        raise Problem(403, "callback refused") from None
    except WebhookInvalid as exc:
        log.warning("%s: unreadable callback %s: %s", name, request.path, exc)
        raise Problem(400, str(exc)) from None
    except ChannelUnavailable as exc:
        log.error("%s: callback %s not filed: %s", name, request.path, exc)
        raise Problem(503, "not filed yet; deliver it again") from None
    return web.Response(status=answer.status, text=answer.body, content_type=answer.content_type)


async def _read(request: web.Request) -> WebhookRequest:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise Problem(413, f"callbacks are limited to {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.content.iter_chunked(16 * 1024):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise Problem(413, f"callbacks are limited to {MAX_BODY_BYTES} bytes")
    form: dict[str, str] = {}
    if request.content_type == FORM and body:
        try:
            text = bytes(body).decode()
        except UnicodeDecodeError:
            raise Problem(400, "the form is not UTF-8") from None
        form = dict(parse_qsl(text, keep_blank_values=True))
    public = request.app[SETTINGS].public_url
    url = public.rstrip("/") + request.path_qs if public else str(request.url)
    return WebhookRequest(
        method=request.method,
        url=url,
        path=request.match_info["path"],
        query=dict(request.query),
        headers=CIMultiDict(request.headers),
        form=form,
        body=bytes(body),
    )

"""The HTTP access log, without query strings or referrers.

Search terms, phone numbers and e-mail addresses travel in query strings
(the console's filters, the contact search); the log keeps method, path,
status, size and time, so it holds ids at most, never a customer's details.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger


class PathOnlyAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %s %.3fs',
            request.remote,
            request.method,
            request.path,
            response.status,
            response.body_length,
            time,
        )

"""Reading console forms, and turning a refused action into a message on the page.

Forms post here, the handler acts and redirects back (post/redirect/get).
A refusal the services raise (no extension, PBX down, opted-out number)
comes back as an error message on the page the user was on, not as JSON.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from pydantic import ValidationError

from commhub.channels import ChannelUnavailable, OriginateRejected, SendRejected
from commhub.domain.contacts import FieldError
from commhub.services.errors import Conflict, InvalidInput, NotFound
from commhub.web.json_values import NUL, NUL_MESSAGE
from commhub.web.problems import Problem
from commhub.web.ui import flash
from commhub.web.ui.return_paths import local_path

Form = dict[str, str]


async def read_form(request: web.Request) -> Form:
    """The posted fields as text (files are not expected on these forms).

    The NUL character, which no PostgreSQL text column can hold, is a 400
    naming the field rather than a database failure.
    """
    posted = await request.post()
    form = {k: v for k, v in posted.items() if isinstance(v, str)}
    for name, value in form.items():
        if NUL in value or NUL in name:
            raise Problem(400, f"{name[:40]!r}: {NUL_MESSAGE}")
    return form


def field_list(form: Form, name: str) -> list[str]:
    """A field holding one value per line or comma (phones, e-mails, tags)."""
    raw = form.get(name, "")
    return [part.strip() for line in raw.splitlines() for part in line.split(",") if part.strip()]


def back_to(request: web.Request, fallback: str) -> str:
    """Where to send the browser after a form: the local page it came from.

    A Referer from another site, or one whose path would itself lead off the
    hub (``https://hub//evil.example``), gives ``fallback``.
    """
    referer = request.headers.get("Referer", "")
    origin = f"{request.scheme}://{request.host}"
    if referer.startswith(origin + "/"):
        return local_path(referer[len(origin) :], fallback)
    return fallback


@asynccontextmanager
async def refusals_shown_at(location: str) -> AsyncIterator[None]:
    """Run an action; if the hub refuses it, redirect to ``location`` saying why."""
    try:
        yield
    except (InvalidInput, FieldError, NotFound, Conflict, SendRejected) as exc:
        raise _refused(location, str(exc)) from None
    except ChannelUnavailable as exc:
        raise flash.redirect(
            location, "Not done, the channel is unavailable: %(reason)s", kind="error", reason=exc
        ) from None
    except OriginateRejected as exc:
        raise flash.redirect(
            location, "The PBX refused the call: %(reason)s", kind="error", reason=exc
        ) from None
    except Problem as exc:
        raise flash.redirect(
            location, "Not done: %(reason)s", kind="error", reason=exc.detail
        ) from None
    except ValidationError as exc:
        reason = "; ".join(str(error["msg"]) for error in exc.errors(include_url=False)[:3])
        raise flash.redirect(
            location, "Not done: %(reason)s", kind="error", reason=reason
        ) from None


def _refused(location: str, reason: str) -> web.HTTPSeeOther:
    raise flash.redirect(location, "Not done: %(reason)s", kind="error", reason=reason)

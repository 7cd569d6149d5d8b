"""Message templates in the console: the list, the shipped ones to copy, and the editor.

The editor is a plain form (a refusal, such as a syntax error with its
line, shows the page again with everything typed kept); its script
(``static/template_editor.js``) previews the unsaved text as the user types
through ``/api/v1/templates/preview``, for a chosen contact or the made-up
client, and asks the same API who in a segment lacks a value and to send a
test. An e-mail's HTML is shown in a sandboxed frame that runs no script, served
(``preview_frame``) with the policy of a received e-mail's frame, so its styles show.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from commhub.domain.roles import Permission
from commhub.models import MessageTemplate
from commhub.services import message_templates as templates
from commhub.services import segments
from commhub.services.errors import InvalidInput
from commhub.services.message_templates import TemplateDraft
from commhub.web.api.template_schemas import TEXT
from commhub.web.endpoints import endpoint, path_id
from commhub.web.keys import DATABASE, principal
from commhub.web.ui import flash
from commhub.web.ui.cards import MAIL_HTML_POLICY
from commhub.web.ui.forms import Form, read_form
from commhub.web.ui.render import page, viewer
from commhub.web.ui.segments_page import Refusal

SECTION: Final = "templates"
HOME: Final = "/templates"
LIMITS: Final = {"name": 200, "language": 10, "subject": 500, "text": TEXT, "html": TEXT}
"""The longest each field may be, as the API allows (the columns hold no more)."""


@endpoint(
    "Message templates, and the shipped ones to copy.", permission=Permission.TEMPLATES, tag="pages"
)
async def templates_list(request: web.Request) -> web.StreamResponse:
    rows = await templates.listing(request.app[DATABASE])
    stock = await templates.stock()
    return await page(request, "templates.html", section=SECTION, templates=rows, stock=stock)


@endpoint("Copy a shipped template to edit.", permission=Permission.TEMPLATES, tag="pages")
async def copy_stock(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    row = await templates.copy_stock(
        request.app[DATABASE],
        form.get("channel", ""),
        form.get("key", ""),
        form.get("language", ""),
        user_id=principal(request).user_id,
    )
    raise flash.redirect(f"{HOME}/{row.id}", "Copied: %(name)s.", name=row.name)


PREVIEW_BYTES: Final = 600 * 1024
"""A rendered template's HTML is capped at 512 KiB; this leaves room for the form's encoding."""


@endpoint(
    "The editor's rendered e-mail HTML, shown back in its sandboxed frame with its styles.",
    permission=Permission.TEMPLATES,
    tag="pages",
)
async def preview_frame(request: web.Request) -> web.StreamResponse:
    # The console's own policy allows no inline style; a frame loaded by srcdoc inherits it, so
    # the editor posts what the preview rendered here and the frame gets a received e-mail's
    # policy instead: a unique origin, no script, no request out, inline styles only.
    form = await read_form(request)
    html = form.get("html", "")
    if len(html.encode()) > PREVIEW_BYTES:
        raise InvalidInput("html", "the preview is larger than a template may render")
    return web.Response(
        text=html,
        content_type="text/html",
        headers={
            "Content-Security-Policy": MAIL_HTML_POLICY,
            "X-Frame-Options": "SAMEORIGIN",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


@endpoint("The editor for a new template.", permission=Permission.TEMPLATES, tag="pages")
async def new_template_form(request: web.Request) -> web.StreamResponse:
    channel = "sms" if request.query.get("channel") == "sms" else "email"
    me = await viewer(request)
    typed = {"name": "", "channel": channel, "language": me.language, "subject": ""}
    typed |= {"text": "", "html": ""}
    return await _editor(request, None, typed)


@endpoint("Save a new template from the editor.", permission=Permission.TEMPLATES, tag="pages")
async def create_template(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    try:
        row = await templates.create(
            request.app[DATABASE], _draft(form), user_id=principal(request).user_id
        )
    except InvalidInput as refused:
        return await _editor(request, None, form, Refusal(refused.field, str(refused)), 422)
    raise flash.redirect(f"{HOME}/{row.id}", "Template %(name)s saved.", name=row.name)


@endpoint("A template in the editor.", permission=Permission.TEMPLATES, tag="pages")
async def template_page(request: web.Request) -> web.StreamResponse:
    row = await templates.get(request.app[DATABASE], path_id(request))
    typed = {
        "name": row.name,
        "channel": row.channel,
        "language": row.language,
        "subject": row.subject,
        "text": row.text,
        "html": row.html or "",
    }
    return await _editor(request, row, typed)


@endpoint("Save a template from the editor.", permission=Permission.TEMPLATES, tag="pages")
async def update_template(request: web.Request) -> web.StreamResponse:
    template_id = path_id(request)
    row = await templates.get(request.app[DATABASE], template_id)
    form = {**await read_form(request), "channel": row.channel}
    try:
        draft = _draft(form)
        changes = {
            "name": draft.name,
            "language": draft.language,
            "subject": draft.subject,
            "text": draft.text,
            "html": draft.html,
        }
        await templates.update(request.app[DATABASE], template_id, changes)
    except InvalidInput as refused:
        return await _editor(request, row, form, Refusal(refused.field, str(refused)), 422)
    raise flash.redirect(f"{HOME}/{template_id}", "Template saved.")


@endpoint("Set a template aside.", permission=Permission.TEMPLATES, tag="pages")
async def delete_template(request: web.Request) -> web.StreamResponse:
    await templates.remove(request.app[DATABASE], path_id(request))
    raise flash.redirect(HOME, "Template deleted.")


def _draft(form: Form) -> TemplateDraft:
    """The form as a draft; an SMS keeps no subject or HTML (their boxes are hidden)."""
    for name, longest in LIMITS.items():
        if len(form.get(name, "")) > longest:
            raise InvalidInput(name, f"at most {longest:,} characters")
    channel = form.get("channel", "")
    email = channel == "email"
    html = form.get("html", "")
    return TemplateDraft(
        name=form.get("name", ""),
        channel=channel,
        language=form.get("language", "").strip(),
        subject=form.get("subject", "") if email else "",
        text=form.get("text", ""),
        html=html if email and html.strip() else None,
    )


async def _editor(
    request: web.Request,
    row: MessageTemplate | None,
    typed: Form,
    refusal: Refusal | None = None,
    status: int = 200,
) -> web.Response:
    me = await viewer(request)
    found = await segments.listing(request.app[DATABASE]) if me.can("segments") else []
    return await page(
        request,
        "template.html",
        section=SECTION,
        status=status,
        saved=row,
        typed=typed,
        refusal=refusal,
        segments=found,
    )

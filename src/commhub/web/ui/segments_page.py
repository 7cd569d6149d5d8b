"""Segments in the console: the list, and the builder where a marketer edits a rule tree.

The builder's script (``static/segment_builder.js``) keeps the tree and
writes it into the form's ``rules`` field as the JSON the API takes; the
live count asks ``/api/v1/segments/preview`` as the user edits. Saving is a
plain form post: a refusal (a bad rule names its path) shows the page again
with everything typed kept and the message on the node at fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from commhub.domain.identifiers import parse_id
from commhub.domain.roles import Permission
from commhub.domain.segments import OPS
from commhub.models import Segment
from commhub.services import accounts, campaigns, pipelines, segments
from commhub.services.errors import InvalidInput
from commhub.web.endpoints import endpoint, path_id
from commhub.web.json_values import JsonValueError, parse_json
from commhub.web.keys import DATABASE, principal
from commhub.web.ui import flash
from commhub.web.ui.forms import Form, read_form, refusals_shown_at
from commhub.web.ui.i18n import translations
from commhub.web.ui.render import page, viewer
from commhub.web.ui.stage_names import pipeline_name, stage_name

SECTION: Final = "segments"
HOME: Final = "/segments"
MEMBERS_SHOWN: Final = 100
STARTER: Final = {"all": [{"field": "city", "op": "equals", "value": ""}]}
"""A new segment's tree: one condition to fill in."""


@dataclass(frozen=True, slots=True)
class Refusal:
    field: str
    """The form field (``name``, ``kind``) or the rule's path (``rules.all[1].value``)."""
    message: str


@endpoint("Saved segments and static lists.", permission=Permission.SEGMENTS, tag="pages")
async def segments_list(request: web.Request) -> web.StreamResponse:
    rows = await segments.listing(request.app[DATABASE])
    return await page(request, "segments.html", section=SECTION, segments=rows)


@endpoint("The builder for a new segment.", permission=Permission.SEGMENTS, tag="pages")
async def new_segment_form(request: web.Request) -> web.StreamResponse:
    typed = {"name": "", "description": "", "kind": "dynamic", "rules": json.dumps(STARTER)}
    return await _builder(request, None, typed)


@endpoint("Save a new segment from the builder.", permission=Permission.SEGMENTS, tag="pages")
async def create_segment(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    kind = form.get("kind", "dynamic")
    try:
        row = await segments.create(
            request.app[DATABASE],
            name=form.get("name", ""),
            kind=kind,
            rules=_rules(form) if kind == "dynamic" else None,
            description=form.get("description", ""),
            user_id=principal(request).user_id,
        )
    except InvalidInput as refused:
        return await _builder(request, None, form, Refusal(refused.field, str(refused)), 422)
    raise flash.redirect(f"{HOME}/{row.id}", "Segment %(name)s saved.", name=row.name)


@endpoint(
    "A segment in the builder, or a static list's members.",
    permission=Permission.SEGMENTS,
    tag="pages",
)
async def segment_page(request: web.Request) -> web.StreamResponse:
    row, _ = await segments.get(request.app[DATABASE], path_id(request))
    typed = {
        "name": row.name,
        "description": row.description,
        "kind": row.kind,
        "rules": json.dumps(row.rules or STARTER),
    }
    return await _builder(request, row, typed)


@endpoint(
    "Save a segment's name, description and rules.", permission=Permission.SEGMENTS, tag="pages"
)
async def update_segment(request: web.Request) -> web.StreamResponse:
    segment_id = path_id(request)
    row, _ = await segments.get(request.app[DATABASE], segment_id)
    form = await read_form(request)
    changes: dict[str, Any] = {
        "name": form.get("name", ""),
        "description": form.get("description", ""),
    }
    try:
        if row.kind == "dynamic":
            changes["rules"] = _rules(form)
        await segments.update(request.app[DATABASE], segment_id, changes)
    except InvalidInput as refused:
        kept = {**form, "kind": row.kind}
        return await _builder(request, row, kept, Refusal(refused.field, str(refused)), 422)
    raise flash.redirect(f"{HOME}/{segment_id}", "Segment saved.")


@endpoint("Set a segment aside.", permission=Permission.SEGMENTS, tag="pages")
async def delete_segment(request: web.Request) -> web.StreamResponse:
    await segments.remove(request.app[DATABASE], path_id(request))
    raise flash.redirect(HOME, "Segment deleted.")


@endpoint("Take the chosen people off a static list.", permission=Permission.SEGMENTS, tag="pages")
async def remove_members(request: web.Request) -> web.StreamResponse:
    segment_id = path_id(request)
    posted = await request.post()
    chosen = [parse_id(str(value)) for value in posted.getall("contact_id", [])]
    ids = [i for i in chosen if i is not None]
    location = f"{HOME}/{segment_id}"
    if not ids:
        raise flash.redirect(location, "Choose at least one person.", kind="error")
    async with refusals_shown_at(location):
        left = await segments.remove_members(request.app[DATABASE], segment_id, ids)
    raise flash.redirect(location, "Removed; the list holds %(count)s.", count=left)


def _rules(form: Form) -> Any:
    """The posted tree, read as the API reads a body (no NaN, no runaway nesting)."""
    try:
        return parse_json(form.get("rules", "").encode())
    except JsonValueError as exc:
        raise InvalidInput("rules", exc.message) from None
    except ValueError:
        raise InvalidInput("rules", "the rules are not readable JSON") from None


async def _builder(
    request: web.Request,
    row: Segment | None,
    typed: Form,
    refusal: Refusal | None = None,
    status: int = 200,
) -> web.Response:
    db = request.app[DATABASE]
    members = None
    if row is not None and row.kind == "static":
        members = await segments.members_sample(db, row.id, limit=MEMBERS_SHOWN)
    return await page(
        request,
        "segment.html",
        section=SECTION,
        status=status,
        segment=row,
        typed=typed,
        refusal=refusal,
        members=members,
        options=await _options(request, row),
    )


async def _options(request: web.Request, row: Segment | None) -> dict[str, Any]:
    """What the builder offers: the domain's fields and operators, owners, pipelines, lists."""
    db = request.app[DATABASE]
    users = await accounts.all_users(db)
    found = await pipelines.pipelines(db)
    translate = translations((await viewer(request)).language).gettext
    lists = [s for s in await segments.listing(db) if s.kind == "static"]
    sent = await campaigns.listing(db)
    return {
        "ops": {field.value: list(ops) for field, ops in OPS.items()},
        "owners": [{"id": u.id, "name": u.shown_name} for u in users],
        "pipelines": [
            {
                "id": p.pipeline.id,
                "name": pipeline_name(p.pipeline, translate),
                "stages": [{"id": s.id, "name": stage_name(s, translate)} for s in p.stages],
            }
            for p in found
        ],
        "lists": [{"id": s.id, "name": s.name} for s in lists if row is None or s.id != row.id],
        "campaigns": [{"id": c.id, "name": c.name} for c in sent],
    }

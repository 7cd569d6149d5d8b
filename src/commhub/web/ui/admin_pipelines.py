"""The pipelines page: an admin sets up each pipeline's stages and the rules that feed it.

Every form posts to its own action, which calls one function of
``services.pipelines`` and redirects back here. A refusal (an empty or
overlong name, the last open stage, deals with nowhere to go) shows the page
again with the message beside the field at fault in the form that was sent,
and what was typed kept. Moving a stage up or down needs no script: each
button carries the whole new order, worked out when the page was drawn, so a
page left open while someone else changed the stages is refused, not guessed at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from aiohttp import web

from commhub.domain.contacts import FieldError
from commhub.domain.deals import AUTO_CHANNELS, StageKind
from commhub.domain.identifiers import parse_id
from commhub.domain.roles import Permission
from commhub.services import pipelines
from commhub.services.deals import actor
from commhub.services.errors import Conflict, InvalidInput
from commhub.web.endpoints import endpoint, path_id
from commhub.web.keys import DATABASE, PRINCIPAL
from commhub.web.ui import flash
from commhub.web.ui.forms import Form, read_form
from commhub.web.ui.i18n import translations
from commhub.web.ui.render import page, viewer
from commhub.web.ui.stage_names import Translate, pipeline_name, stage_name

SECTION = "admin-pipelines"
HOME = "/admin/pipelines"
MAX_NEW_STAGES = 50
"""Open stages one new pipeline may list; more is a typing accident."""
KINDS = tuple(kind.value for kind in StageKind)
Refused = FieldError | InvalidInput | Conflict


@dataclass(frozen=True, slots=True)
class Refusal:
    """What was refused, in which form (``form``), beside which field, with what was typed."""

    form: str
    field: str
    message: str
    kept: Form


@dataclass(frozen=True, slots=True)
class StageRow:
    id: int
    name: str
    kind: str
    deals: int
    up: str
    """The pipeline's order (stage ids) with this stage one place up; empty for the first."""
    down: str


@dataclass(frozen=True, slots=True)
class PipelineBox:
    id: int
    name: str
    is_default: bool
    auto_create: dict[str, bool]
    won_when_paid: bool
    stages: list[StageRow] = field(default_factory=list)


@endpoint(
    "Pipelines: their stages, the deals in each and the rules.",
    permission=Permission.PIPELINES,
    tag="pages",
)
async def pipelines_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@endpoint("Create a pipeline from the form.", permission=Permission.PIPELINES, tag="pages")
async def create_pipeline(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    opened = [line.strip() for line in form.get("stages", "").splitlines() if line.strip()]
    entries = [(name, StageKind.OPEN, "stages") for name in opened]
    for kind in (StageKind.WON, StageKind.LOST):
        if form.get(kind.value, "").strip():
            entries.append((form[kind.value], kind, kind.value))
    # The service names a stage by its place in the list; the form by its field.
    fields = {f"stages.{i}.name": where for i, (_, _, where) in enumerate(entries)}
    try:
        if len(opened) > MAX_NEW_STAGES:
            raise InvalidInput("stages", f"at most {MAX_NEW_STAGES} open stages")
        made = await pipelines.create_pipeline(
            request.app[DATABASE],
            form.get("name", ""),
            [pipelines.NewStage(name, kind) for name, kind, _ in entries],
        )
    except (FieldError, InvalidInput, Conflict) as refused:
        at = fields.get(refused.field, refused.field)
        return await _refused(
            request, "new-pipeline", ("name", "stages", "won", "lost"), at, refused, form
        )
    raise flash.redirect(HOME, "Pipeline %(name)s created.", name=made.name)


@endpoint("Rename a pipeline and set its rules.", permission=Permission.PIPELINES, tag="pages")
async def update_pipeline(request: web.Request) -> web.StreamResponse:
    pipeline_id = path_id(request)
    form = await read_form(request)
    try:
        await pipelines.update_pipeline(
            request.app[DATABASE],
            pipeline_id,
            name=_changed(form, "name"),
            auto_create={channel: form.get(f"auto_{channel}") == "1" for channel in AUTO_CHANNELS},
            won_when_paid=form.get("won_when_paid") == "1",
        )
    except (FieldError, InvalidInput, Conflict) as refused:
        return await _refused(
            request,
            f"pipeline-{pipeline_id}",
            ("name", "auto_create"),
            refused.field,
            refused,
            form,
        )
    raise flash.redirect(HOME, "Pipeline saved.")


@endpoint("Make a pipeline the default one.", permission=Permission.PIPELINES, tag="pages")
async def make_default(request: web.Request) -> web.StreamResponse:
    pipeline_id = path_id(request)
    await pipelines.update_pipeline(request.app[DATABASE], pipeline_id, is_default=True)
    raise flash.redirect(HOME, "Default pipeline changed.")


@endpoint("Add a stage at the end of a pipeline.", permission=Permission.PIPELINES, tag="pages")
async def add_stage(request: web.Request) -> web.StreamResponse:
    pipeline_id = path_id(request)
    form = await read_form(request)
    try:
        await pipelines.add_stage(
            request.app[DATABASE], pipeline_id, form.get("name", ""), form.get("kind", "")
        )
    except (FieldError, InvalidInput, Conflict) as refused:
        return await _refused(
            request, f"add-stage-{pipeline_id}", ("name", "kind"), refused.field, refused, form
        )
    raise flash.redirect(HOME, "Stage added.")


@endpoint("Move a stage up or down.", permission=Permission.PIPELINES, tag="pages")
async def reorder_stages(request: web.Request) -> web.StreamResponse:
    pipeline_id = path_id(request)
    form = await read_form(request)
    try:
        order = [parse_id(part.strip()) for part in form.get("stage_ids", "").split(",")]
        if any(stage_id is None for stage_id in order):
            raise InvalidInput("stage_ids", "name every stage of the pipeline once")
        await pipelines.reorder(
            request.app[DATABASE], pipeline_id, [i for i in order if i is not None]
        )
    except (FieldError, InvalidInput, Conflict) as refused:
        return await _refused(
            request, f"order-{pipeline_id}", ("stage_ids",), refused.field, refused, form
        )
    raise flash.redirect(HOME, "Stages reordered.")


@endpoint("Rename a stage or change its kind.", permission=Permission.PIPELINES, tag="pages")
async def update_stage(request: web.Request) -> web.StreamResponse:
    stage_id = path_id(request)
    form = await read_form(request)
    try:
        await pipelines.update_stage(
            request.app[DATABASE],
            stage_id,
            name=_changed(form, "name"),
            kind=form.get("kind") or None,
        )
    except (FieldError, InvalidInput, Conflict) as refused:
        return await _refused(
            request, f"stage-{stage_id}", ("name", "kind"), refused.field, refused, form
        )
    raise flash.redirect(HOME, "Stage saved.")


@endpoint(
    "Remove a stage, its deals moved to the stage named.",
    permission=Permission.PIPELINES,
    tag="pages",
)
async def remove_stage(request: web.Request) -> web.StreamResponse:
    stage_id = path_id(request)
    form = await read_form(request)
    caller = request[PRINCIPAL]
    try:
        target = form.get("move_to", "").strip()
        move_to = parse_id(target) if target else None
        if target and move_to is None:
            raise InvalidInput("move_to", f"no stage {target[:40]!r}")
        moved = await pipelines.remove_stage(
            request.app[DATABASE], stage_id, actor(caller.user_id, caller.role), move_to=move_to
        )
    except (FieldError, InvalidInput, Conflict) as refused:
        return await _refused(
            request, f"remove-{stage_id}", ("move_to",), refused.field, refused, form
        )
    raise flash.redirect(HOME, "Stage removed; deals moved: %(count)s.", count=moved)


def _changed(form: Form, name: str) -> str | None:
    """The typed name, or None when it is the one shown (a preset stays a preset)."""
    typed = form.get(name)
    if typed is None or typed == form.get(f"shown_{name}"):
        return None
    return typed


async def _refused(
    request: web.Request,
    form_key: str,
    fields: Sequence[str],
    at: str,
    refused: Refused,
    form: Form,
) -> web.Response:
    """The page again, the message beside ``at`` (else the form's first field)."""
    where = at if at in fields else fields[0]
    kept = {name: value for name, value in form.items() if name != "csrf_token"}
    return await _page(request, Refusal(form_key, where, str(refused), kept), status=422)


async def _page(
    request: web.Request, refusal: Refusal | None = None, *, status: int = 200
) -> web.Response:
    seen_by = await viewer(request)
    translate = translations(seen_by.language).gettext
    found = await pipelines.pipelines(request.app[DATABASE])
    return await page(
        request,
        "admin_pipelines.html",
        section=SECTION,
        status=status,
        pipelines=[_box(view, translate) for view in found],
        kinds=KINDS,
        channels=AUTO_CHANNELS,
        refusal=refusal,
    )


def _box(view: pipelines.PipelineView, translate: Translate) -> PipelineBox:
    ids = [stage.id for stage in view.stages]
    rows = []
    for place, stage in enumerate(view.stages):
        rows.append(
            StageRow(
                id=stage.id,
                name=stage_name(stage, translate),
                kind=stage.kind,
                deals=view.deals.get(stage.id, 0),
                up=_swapped(ids, place - 1) if place > 0 else "",
                down=_swapped(ids, place) if place < len(ids) - 1 else "",
            )
        )
    rules = view.pipeline.auto_create or {}
    return PipelineBox(
        id=view.pipeline.id,
        name=pipeline_name(view.pipeline, translate),
        is_default=view.pipeline.is_default,
        auto_create={channel: bool(rules.get(channel)) for channel in AUTO_CHANNELS},
        won_when_paid=view.pipeline.won_when_paid,
        stages=rows,
    )


def _swapped(ids: Sequence[int], first: int) -> str:
    """The order with the stages at ``first`` and ``first + 1`` swapped, as the form sends it."""
    order = list(ids)
    order[first], order[first + 1] = order[first + 1], order[first]
    return ",".join(str(stage_id) for stage_id in order)

"""The kanban board: a pipeline's stages as columns, cards moved by drag or keyboard.

``deals_board.js`` posts a move with ``fetch`` and reads the JSON answer;
without script the card's "Move to" form posts the same endpoint and the
page comes back with the result as a message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from aiohttp import web

from commhub.domain.contacts import FieldError
from commhub.domain.deals import StageKind
from commhub.domain.roles import Permission
from commhub.services import deal_console, deals
from commhub.services.errors import Forbidden, InvalidInput, NotFound
from commhub.web.endpoints import endpoint, path_id
from commhub.web.keys import DATABASE, FEED, principal
from commhub.web.ui import flash
from commhub.web.ui.deal_values import money, read_id
from commhub.web.ui.forms import back_to, read_form
from commhub.web.ui.render import html, page, render_text, viewer

CARDS: Final = 20
ORDER: Final = {StageKind.OPEN.value: 0, StageKind.WON.value: 1, StageKind.LOST.value: 2}


@endpoint("The deals board of a pipeline.", permission=Permission.DEALS, tag="pages")
async def board_page(request: web.Request) -> web.StreamResponse:
    me = await viewer(request)
    pipeline_id = read_id(request.query.get("pipeline", ""), "pipeline")
    screen = await deal_console.board_screen(
        request.app[DATABASE], pipeline_id, deals.actor(me.user.id, me.role), limit=CARDS
    )
    board = screen.board
    stages = board.names.stages
    columns = sorted(
        board.columns, key=lambda c: ORDER.get(stages[c.stage_id].kind, 0)
    )  # stable: the pipeline's order within open, won, lost
    return await page(
        request,
        "deals_board.html",
        section="deals",
        board=board,
        columns=columns,
        choices=screen.choices,
        today=me.fmt.now().date(),
        now=me.fmt.now(),
        money=lambda amount, currency: money(amount, currency, me.language),
    )


@endpoint("More cards of a board column (HTML).", permission=Permission.DEALS, tag="pages")
async def more_cards(request: web.Request) -> web.StreamResponse:
    me = await viewer(request)
    stage_id = read_id(request.query.get("stage", ""), "stage")
    after_id = read_id(request.query.get("after_id", ""), "after_id")
    try:
        after_at = datetime.fromisoformat(request.query.get("after", ""))
    except ValueError:
        raise InvalidInput("after", "not a moment") from None
    if stage_id is None or after_id is None:
        raise InvalidInput("stage", "name the column and the card to continue after")
    column, names = await deal_console.more_cards(
        request.app[DATABASE],
        stage_id,
        deals.actor(me.user.id, me.role),
        after=(after_at, after_id),
        limit=CARDS,
    )
    stage = names.stages[stage_id]
    text = render_text(
        me.language,
        "deal_cards.html",
        viewer=me,
        fmt=me.fmt,
        column=column,
        names=names,
        stages=[
            s
            for s in names.stages.values()
            if s.pipeline_id == stage.pipeline_id and s.removed_at is None
        ],
        today=me.fmt.now().date(),
        now=me.fmt.now(),
        money=lambda amount, currency: money(amount, currency, me.language),
    )
    return html(text)


@endpoint(
    "Move a deal to another stage (board, deal page).", permission=Permission.DEALS, tag="pages"
)
async def move(request: web.Request) -> web.StreamResponse:
    deal_id = path_id(request)
    form = await read_form(request)
    caller = principal(request)
    wants_json = "application/json" in request.headers.get("Accept", "")
    back = back_to(request, f"/deals/{deal_id}")
    try:
        stage_id = read_id(form.get("stage_id", ""), "stage_id")
        if stage_id is None:
            raise InvalidInput("stage_id", "choose a stage")
        reason = form.get("lost_reason")
        deal = await deals.move_deal(
            request.app[DATABASE],
            deal_id,
            stage_id,
            deals.actor(caller.user_id, caller.role),
            lost_reason=reason.strip() if reason else None,
            feed=request.app[FEED],
        )
    except (InvalidInput, FieldError, Forbidden, NotFound) as exc:
        status = 403 if isinstance(exc, Forbidden) else 404 if isinstance(exc, NotFound) else 422
        if wants_json:
            field = getattr(exc, "field", "id")
            return web.json_response({"detail": str(exc), "field": field}, status=status)
        raise flash.redirect(back, "Not moved: %(reason)s", kind="error", reason=exc) from None
    if wants_json:
        return web.json_response({"id": deal.id, "stage_id": deal.stage_id})
    raise flash.redirect(back, "Deal moved.")

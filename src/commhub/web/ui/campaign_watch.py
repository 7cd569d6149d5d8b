"""A campaign's page: its state, the buttons, live counters and chart, and who got what.

While the campaign is under way the page asks ``/campaigns/{id}/progress``
every two seconds (``static/campaign.js``) for the same figures as JSON, the
per-minute chart included as markup rendered here, and stops asking once
the campaign has ended. The recipients download as CSV, streamed a page at a
time, every text cell guarded against spreadsheet formulas.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any, Final

from aiohttp import web

from commhub.domain.campaigns import EDITABLE, CampaignState
from commhub.domain.identifiers import parse_id
from commhub.domain.roles import Permission
from commhub.domain.spreadsheet_cells import neutralised
from commhub.services import campaigns
from commhub.services.campaigns import RECIPIENT_STATES, Watch
from commhub.web.endpoints import endpoint, path_id
from commhub.web.keys import DATABASE
from commhub.web.ui.i18n import N_
from commhub.web.ui.render import SECURITY_HEADERS, Viewer, page, render_text, translate, viewer
from commhub.web.ui.sent_chart import minute_chart

PAGE_ROWS: Final = 50
FIRST: Final = -1
"""Recipients are numbered from 0: the first page is the one after -1."""
CSV_CHUNK: Final = 1_000
ENDED: Final = frozenset({CampaignState.FINISHED.value, CampaignState.CANCELLED.value})
HANDED_OVER: Final = ("sent", "bounced", "complained", "uncertain")
SETTLED: Final = (*HANDED_OVER, "failed", "withheld", "cancelled", "dismissed")
UTF8_BOM: Final = "\ufeff"
CSV_COLUMNS: Final = (
    N_("Contact ID"),
    N_("Name"),
    N_("Channel"),
    N_("Address"),
    N_("Status"),
    N_("Reason"),
    N_("Sent at"),
)


def figures(watch: Watch, me: Viewer) -> dict[str, Any]:
    """The page's live numbers, as the template shows them and the poll sends them."""
    campaign, counts = watch.campaign, watch.counts
    to_send = max(0, campaign.recipients - campaign.excluded)
    sent = sum(counts[state] for state in HANDED_OVER)
    done = sum(counts[state] for state in SETTLED)
    chart = minute_chart(watch.per_minute)
    return {
        "state": campaign.state,
        "state_reason": campaign.state_reason,
        "ended": campaign.state in ENDED,
        "total": to_send,
        "done": min(done, to_send),
        "percent": round(100 * done / to_send) if to_send else 0,
        "counts": {
            "queued": counts["queued"] + counts["sending"] + counts["pending"],
            "sent": sent,
            "delivered": counts["delivered"],
            "bounced": counts["bounced"],
            "soft_bounced": watch.retrying,
            "failed": counts["failed"],
            "complained": counts["complained"],
            "withheld": counts["withheld"],
            "cancelled": counts["cancelled"],
            "uncertain": counts["uncertain"],
            "replied": counts["replied"],
            "excluded": campaign.excluded,
        },
        "excluded": dict(sorted(watch.excluded.items())),
        "chart_html": render_text(me.language, "campaign_chart.html", chart=chart, fmt=me.fmt),
    }


@endpoint(
    "A campaign's page: state, buttons, progress, chart and recipients.",
    permission=Permission.CAMPAIGN_RESULTS,
    tag="pages",
)
async def campaign_page(request: web.Request) -> web.StreamResponse:
    campaign_id = path_id(request)
    me = await viewer(request)
    db = request.app[DATABASE]
    watch = await campaigns.watch(db, campaign_id)
    status = _status(request)
    found = parse_id(request.query.get("after", ""))
    after = FIRST if found is None else found
    rows = await campaigns.recipients(db, campaign_id, state=status, after=after, limit=PAGE_ROWS)
    return await page(
        request,
        "campaign.html",
        section="campaigns",
        campaign=watch.campaign,
        segment=watch.segment,
        shown=figures(watch, me),
        editable=watch.campaign.state in {s.value for s in EDITABLE},
        rows=rows,
        chosen_status=status or "",
        statuses=RECIPIENT_STATES,
        next_after=rows[-1].seq if len(rows) == PAGE_ROWS else None,
        after=after,
    )


@endpoint(
    "A campaign's live figures as JSON, with its per-minute chart, for its page to refresh.",
    permission=Permission.CAMPAIGN_RESULTS,
    tag="pages",
)
async def campaign_progress(request: web.Request) -> web.StreamResponse:
    me = await viewer(request)
    watch = await campaigns.watch(request.app[DATABASE], path_id(request))
    return web.json_response(figures(watch, me), headers={"Cache-Control": "no-store"})


@endpoint(
    "A campaign's recipients as CSV (UTF-8 with BOM), each with its status and reason.",
    permission=Permission.CAMPAIGN_RESULTS,
    tag="pages",
)
async def recipients_csv(request: web.Request) -> web.StreamResponse:
    campaign_id = path_id(request)
    me = await viewer(request)
    db = request.app[DATABASE]
    status = _status(request)
    first = await campaigns.recipients(db, campaign_id, state=status, after=FIRST, limit=CSV_CHUNK)
    day = me.fmt.now().strftime("%Y%m%d")
    response = web.StreamResponse(
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": (
                f'attachment; filename="campaign-{campaign_id}-recipients-{day}.csv"'
            ),
        }
    )
    response.content_type = "text/csv"
    response.charset = "utf-8"
    await response.prepare(request)
    header = [translate(me.language, text) for text in CSV_COLUMNS]
    await response.write((UTF8_BOM + _csv_lines([header])).encode())
    rows = first
    while rows:
        await response.write(_csv_lines([_csv_row(row, me) for row in rows]).encode())
        if len(rows) < CSV_CHUNK:
            break
        rows = await campaigns.recipients(
            db, campaign_id, state=status, after=rows[-1].seq, limit=CSV_CHUNK
        )
    await response.write_eof()
    return response


def _status(request: web.Request) -> str | None:
    status = request.query.get("status", "")
    return status if status in RECIPIENT_STATES else None


def _csv_row(row: Any, me: Viewer) -> list[str | int]:
    sent_at = me.fmt.local(row.sent_at).strftime("%Y-%m-%d %H:%M:%S") if row.sent_at else ""
    return [
        row.contact_id,
        neutralised(row.name or ""),
        row.channel,
        neutralised(row.address or ""),
        row.state,
        neutralised(row.reason or ""),
        sent_at,
    ]


def _csv_lines(rows: Sequence[Sequence[str | int]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()

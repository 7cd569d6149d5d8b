"""The live view: calls in progress now — who is talking to whom, and for how long.

The page is complete as served (the calls open in the log when it was
rendered); ``static/live.js`` then keeps it current from the live feed, and
the page says so when the feed is not there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from commhub.domain.interactions import Direction
from commhub.domain.roles import Permission
from commhub.models import Interaction, User
from commhub.services import call_log
from commhub.web.endpoints import endpoint
from commhub.web.keys import DATABASE
from commhub.web.ui.render import page, viewer


@dataclass(frozen=True, slots=True)
class OnCall:
    """Someone on a call: a user we know, or only the extension the PBX named."""

    name: str | None
    extension: str | None


@dataclass(frozen=True, slots=True)
class LiveCall:
    interaction_id: int
    direction: str
    status: str
    contact_id: int | None
    contact_name: str | None
    number: str
    """The customer's number as stored (E.164 where it could be read)."""
    operators: tuple[OnCall, ...]
    queue: str | None
    started_at: datetime
    answered_at: datetime | None


@dataclass(frozen=True, slots=True)
class Directory:
    """Users by id and by extension: how a call's operator and extensions become names."""

    names: dict[int, str]
    extensions: dict[str, int]

    @classmethod
    def of(cls, users: Iterable[User]) -> Directory:
        names: dict[int, str] = {}
        extensions: dict[str, int] = {}
        for user in users:
            names[user.id] = user.shown_name
            if user.extension and user.active:
                extensions[user.extension] = user.id
        return cls(names=names, extensions=extensions)

    def on_call(self, operator_id: int | None, extensions: Iterable[object]) -> tuple[OnCall, ...]:
        """The operator of record, then each extension on the call, once per person."""
        seen: set[int] = set()
        found: list[OnCall] = []
        if operator_id is not None and operator_id in self.names:
            seen.add(operator_id)
            found.append(OnCall(self.names[operator_id], None))
        for extension in extensions:
            user_id = self.extensions.get(str(extension))
            if user_id is None:
                found.append(OnCall(None, str(extension)))
            elif user_id not in seen:
                seen.add(user_id)
                found.append(OnCall(self.names[user_id], str(extension)))
        return tuple(found)


def live_call(row: Interaction, directory: Directory, names: dict[int, str]) -> LiveCall:
    extra = row.extra or {}
    extensions = extra.get("operators") or ()
    inbound = row.direction == Direction.INBOUND.value
    return LiveCall(
        interaction_id=row.id,
        direction=row.direction,
        status=row.status,
        contact_id=row.contact_id,
        contact_name=names.get(row.contact_id) if row.contact_id is not None else None,
        number=row.from_address if inbound else row.to_address,
        operators=directory.on_call(
            row.operator_id, extensions if isinstance(extensions, list) else ()
        ),
        queue=row.queue,
        started_at=row.occurred_at,
        answered_at=row.answered_at,
    )


def script_data(
    directory: Directory, calls: Sequence[LiveCall], now: datetime
) -> dict[str, object]:
    """What live.js needs to name the people on calls that start after the page was served."""
    return {
        "now": now.isoformat(),
        "users": {str(user_id): name for user_id, name in directory.names.items()},
        "extensions": {
            extension: str(user_id) for extension, user_id in directory.extensions.items()
        },
        "contacts": {
            str(call.contact_id): call.contact_name
            for call in calls
            if call.contact_id is not None and call.contact_name
        },
    }


@endpoint(
    "Live view: the calls in progress now, kept current from the live feed.",
    permission=Permission.CALLS_WATCH,
    tag="pages",
)
async def live_view(request: web.Request) -> web.StreamResponse:
    me = await viewer(request)
    shown = await call_log.live_view(request.app[DATABASE])
    directory = Directory.of(shown.users)
    calls = [live_call(row, directory, shown.names) for row in shown.calls]
    now = me.fmt.now()
    return await page(
        request,
        "live.html",
        section="live",
        calls=calls,
        now=now,
        live_data=script_data(directory, calls, now),
    )

"""Click-to-call: ring the operator's own phone, then dial the customer from it.

The call goes through the PBX that rings the operator's extension (see
:func:`choose_pbx`). The request is written first with its id; the PBX
carries that id on the call (a channel variable), so the call that results
lands on the card tied to the request. The same id sent twice (a double
click, a client retry) dials once.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from commhub.channels import ChannelUnavailable, OriginateCall, OriginateRejected, Telephony
from commhub.domain import phones
from commhub.models import CallRequest, User
from commhub.services.database import Database
from commhub.services.errors import InvalidInput, NotFound
from commhub.store import contacts as contact_store


def new_request_id() -> str:
    return f"c2c-{secrets.token_hex(8)}"


async def place_call(
    db: Database,
    pbxs: Mapping[str, Telephony],
    *,
    pbx: str | None,
    request_id: str,
    caller_id: int,
    operator_id: int,
    contact_id: int | None,
    number: str | None,
    region: str,
) -> tuple[CallRequest, bool]:
    """Ask a PBX to connect the operator and the customer; returns the request and if new.

    ``pbxs`` are the hub's PBXs by name; ``pbx`` names one, or ``None`` to
    take the one that serves the operator's extension.

    Raises :class:`InvalidInput` (no extension, no PBX for it, no number),
    :class:`NotFound`, and the PBX's :class:`ChannelUnavailable` /
    :class:`OriginateRejected`, after marking the request failed with the reason.
    """
    async with db() as session:
        existing = await session.get(CallRequest, request_id)
        if existing is not None:
            return existing, False
        operator = await session.get(User, operator_id)
        if operator is None or not operator.active:
            raise NotFound("user", operator_id)
        if not operator.extension:
            raise InvalidInput(
                "operator_id", f"{operator.username} has no phone extension: set one on the user"
            )
        chosen = choose_pbx(pbxs, operator.extension, pbx)
        e164, display = await _destination(session, contact_id, number, region)
        request = CallRequest(
            id=request_id,
            user_id=caller_id,
            contact_id=contact_id,
            number=e164,
            extension=operator.extension,
            channel_name=chosen.name,
            status="queued",
        )
        session.add(request)
        await session.commit()
        try:
            await chosen.originate(
                OriginateCall(
                    request_id=request_id,
                    extension=operator.extension,
                    number=e164,
                    display_name=display,
                )
            )
        except (ChannelUnavailable, OriginateRejected) as exc:
            request.status = "failed"
            request.error = str(exc)
            await session.commit()
            raise
        return request, True


def choose_pbx(pbxs: Mapping[str, Telephony], extension: str, name: str | None) -> Telephony:
    """The PBX that rings ``extension``: the one named (if it serves it), else the one serving it.

    When several serve it, those whose settings list the extension win over
    those that take any; a tie that remains is refused with their names
    rather than dialled on a guess.
    """
    if name is not None:
        chosen = pbxs.get(name)
        if chosen is None:
            known = ", ".join(sorted(pbxs))
            raise InvalidInput("pbx", f"no PBX named {name!r} (configured: {known})")
        if not chosen.serves(extension):
            raise InvalidInput("pbx", f"PBX {name} does not serve extension {extension}")
        return chosen
    serving = sorted(n for n, p in pbxs.items() if p.serves(extension))
    if len(serving) > 1:
        serving = [n for n in serving if pbxs[n].serves(extension, explicitly=True)] or serving
    if not serving:
        raise InvalidInput(
            "operator_id",
            f"no PBX serves extension {extension}: "
            "set `extensions` on the PBX in the channels file",
        )
    if len(serving) > 1:
        raise InvalidInput(
            "pbx",
            f"extension {extension} is served by several PBXs ({', '.join(serving)}): "
            "name one in `pbx`, or set `extensions` on each PBX in the channels file",
        )
    return pbxs[serving[0]]


async def _destination(
    session: AsyncSession, contact_id: int | None, number: str | None, region: str
) -> tuple[str, str]:
    """The E.164 number to dial and the name to show on the operator's phone."""
    if contact_id is None and not number:
        raise InvalidInput("number", "give a contact_id or a number to call")
    if contact_id is None:
        assert number is not None
        return _parse(number, region), ""
    view = await contact_store.load(session, contact_id)
    if view is None:
        raise NotFound("contact", contact_id)
    if view.merged_into_id is not None:
        raise NotFound("contact", contact_id, merged_into=view.merged_into_id)
    if number:
        e164 = _parse(number, region)
        if e164 not in view.phones:
            raise InvalidInput("number", f"{number} is not one of this contact's numbers")
        return e164, view.name
    if not view.phones:
        raise InvalidInput("contact_id", "this contact has no phone number")
    return view.phones[0], view.name


def _parse(number: str, region: str) -> str:
    try:
        return phones.parse_phone(number, region).e164
    except phones.PhoneError as exc:
        raise InvalidInput("number", str(exc)) from None

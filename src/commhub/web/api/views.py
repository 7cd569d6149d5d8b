"""Store rows and service results turned into API bodies."""

from __future__ import annotations

from collections.abc import Sequence

from commhub.domain.contacts import ContactView
from commhub.domain.pagination import Cursor
from commhub.domain.phones import Phone
from commhub.models import ApiToken, Interaction, User
from commhub.web.api import schemas


def user_out(user: User) -> schemas.UserOut:
    return schemas.UserOut.model_validate(user, from_attributes=True)


def token_out(token: ApiToken) -> schemas.TokenOut:
    return schemas.TokenOut.model_validate(token, from_attributes=True)


def contact_out(view: ContactView) -> schemas.ContactOut:
    return schemas.ContactOut(
        id=view.id,
        name=view.name,
        company=view.company,
        owner_id=view.owner_id,
        phones=[
            schemas.PhoneOut(e164=e164, international=Phone(e164, "").international())
            for e164 in view.phones
        ],
        emails=view.emails,
        tags=view.tags,
        consents=[
            schemas.ConsentOut(
                channel=c.channel,
                purpose=c.purpose,
                granted=c.granted,
                source=c.source,
                recorded_at=c.recorded_at,
            )
            for c in view.consents
        ],
        extra=view.extra,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


def interaction_page(
    rows: Sequence[Interaction], next_cursor: Cursor | None
) -> schemas.InteractionPage:
    return schemas.InteractionPage(
        items=[schemas.InteractionOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=None if next_cursor is None else next_cursor.encode(),
    )

"""The rule that opens a deal for an inbound e-mail: a real Dovecot, the real core, both
databases (the harness of test_email_imap)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from test_email_imap import PASSWORD, USER, count, customer, hub, mail

from commhub.models import Deal
from commhub.services import pipelines
from commhub.services.deals import SYSTEM, move_deal
from commhub.store.engine import SessionFactory
from dovecot import DovecotServer


@pytest.fixture
def mailbox_server(dovecot: DovecotServer) -> DovecotServer:
    dovecot.add_user(USER, PASSWORD)
    return dovecot


async def deals(sessions: SessionFactory) -> list[Deal]:
    async with sessions() as session:
        return list(await session.scalars(select(Deal).order_by(Deal.id)))


async def test_a_mail_opens_one_deal_and_a_reimported_folder_no_other(
    sessions: SessionFactory, mailbox_server: DovecotServer
) -> None:
    await pipelines.update_pipeline(sessions, 1, auto_create={"email": True})
    contact_id = await customer(sessions)
    await mailbox_server.append(USER, mail("Price list"))
    async with hub(sessions, mailbox_server):
        await count(sessions, 1)
    [deal] = await deals(sessions)
    assert deal.contact_id == contact_id and deal.source == "email"
    assert deal.origin_key is not None and deal.origin_key.startswith("rule:email:")
    # Closed, so only the rule's once-per-message key stands between a re-import and a deal.
    await move_deal(sessions, deal.id, 5, SYSTEM, lost_reason="no budget")
    await mailbox_server.change_uidvalidity(USER)
    await mailbox_server.append(USER, mail("Second thoughts"))
    async with hub(sessions, mailbox_server):
        await count(sessions, 2)
    found = await deals(sessions)
    assert len(found) == 2, "the new message opens one, the re-imported one nothing"
    assert found[1].closed_at is None and found[1].contact_id == contact_id


async def test_no_deal_from_mail_when_the_rule_is_off(
    sessions: SessionFactory, mailbox_server: DovecotServer
) -> None:
    await pipelines.update_pipeline(sessions, 1, auto_create={"call": True, "email": False})
    await customer(sessions)
    await mailbox_server.append(USER, mail("Price list"))
    async with hub(sessions, mailbox_server):
        await count(sessions, 1)
    assert await deals(sessions) == []

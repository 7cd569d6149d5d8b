"""Deals across a crash: the hub killed (``kill -9``) in the middle of an inbound call that the
rule turns into a deal, then started again on the same database and the same PBX.

After the restart the caller has exactly one deal, owned by the operator who
answered, and the funnel's daily sums equal what its rows add up to.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from commhub.domain.contacts import ContactDraft
from commhub.domain.phones import parse_phone
from commhub.models import Deal, FunnelDay, Pipeline
from commhub.services import contacts
from commhub.store import funnel as funnel_store
from commhub.store.engine import open_engine, session_factory
from faults.harness import FaultRig, paced, part2
from faults.test_call_faults import MID_CALL, answered_by, the_ended_call

pytestmark = pytest.mark.faults

CALLER = "89165550011"
"""Who rings in the recorded call (read as a Russian number: +7 916 555-00-11)."""


async def test_hub_killed_mid_call_opens_one_deal_for_the_caller(rig: FaultRig) -> None:
    assert rig.database_url is not None
    engine = open_engine(rig.database_url)
    db = session_factory(engine)
    try:
        caller = await contacts.create_contact(
            db,
            ContactDraft(name="Caller", phones=(parse_phone(CALLER, "RU"),)),
            owner_id=None,
            source="fault test",
        )
        async with db.begin() as session:
            await session.execute(update(Pipeline).values(auto_create={"call": True}))

        await rig.start_hub(paced(f"{MID_CALL}.part1"))
        call_began = rig.last_login_at
        await rig.call_where(answered_by(rig.operator_ids["201"]), "the call answered by 201")
        await rig.kill_hub()
        await rig.start_hub(part2(MID_CALL, part1_login=call_began))
        await rig.recorded_lists_sent(1)
        await the_ended_call(rig)

        async with db() as session:
            deals = (await session.scalars(select(Deal).where(Deal.contact_id == caller.id))).all()
            assert len(deals) == 1, f"{len(deals)} deals for the caller"
            assert deals[0].owner_id == rig.operator_ids["201"]
            kept = (await session.execute(select(func.sum(FunnelDay.reached)))).scalar()
            await funnel_store.rebuild(session, deals[0].pipeline_id)
            rebuilt = (await session.execute(select(func.sum(FunnelDay.reached)))).scalar()
            await session.rollback()
        assert kept == rebuilt == 1
    finally:
        await engine.dispose()

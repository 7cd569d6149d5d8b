"""The pipelines page: an admin renames, reorders, adds and removes stages, and sets the rules."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from app_fixtures import Account, log_in
from commhub.domain.roles import Role
from commhub.models import Deal, Pipeline, Stage, StageChange, User
from commhub.services import deals
from commhub.store.engine import SessionFactory

Client = TestClient[Any, Any]
HTML = {"Accept": "text/html"}
PAGE = "/admin/pipelines"


async def _stages(sessions: SessionFactory, pipeline_id: int = 1) -> list[Stage]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Stage)
            .where(Stage.pipeline_id == pipeline_id, Stage.removed_at.is_(None))
            .order_by(Stage.position)
        )
        return list(rows.all())


async def _by_preset(sessions: SessionFactory) -> dict[str, Stage]:
    return {stage.preset or stage.name: stage for stage in await _stages(sessions)}


async def _open_deals(sessions: SessionFactory, stage: Stage, count: int) -> list[int]:
    async with sessions() as session:
        admin = await session.scalar(select(User).where(User.username == "admin"))
        assert admin is not None
    who = deals.actor(admin.id, Role.ADMIN)
    made = []
    for number in range(count):
        draft = deals.DealDraft(
            title=f"Deal {number}",
            currency="EUR",
            amount="100.50",
            owner_id=admin.id,
            pipeline_id=stage.pipeline_id,
            stage_id=stage.id,
        )
        made.append((await deals.create_deal(sessions, draft, who)).id)
    return made


def _error_beside(text: str, form: str, field: str) -> str:
    found = re.search(
        rf'<p [^>]*id="error-{re.escape(form)}-{re.escape(field)}"[^>]*>(.*?)</p>', text, re.S
    )
    assert found is not None, f"no error beside {form}/{field}"
    return html.unescape(found.group(1))


async def test_admin_sees_every_stage_in_order_with_its_deals(
    client: Client, sessions: SessionFactory
) -> None:
    stages = await _by_preset(sessions)
    await _open_deals(sessions, stages["in_progress"], 2)
    await log_in(client, "admin")
    response = await client.get(PAGE, headers=HTML)
    assert response.status == 200
    text = await response.text()
    names = ["New lead", "In progress", "Proposal / invoice", "Won (paid)", "Lost"]
    places = [text.index(f'value="{html.escape(name)}"') for name in names]
    assert places == sorted(places)
    row = text[text.index(f'data-stage="{stages["in_progress"].id}"') :]
    assert re.search(r'class="deals">2<', row)
    assert 'href="/admin/pipelines"' in text  # the nav link


async def test_admin_renames_a_stage_and_changes_its_kind(
    client: Client, sessions: SessionFactory
) -> None:
    csrf = await log_in(client, "admin")
    stage = (await _by_preset(sessions))["proposal"]
    saved = await client.post(
        f"/admin/stages/{stage.id}",
        data={"csrf_token": csrf, "name": "  Offer   sent ", "kind": "open"},
    )
    assert saved.status == 200
    assert "Stage saved." in await saved.text()
    lost = (await _by_preset(sessions))["lost"]
    changed = await client.post(
        f"/admin/stages/{lost.id}",
        data={"csrf_token": csrf, "name": "Lost", "shown_name": "Lost", "kind": "open"},
    )
    assert changed.status == 200
    after = {stage.id: stage for stage in await _stages(sessions)}
    assert after[stage.id].name == "Offer sent"
    assert after[lost.id].kind == "open"
    assert after[lost.id].preset == "lost"  # the shown name was kept: still translated


async def test_admin_reorders_stages_with_up_and_down(
    client: Client, sessions: SessionFactory
) -> None:
    csrf = await log_in(client, "admin")
    before = [stage.id for stage in await _stages(sessions)]
    text = await (await client.get(PAGE, headers=HTML)).text()
    row = text[text.index(f'data-stage="{before[1]}"') :]
    up = re.search(r'name="stage_ids" value="([\d,]+)"><button[^>]*move-up', row)
    assert up is not None
    moved = await client.post(
        "/admin/pipelines/1/order", data={"csrf_token": csrf, "stage_ids": up.group(1)}
    )
    assert moved.status == 200
    assert "Stages reordered." in await moved.text()
    after = [stage.id for stage in await _stages(sessions)]
    assert after == [before[1], before[0], *before[2:]]


async def test_admin_adds_a_stage_at_the_end(client: Client, sessions: SessionFactory) -> None:
    csrf = await log_in(client, "admin")
    added = await client.post(
        "/admin/pipelines/1/stages",
        data={"csrf_token": csrf, "name": "Contract signed", "kind": "open"},
    )
    assert added.status == 200
    assert "Stage added." in await added.text()
    last = (await _stages(sessions))[-1]
    assert (last.name, last.kind) == ("Contract signed", "open")


async def test_removing_a_stage_moves_every_deal_and_writes_history(
    client: Client, sessions: SessionFactory
) -> None:
    csrf = await log_in(client, "admin")
    stages = await _by_preset(sessions)
    gone, target = stages["in_progress"], stages["proposal"]
    made = await _open_deals(sessions, gone, 3)
    page = await (await client.get(PAGE, headers=HTML)).text()
    assert f'id="remove-{gone.id}-to" name="move_to" required' in page

    asked = await client.post(f"/admin/stages/{gone.id}/remove", data={"csrf_token": csrf})
    assert asked.status == 422
    assert "3 deals stand in this stage" in _error_beside(
        await asked.text(), f"remove-{gone.id}", "move_to"
    )

    removed = await client.post(
        f"/admin/stages/{gone.id}/remove", data={"csrf_token": csrf, "move_to": str(target.id)}
    )
    assert removed.status == 200
    assert "deals moved: 3" in await removed.text()
    async with sessions() as session:
        kept = (await session.scalars(select(Deal).where(Deal.id.in_(made)))).all()
        assert {deal.stage_id for deal in kept} == {target.id}
        assert len(kept) == 3
        moves = (
            await session.scalars(
                select(StageChange).where(
                    StageChange.deal_id.in_(made), StageChange.from_stage_id == gone.id
                )
            )
        ).all()
        assert {(m.deal_id, m.to_stage_id) for m in moves} == {(d, target.id) for d in made}
        assert all(m.changed_by_id is not None for m in moves)
        stage = await session.get(Stage, gone.id)
        assert stage is not None and stage.removed_at is not None
    assert gone.id not in {stage.id for stage in await _stages(sessions)}


async def test_removing_the_last_open_stage_is_refused_beside_the_field(
    client: Client, sessions: SessionFactory
) -> None:
    csrf = await log_in(client, "admin")
    stages = await _by_preset(sessions)
    for preset in ("new_lead", "in_progress"):
        done = await client.post(
            f"/admin/stages/{stages[preset].id}/remove", data={"csrf_token": csrf}
        )
        assert done.status == 200
    last = stages["proposal"]
    refused = await client.post(f"/admin/stages/{last.id}/remove", data={"csrf_token": csrf})
    assert refused.status == 422
    message = _error_beside(await refused.text(), f"remove-{last.id}", "move_to")
    assert "at least one open stage" in message
    assert last.id in {stage.id for stage in await _stages(sessions)}


async def test_admin_creates_a_pipeline_and_makes_it_the_default(
    client: Client, sessions: SessionFactory
) -> None:
    csrf = await log_in(client, "admin")
    created = await client.post(
        PAGE,
        data={
            "csrf_token": csrf,
            "name": "Renewals",
            "stages": "Due\nQuoted\n",
            "won": "Renewed",
            "lost": "Churned",
        },
    )
    assert created.status == 200
    assert "Pipeline Renewals created." in await created.text()
    async with sessions() as session:
        made = await session.scalar(select(Pipeline).where(Pipeline.name == "Renewals"))
        assert made is not None
    stages = await _stages(sessions, made.id)
    assert [(s.name, s.kind) for s in stages] == [
        ("Due", "open"),
        ("Quoted", "open"),
        ("Renewed", "won"),
        ("Churned", "lost"),
    ]
    default = await client.post(f"/admin/pipelines/{made.id}/default", data={"csrf_token": csrf})
    assert default.status == 200
    async with sessions() as session:
        rows = (await session.execute(select(Pipeline.id, Pipeline.is_default))).all()
        flags = {pipeline_id: flag for pipeline_id, flag in rows}
    assert flags == {1: False, made.id: True}


async def test_admin_sets_the_rules(client: Client, sessions: SessionFactory) -> None:
    csrf = await log_in(client, "admin")
    saved = await client.post(
        "/admin/pipelines/1",
        data={"csrf_token": csrf, "name": "Sales", "shown_name": "Sales", "auto_call": "1"},
    )
    assert saved.status == 200
    assert "Pipeline saved." in await saved.text()
    async with sessions() as session:
        pipeline = await session.get(Pipeline, 1)
        assert pipeline is not None
        assert pipeline.auto_create == {"call": True, "email": False}
        assert pipeline.won_when_paid is False
        assert pipeline.preset == "sales" and pipeline.name == ""
    text = await (await client.get(PAGE, headers=HTML)).text()
    assert re.search(r'name="auto_call" value="1" checked', text)
    assert not re.search(r'name="auto_email" value="1" checked', text)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.MANAGER, Role.MARKETER])
async def test_only_admins_reach_the_pipelines_page(
    client: Client, accounts: dict[Role, Account], role: Role
) -> None:
    csrf = await log_in(client, role.value)
    assert (await client.get(PAGE, headers=HTML)).status == 403
    refused = await client.post(
        "/admin/pipelines/1/stages", data={"csrf_token": csrf, "name": "x", "kind": "open"}
    )
    assert refused.status == 403
    home = await (await client.get("/", headers=HTML)).text()
    assert 'href="/admin/pipelines"' not in home


async def test_russian_page_shows_the_preset_names_in_russian(client: Client) -> None:
    await log_in(client, "admin")
    response = await client.get(PAGE, headers={**HTML, "Accept-Language": "ru"})
    text = html.unescape(await response.text())
    for name in ("Продажи", "Новый лид", "В работе", "Предложение / счёт", "Успешно (оплачено)"):
        assert name in text
    assert "Проиграно" in text
    assert "Воронки" in text


@pytest.mark.parametrize(
    ("action", "data", "form", "field"),
    [
        ("/admin/stages/{stage}", {"name": "x" * 5000, "kind": "open"}, "stage-{stage}", "name"),
        ("/admin/stages/{stage}", {"name": "   ", "kind": "open"}, "stage-{stage}", "name"),
        ("/admin/stages/{stage}", {"name": "Ok", "kind": "maybe"}, "stage-{stage}", "kind"),
        ("/admin/pipelines/1/stages", {"name": "", "kind": "open"}, "add-stage-1", "name"),
        ("/admin/pipelines/1/stages", {"name": "A", "kind": "<b>"}, "add-stage-1", "kind"),
        ("/admin/pipelines/1/order", {"stage_ids": "1,2,x"}, "order-1", "stage_ids"),
        ("/admin/pipelines/1/order", {"stage_ids": "99999999"}, "order-1", "stage_ids"),
        ("/admin/pipelines/1", {"name": "y" * 201}, "pipeline-1", "name"),
        (
            "/admin/stages/{stage}/remove",
            {"move_to": "999999999"},
            "remove-{stage}",
            "move_to",
        ),
        ("/admin/stages/{stage}/remove", {"move_to": "abc"}, "remove-{stage}", "move_to"),
        ("/admin/pipelines", {"name": "", "stages": "A"}, "new-pipeline", "name"),
        ("/admin/pipelines", {"name": "P", "stages": ""}, "new-pipeline", "stages"),
        ("/admin/pipelines", {"name": "P", "stages": "A\n" + "B" * 300}, "new-pipeline", "stages"),
        ("/admin/pipelines", {"name": "P", "stages": "A", "won": "W" * 999}, "new-pipeline", "won"),
        ("/admin/pipelines", {"name": "P", "stages": "S\n" * 51}, "new-pipeline", "stages"),
    ],
)
async def test_hostile_input_comes_back_beside_the_field(
    client: Client,
    sessions: SessionFactory,
    action: str,
    data: dict[str, str],
    form: str,
    field: str,
) -> None:
    csrf = await log_in(client, "admin")
    stage = (await _by_preset(sessions))["in_progress"]
    await _open_deals(sessions, stage, 1)
    refused = await client.post(action.format(stage=stage.id), data={"csrf_token": csrf, **data})
    assert refused.status == 422, await refused.text()
    assert _error_beside(await refused.text(), form.format(stage=stage.id), field)
    assert [s.id for s in await _stages(sessions)] == [
        s.id for s in (await _by_preset(sessions)).values()
    ]


async def test_unknown_ids_answer_a_page_not_a_failure(client: Client) -> None:
    csrf = await log_in(client, "admin")
    for action in (
        "/admin/stages/424242",
        "/admin/stages/424242/remove",
        "/admin/pipelines/424242",
        "/admin/pipelines/424242/default",
        "/admin/pipelines/424242/stages",
        "/admin/pipelines/424242/order",
        "/admin/stages/99999999999999999999999",
    ):
        response = await client.post(
            action, data={"csrf_token": csrf, "name": "A", "kind": "open", "stage_ids": "1"}
        )
        assert response.status in (404, 422), (action, response.status)
        assert response.content_type == "text/html"


async def test_a_nul_character_in_a_name_is_a_page_not_a_failure(client: Client) -> None:
    csrf = await log_in(client, "admin")
    response = await client.post(
        "/admin/pipelines/1/stages", data={"csrf_token": csrf, "name": "A\x00B", "kind": "open"}
    )
    assert response.status == 400
    assert response.content_type == "text/html"

"""Click-to-call with several PBXs: the call goes through the one that rings the operator.

Each PBX is a loopback AMI peer (the replay server) and the hub's real AMI
link talks to it; a test asserts which peer received the ``Originate``, and
what the API and the console say when no PBX, or more than one, fits.
"""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import ami_harness
from ami_replay import AmiReplayServer
from app_fixtures import log_in
from commhub.bootstrap import Hub, open_hub
from commhub.channels import ChannelConfigError, ChannelContext, Telephony
from commhub.config import Settings
from commhub.domain.roles import Role
from commhub.services import users
from commhub.store.engine import SessionFactory
from commhub.web.app import create_app
from commhub_asterisk import adapter

SECRET = "two-pbx-secret"
NAMES = ("office", "branch")
Client = TestClient[Any, Any]
Start = Callable[..., Awaitable[Client]]


@pytest.fixture
async def pbxs() -> AsyncIterator[dict[str, AmiReplayServer]]:
    servers = {name: AmiReplayServer(username="commhub", secret=SECRET) for name in NAMES}
    for server in servers.values():
        await server.start()
    yield servers
    for server in servers.values():
        await server.close()


@pytest.fixture
def start(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: Settings,
    accounts: dict[Role, Any],
    pbxs: dict[str, AmiReplayServer],
) -> Start:
    """Start the hub with both PBXs; ``extensions`` gives each one's setting (absent: none)."""

    async def run(**extensions: list[str]) -> Client:
        channels = []
        for name, server in pbxs.items():
            options = ami_harness.pbx_options(server, secret=SECRET)
            if name in extensions:
                options["extensions"] = extensions[name]
            channels.append(
                adapter(
                    name=name,
                    options=options,
                    context=ChannelContext(phone_region=settings.phone_region),
                )
            )

        async def opener() -> Hub:
            return await open_hub(settings, channels=channels)

        client = await aiohttp_client(create_app(opener))
        for server in pbxs.values():
            await server.wait_logins(1)
        return client

    return run


def originates(server: AmiReplayServer) -> list[dict[str, Any]]:
    return [a for a in server.actions if a.get("Action") == "Originate"]


async def call(client: Client, auth: dict[str, str], **body: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/api/v1/calls", json={"number": "+79161234567", **body}, headers=auth
    )
    return response.status, dict(await response.json())


async def test_the_call_goes_through_the_pbx_that_serves_the_operators_extension(
    start: Start, pbxs: dict[str, AmiReplayServer], accounts: dict[Role, Any]
) -> None:
    client = await start(office=[r"2\d\d"], branch=[r"3\d\d"])
    status, body = await call(client, accounts[Role.OPERATOR].auth)
    assert status == 202, body
    assert (body["pbx"], body["extension"]) == ("office", "201")
    action = await pbxs["office"].wait_for_action("Originate")
    assert action["Channel"] == "PJSIP/201"
    assert originates(pbxs["branch"]) == []


async def test_a_named_pbx_must_serve_the_operators_extension(
    start: Start, pbxs: dict[str, AmiReplayServer], accounts: dict[Role, Any]
) -> None:
    client = await start(office=[r"2\d\d"], branch=[r"3\d\d"])
    status, body = await call(client, accounts[Role.OPERATOR].auth, pbx="branch")
    assert status == 422
    assert body["errors"][0]["field"] == "pbx"
    assert "branch does not serve extension 201" in body["detail"]
    status, body = await call(client, accounts[Role.OPERATOR].auth, pbx="attic")
    assert status == 422 and "no PBX named 'attic'" in body["detail"]
    status, body = await call(client, accounts[Role.OPERATOR].auth, pbx="office")
    assert status == 202 and body["pbx"] == "office"
    assert originates(pbxs["branch"]) == []


async def test_an_extension_no_pbx_serves_is_refused_on_the_operator(
    start: Start,
    pbxs: dict[str, AmiReplayServer],
    accounts: dict[Role, Any],
    sessions: SessionFactory,
) -> None:
    async with sessions() as session:
        remote = await users.create_user(
            session,
            username="remote",
            password="a long enough password",
            role=Role.OPERATOR,
            extension="305",
        )
        await session.commit()
    client = await start(office=[r"2\d\d"], branch=[r"4\d\d"])
    status, body = await call(client, accounts[Role.MANAGER].auth, operator_id=remote.id)
    assert status == 422
    assert body["errors"][0]["field"] == "operator_id"
    assert body["errors"][0]["message"] == (
        "no PBX serves extension 305: set `extensions` on the PBX in the channels file"
    )
    assert all(originates(server) == [] for server in pbxs.values())


async def test_a_pbx_that_lists_the_extension_wins_over_one_that_takes_any(
    start: Start, pbxs: dict[str, AmiReplayServer], accounts: dict[Role, Any]
) -> None:
    client = await start(branch=[r"20[0-9]"])
    status, body = await call(client, accounts[Role.OPERATOR].auth)
    assert status == 202 and body["pbx"] == "branch"
    await pbxs["branch"].wait_for_action("Originate")
    assert originates(pbxs["office"]) == []
    # The one that takes any extension may still be named.
    status, body = await call(client, accounts[Role.OPERATOR].auth, pbx="office")
    assert status == 202 and body["pbx"] == "office"


@pytest.mark.parametrize(
    "extensions",
    [{}, {"office": [r"2\d\d"], "branch": [r"\d+"]}],
    ids=["neither-lists-any", "both-list-it"],
)
async def test_two_pbxs_serving_the_extension_are_named_not_guessed(
    start: Start,
    pbxs: dict[str, AmiReplayServer],
    accounts: dict[Role, Any],
    extensions: dict[str, list[str]],
) -> None:
    client = await start(**extensions)
    status, body = await call(client, accounts[Role.OPERATOR].auth)
    assert status == 422
    assert body["errors"][0]["field"] == "pbx"
    assert "extension 201 is served by several PBXs (branch, office)" in body["detail"]
    assert all(originates(server) == [] for server in pbxs.values())


async def test_the_console_button_reaches_the_operators_pbx_without_naming_it(
    start: Start, pbxs: dict[str, AmiReplayServer]
) -> None:
    client = await start(office=[r"3\d\d"], branch=[r"2\d\d"])
    csrf = await log_in(client, "operator")
    page = await client.post("/calls", data={"csrf_token": csrf, "number": "+79161234567"})
    assert page.status == 200
    assert "pick up your phone (extension 201)" in await page.text()
    action = await pbxs["branch"].wait_for_action("Originate")
    assert action["Channel"] == "PJSIP/201"
    assert originates(pbxs["office"]) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"extensions": [r"2\d\d", "(3"]},
            "PBX 'office': extensions: Value error, bad regular expression '(3'",
        ),
        (
            {"originate_context": "from-trunk"},
            "PBX 'office': originate_context: Value error, 'from-trunk' is not one of "
            "operator_contexts (from-internal)",
        ),
        (
            {"operator_contexts": ["operators"]},
            "PBX 'office': originate_context: Value error, 'from-internal' is not one of "
            "operator_contexts (operators)",
        ),
    ],
)
def test_a_wrong_click_to_call_setting_names_the_pbx_and_the_setting(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ChannelConfigError) as refused:
        adapter(
            name="office",
            options={"username": "commhub", "secret": SECRET, **options},
            context=ChannelContext(phone_region="RU"),
        )
    assert str(refused.value).startswith(message)


def test_the_sample_channels_file_passes_its_own_rules() -> None:
    sample = Path(__file__).resolve().parents[3] / "deploy" / "asterisk" / "channels.toml"
    [main] = tomllib.loads(sample.read_text(encoding="utf-8"))["channels"]
    options = {k: v for k, v in main.items() if k not in ("adapter", "name")}
    channel = adapter(name=main["name"], options=options, context=ChannelContext(phone_region="RU"))
    assert isinstance(channel, Telephony)
    assert channel.serves("201", explicitly=True) and not channel.serves("301")

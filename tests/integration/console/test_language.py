"""The console in Russian: chosen by the browser until the user picks a language."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from app_fixtures import log_in

Client = TestClient[Any, Any]
RUSSIAN = {"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"}


async def test_a_russian_browser_gets_the_console_in_russian(client: Client) -> None:
    login = await (await client.get("/login", headers=RUSSIAN)).text()
    assert '<html lang="ru">' in login and "Имя пользователя" in login
    await log_in(client, "operator")
    home = await (await client.get("/", headers=RUSSIAN)).text()
    assert "Здравствуйте, operator" in home
    assert "Пропущенные — перезвонить" in home and ">Контакты</a>" in home
    assert json.dumps({"incoming_call": "Входящий звонок"})[1:-1] in home  # the pop's words
    english = await (await client.get("/", headers={"Accept-Language": "en-GB"})).text()
    assert "Hello, operator" in english


async def test_refusals_are_explained_in_the_users_language(client: Client) -> None:
    await log_in(client, "operator")
    denied = await client.get("/log", headers={**RUSSIAN, "Accept": "text/html"})
    assert denied.status == 403
    assert "Доступ запрещён" in await denied.text()

"""Small API calls the deals tests share: who am I, open a deal, the default stages."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]
Auth = dict[str, str]


async def me(client: Client, auth: Auth) -> int:
    response = await client.get("/api/v1/auth/me", headers=auth)
    return int((await response.json())["user"]["id"])


async def open_deal(client: Client, auth: Auth, **body: Any) -> dict[str, Any]:
    body.setdefault("currency", "RUB")
    response = await client.post("/api/v1/deals", json=body, headers=auth)
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def stages(client: Client, auth: Auth) -> dict[str, int]:
    """The default pipeline's stages by preset (or name)."""
    listed = await (await client.get("/api/v1/pipelines", headers=auth)).json()
    default = next(p for p in listed["items"] if p["is_default"])
    return {s["preset"] or s["name"]: s["id"] for s in default["stages"]}


async def failed_field(response: Any, status: int = 422) -> str:
    """The field a problem names, after checking its status and type."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    return str((await response.json())["errors"][0]["field"])

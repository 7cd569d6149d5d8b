"""User administration and the caller's own API tokens."""

from __future__ import annotations

from aiohttp import web

from commhub.domain.roles import Permission, Role
from commhub.services import accounts
from commhub.web.api import schemas
from commhub.web.api.views import token_out, user_out
from commhub.web.auth import credential_of
from commhub.web.endpoints import endpoint, json_response, path_id, read_body
from commhub.web.keys import DATABASE, principal


@endpoint("List users.", permission=Permission.USERS_MANAGE, tag="users", response=schemas.UserList)
async def list_users(request: web.Request) -> web.StreamResponse:
    rows = await accounts.all_users(request.app[DATABASE])
    return json_response(schemas.UserList(items=[user_out(u) for u in rows]))


@endpoint(
    "Create a user.",
    permission=Permission.USERS_MANAGE,
    tag="users",
    body=schemas.UserCreate,
    response=schemas.UserOut,
    status=201,
)
async def create_user(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.UserCreate)
    user = await accounts.create_user(
        request.app[DATABASE],
        username=body.username,
        password=body.password,
        role=body.role,
        display_name=body.display_name,
        extension=body.extension,
    )
    return json_response(user_out(user), status=201)


@endpoint(
    "Change a user's name, role, extension, password, active flag, language or time zone. "
    "Deactivating, reactivating or resetting the password ends the user's sessions and API "
    "tokens (the caller's own stay); a new role applies to their very next request. "
    "A deactivated user's deals go to deals_to, else to the admin deactivating them.",
    permission=Permission.USERS_MANAGE,
    tag="users",
    body=schemas.UserUpdate,
    response=schemas.UserOut,
)
async def update_user(request: web.Request) -> web.StreamResponse:
    user_id = path_id(request)
    body = await read_body(request, schemas.UserUpdate)
    user = await accounts.update_user(
        request.app[DATABASE],
        user_id,
        display_name=body.display_name,
        role=body.role,
        extension=body.extension or None,
        clear_extension=body.extension == "",
        active=body.active,
        password=body.password,
        locale=body.locale,
        time_zone=body.time_zone,
        keep_credential=credential_of(request),
        deals_to=body.deals_to,
        acting_user_id=principal(request).user_id,
    )
    return json_response(user_out(user))


@endpoint(
    "List the caller's own API tokens.",
    permission=Permission.TOKENS_MANAGE,
    tag="tokens",
    response=schemas.TokenList,
)
async def list_tokens(request: web.Request) -> web.StreamResponse:
    rows = await accounts.tokens_of(request.app[DATABASE], principal(request).user_id)
    return json_response(schemas.TokenList(items=[token_out(t) for t in rows]))


@endpoint(
    "Issue an API token for an integration; the secret is in this response only.",
    permission=Permission.TOKENS_MANAGE,
    tag="tokens",
    body=schemas.TokenCreate,
    response=schemas.TokenIssued,
    status=201,
)
async def create_token(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, schemas.TokenCreate)
    secret, token = await accounts.issue_token(
        request.app[DATABASE], principal(request).user_id, body.name
    )
    issued = schemas.TokenIssued(**token_out(token).model_dump(), token=secret)
    return json_response(issued, status=201)


@endpoint(
    "Revoke an API token (yours; admins may revoke anyone's).",
    permission=Permission.TOKENS_MANAGE,
    tag="tokens",
    status=204,
)
async def revoke_token(request: web.Request) -> web.StreamResponse:
    caller = principal(request)
    await accounts.revoke_token(
        request.app[DATABASE], caller.user_id, path_id(request), any_user=caller.role is Role.ADMIN
    )
    return web.Response(status=204)

"""The users page: who may log in, with which role and extension.

The forms go through the same request schemas and services as the JSON API
(``schemas.UserCreate``/``UserUpdate``, ``services.accounts``), so a rule such
as a free extension, a long enough password or the last active admin holds
the same whichever way a change comes in. A refused change comes back as a
message on the form with what was typed kept (except passwords).
"""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from commhub.domain.roles import Permission, Role
from commhub.models import User
from commhub.services import accounts
from commhub.services.errors import Conflict, InvalidInput
from commhub.web.api import schemas
from commhub.web.auth import credential_of
from commhub.web.endpoints import endpoint, path_id
from commhub.web.keys import DATABASE
from commhub.web.ui import flash
from commhub.web.ui.forms import Form, read_form
from commhub.web.ui.render import page, viewer

SECTION = "admin-users"


@endpoint("Users: the list and a form to add one.", permission=Permission.USERS_MANAGE, tag="pages")
async def users_page(request: web.Request) -> web.StreamResponse:
    return await _users_page(request, form={"role": Role.OPERATOR.value})


@endpoint("Add a user from the form.", permission=Permission.USERS_MANAGE, tag="pages")
async def create_user(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    try:
        body = schemas.UserCreate.model_validate(
            {
                "username": form.get("username", ""),
                "password": form.get("password", ""),
                "role": form.get("role", ""),
                "display_name": form.get("display_name", "").strip(),
                "extension": form.get("extension", "").strip() or None,
            }
        )
        user = await accounts.create_user(
            request.app[DATABASE],
            username=body.username,
            password=body.password,
            role=body.role,
            display_name=body.display_name,
            extension=body.extension,
        )
    except (ValidationError, InvalidInput, Conflict) as refused:
        return await _users_page(request, form=_kept(form), error=_reason(refused), status=422)
    raise flash.redirect("/admin/users", "User %(username)s added.", username=user.username)


@endpoint("One user: the form to change them.", permission=Permission.USERS_MANAGE, tag="pages")
async def user_page(request: web.Request) -> web.StreamResponse:
    user = await _user(request)
    form = {
        "display_name": user.display_name,
        "role": user.role,
        "extension": user.extension or "",
        "active": "1" if user.active else "",
    }
    return await _user_page(request, user, form=form)


@endpoint("Change a user from the form.", permission=Permission.USERS_MANAGE, tag="pages")
async def update_user(request: web.Request) -> web.StreamResponse:
    user = await _user(request)
    form = await read_form(request)
    yourself = user.id == (await viewer(request)).user.id
    try:
        # Your own role and active flag are not on your form: one wrong click
        # would lock you out of this page. Another admin can change them.
        body = schemas.UserUpdate.model_validate(
            {
                "display_name": form.get("display_name", "").strip() or user.username,
                "role": None if yourself else form.get("role"),
                "extension": form.get("extension", "").strip(),
                "active": None if yourself else form.get("active") == "1",
                "password": form.get("password") or None,
                # Only a deactivation hands the deals over; otherwise the choice is moot.
                "deals_to": None
                if yourself or form.get("active") == "1"
                else form.get("deals_to") or None,
            }
        )
        await accounts.update_user(
            request.app[DATABASE],
            user.id,
            display_name=body.display_name,
            role=body.role,
            extension=body.extension or None,
            clear_extension=body.extension == "",
            active=body.active,
            password=body.password,
            keep_credential=credential_of(request),
            deals_to=body.deals_to,
            acting_user_id=(await viewer(request)).user.id,
        )
    except (ValidationError, InvalidInput, Conflict) as refused:
        return await _user_page(request, user, form=_kept(form), error=_reason(refused), status=422)
    raise flash.redirect("/admin/users", "User %(username)s saved.", username=user.username)


async def _users_page(
    request: web.Request, *, form: Form, error: str = "", status: int = 200
) -> web.Response:
    rows = await accounts.all_users(request.app[DATABASE])
    return await page(
        request,
        "admin_users.html",
        section=SECTION,
        status=status,
        users=rows,
        roles=list(Role),
        form=form,
        error=error,
    )


async def _user_page(
    request: web.Request, user: User, *, form: Form, error: str = "", status: int = 200
) -> web.Response:
    me = await viewer(request)
    return await page(
        request,
        "admin_user.html",
        section=SECTION,
        status=status,
        user=user,
        yourself=user.id == me.user.id,
        heirs=[
            u
            for u in await accounts.all_users(request.app[DATABASE])
            if u.active and u.id != user.id
        ],
        roles=list(Role),
        form=form,
        error=error,
    )


async def _user(request: web.Request) -> User:
    return await accounts.user(request.app[DATABASE], path_id(request))


def _kept(form: Form) -> Form:
    """What the form shows again after a refusal: everything but passwords."""
    return {name: value for name, value in form.items() if "password" not in name}


def _reason(refused: Exception) -> str:
    if isinstance(refused, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in refused.errors(include_url=False)[:3]
        )
    return str(refused)

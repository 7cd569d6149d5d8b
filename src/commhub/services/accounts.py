"""Accounts as the web changes them: users, one's own password and API tokens, each
change one transaction.

The rules (a free extension, a long enough password, the last active admin)
are in :mod:`commhub.services.users`, whose session-taking functions the CLI,
bootstrap and jobs call inside transactions of their own.
"""

from __future__ import annotations

from collections.abc import Sequence

from commhub.domain.roles import Role
from commhub.models import ApiToken, User
from commhub.services import users
from commhub.services.database import Database
from commhub.services.errors import NotFound
from commhub.store import users as store


async def all_users(db: Database) -> Sequence[User]:
    """Every user, oldest first."""
    async with db() as session:
        return await store.all_users(session)


async def user(db: Database, user_id: int) -> User:
    """The user with this id; raises ``NotFound``."""
    async with db() as session:
        found = await session.get(User, user_id)
    if found is None:
        raise NotFound("user", user_id)
    return found


async def chosen_language(
    db: Database, *, user_id: int | None, session_secret: str | None
) -> str | None:
    """The console language of the user named by id, else by their session cookie, if any."""
    async with db() as session:
        if user_id is None and session_secret:
            caller = await users.principal_from_session(session, session_secret)
            user_id = None if caller is None else caller.user_id
        found = None if user_id is None else await session.get(User, user_id)
    return None if found is None else found.locale


async def create_user(
    db: Database,
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str = "",
    extension: str | None = None,
) -> User:
    """Add a user (:func:`commhub.services.users.create_user`)."""
    async with db.begin() as session:
        return await users.create_user(
            session,
            username=username,
            password=password,
            role=role,
            display_name=display_name,
            extension=extension,
        )


async def update_user(
    db: Database,
    user_id: int,
    *,
    display_name: str | None = None,
    role: Role | None = None,
    extension: str | None = None,
    clear_extension: bool = False,
    active: bool | None = None,
    password: str | None = None,
    locale: str | None = None,
    time_zone: str | None = None,
    keep_credential: str | None = None,
    deals_to: int | None = None,
    acting_user_id: int | None = None,
) -> User:
    """Change a user's fields, ending their credentials where the rules say so and
    handing a deactivated user's deals over (:func:`commhub.services.users.update_user`)."""
    async with db.begin() as session:
        return await users.update_user(
            session,
            user_id,
            display_name=display_name,
            role=role,
            extension=extension,
            clear_extension=clear_extension,
            active=active,
            password=password,
            locale=locale,
            time_zone=time_zone,
            keep_credential=keep_credential,
            deals_to=deals_to,
            acting_user_id=acting_user_id,
        )


async def change_own_password(
    db: Database, user_id: int, *, current: str, new: str, keep_session_secret: str | None
) -> None:
    """Replace the user's password after checking the current one; their other sessions end.

    Raises ``InvalidInput`` naming ``current_password`` or ``new_password``.
    """
    async with db.begin() as session:
        await users.change_own_password(
            session, user_id, current=current, new=new, keep_session_secret=keep_session_secret
        )


async def tokens_of(db: Database, user_id: int) -> Sequence[ApiToken]:
    """The user's API tokens, revoked ones included, oldest first."""
    async with db() as session:
        return await store.tokens_of(session, user_id)


async def issue_token(db: Database, user_id: int, name: str) -> tuple[str, ApiToken]:
    """A new API token; the secret is returned this once and never stored."""
    async with db.begin() as session:
        return await users.issue_token(session, user_id, name)


async def revoke_token(db: Database, user_id: int, token_id: int, *, any_user: bool) -> None:
    """Revoke the token if it is ``user_id``'s (or anyone's, with ``any_user``)."""
    async with db.begin() as session:
        await users.revoke_token(session, user_id, token_id, any_user=any_user)

"""Users, logins and API tokens.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106); the
hashing runs in a worker thread so a login never stalls the event loop.
Session cookies and API tokens are random secrets of which only a SHA-256
digest is stored: a leaked database does not let anyone log in.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.config import CONSOLE_LANGUAGES
from commhub.domain.roles import Role
from commhub.models import ApiToken, User, WebSession, utcnow
from commhub.services.errors import Conflict, InvalidInput, NotFound
from commhub.store import deals as deal_store
from commhub.store import users as store

_hasher = PasswordHasher()
TOKEN_PREFIX = "chub_"
MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, and how they proved it."""

    user_id: int
    username: str
    role: Role
    via: str  # "session" or "token"
    csrf_token: str | None = None


def digest(secret: str) -> str:
    """Lookup form of a session or token secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_DUMMY_HASH = _hasher.hash("not-a-real-password")


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str = "",
    extension: str | None = None,
) -> User:
    """Add a user; the caller commits. Raises on a taken username/extension or weak password."""
    username = username.strip()
    if not username:
        raise InvalidInput("username", "username must not be empty")
    _check_password(password)
    if await store.by_username(session, username) is not None:
        raise Conflict("username", f"username {username!r} is taken")
    await _check_extension_free(session, extension, user_id=None)
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=await hash_password(password),
        role=role.value,
        extension=extension or None,
    )
    session.add(user)
    await session.flush()
    return user


async def update_user(
    session: AsyncSession,
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
    """Change a user's fields; the caller commits.

    A deactivated user's deals (and their funnel rows) go to ``deals_to``,
    else to ``acting_user_id`` (the admin doing it), so no deal is left with an
    owner who can no longer work on it.

    ``locale`` and ``time_zone`` are the console's language and zone for the
    user; an empty string clears either (the hub's default applies). The last
    active admin can be neither demoted nor deactivated: the hub would be left
    with nobody able to manage users.

    Deactivating, reactivating or resetting the password of a user ends every
    browser session and API token they hold, for good: a reactivated user logs
    in again and is issued new tokens. ``keep_credential`` is the secret
    (session cookie or API token) of the admin making the change, spared when
    they reset their own password. A role change ends nothing: every request
    is authorised by the role the user holds at that moment
    (:func:`principal_from_session`, :func:`principal_from_token`).
    """
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    if locale is not None:
        user.locale = _known_language(locale)
    if time_zone is not None:
        user.time_zone = _known_zone(time_zone)
    if user.role == Role.ADMIN.value and user.active:
        demoted = role is not None and role is not Role.ADMIN
        if (demoted or active is False) and await _other_active_admins(session, user_id) == 0:
            field = "role" if demoted else "active"
            raise Conflict(field, f"{user.username} is the last active admin: make another first")
    if display_name is not None:
        user.display_name = display_name
    if role is not None:
        user.role = role.value
    if clear_extension:
        user.extension = None
    elif extension is not None:
        await _check_extension_free(session, extension, user_id=user_id)
        user.extension = extension
    await _hand_over_deals(session, user, active, deals_to or acting_user_id, deals_to)
    if active is not None and active != user.active:
        user.active = active
        # Reactivation ends them too: credentials left from before the user was
        # switched off (or from before this rule) never come back to life.
        await end_access(session, user_id)
    if password is not None:
        _check_password(password)
        user.password_hash = await hash_password(password)
        # A reset password is a lost or shared one: whoever is logged in with it goes.
        await end_access(session, user_id, keep_credential=keep_credential)
    await session.flush()
    return user


async def _hand_over_deals(
    session: AsyncSession,
    user: User,
    active: bool | None,
    to_user: int | None,
    named: int | None,
) -> None:
    """On deactivation, ``user``'s deals go to ``to_user`` (``named`` if the admin named one)."""
    if not (active is False and user.active):
        if named is not None:
            raise InvalidInput("deals_to", "deals are handed over only when a user is deactivated")
        return
    if to_user is not None:
        heir = await session.get(User, to_user)
        if heir is None or not heir.active or heir.id == user.id:
            raise InvalidInput("deals_to", f"name another active user, not {to_user}")
    await deal_store.reassign_owner(session, user.id, to_user)


async def end_access(
    session: AsyncSession, user_id: int, *, keep_credential: str | None = None
) -> None:
    """End every browser session and revoke every API token of ``user_id``; the caller commits.

    The credential whose secret is ``keep_credential`` (the caller's own) is spared.
    """
    keep = digest(keep_credential) if keep_credential else None
    await store.drop_sessions_of(session, user_id, keep_hash=keep)
    await store.revoke_tokens_of(session, user_id, utcnow(), keep_hash=keep)


async def change_own_password(
    session: AsyncSession,
    user_id: int,
    *,
    current: str,
    new: str,
    keep_session_secret: str | None = None,
) -> None:
    """Replace the caller's password after checking the current one; the caller commits.

    Every other browser session of the user ends (the one making the change,
    if any, stays), so a password someone else learned stops working
    everywhere at once. API tokens are separate credentials and stay valid.
    """
    user = await session.get(User, user_id)
    if user is None or not user.active:
        raise NotFound("user", user_id)
    if not await _password_matches(user.password_hash, current):
        raise InvalidInput("current_password", "the current password is wrong")
    _check_password(new, field="new_password")
    if new == current:
        raise InvalidInput("new_password", "the new password is the current one")
    user.password_hash = await hash_password(new)
    keep = digest(keep_session_secret) if keep_session_secret else None
    await store.drop_sessions_of(session, user_id, keep_hash=keep)
    await session.flush()


def _known_language(code: str) -> str | None:
    if code and code not in CONSOLE_LANGUAGES:
        known = ", ".join(CONSOLE_LANGUAGES)
        raise InvalidInput("locale", f"unknown language {code!r} (known: {known})")
    return code or None


def _known_zone(name: str) -> str | None:
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            "time_zone", f"unknown time zone {name!r} (use an IANA name such as Europe/Moscow)"
        ) from None
    return name


async def _other_active_admins(session: AsyncSession, user_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.ADMIN.value, User.active.is_(True), User.id != user_id)
    )
    return count or 0


def _check_password(password: str, *, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(field, f"use at least {MIN_PASSWORD_LENGTH} characters")


async def _check_extension_free(
    session: AsyncSession, extension: str | None, *, user_id: int | None
) -> None:
    if not extension:
        return
    if not extension.isdigit():
        raise InvalidInput("extension", "an extension is digits only, e.g. 201")
    owner = await session.scalar(select(User.id).where(User.extension == extension))
    if owner is not None and owner != user_id:
        raise Conflict("extension", f"extension {extension} belongs to user {owner}")


async def authenticate(session: AsyncSession, username: str, password: str) -> User | None:
    """The active user with these credentials, or ``None`` (same cost either way)."""
    user = await store.by_username(session, username.strip())
    if user is None or not user.active:
        await _password_matches(_DUMMY_HASH, password)
        return None
    if not await _password_matches(user.password_hash, password):
        return None
    return user


async def open_session(
    session: AsyncSession, user: User, *, ttl: timedelta
) -> tuple[str, WebSession]:
    """Start a browser session; returns the cookie secret (shown once) and the row."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    await store.drop_expired_sessions(session, now)
    row = WebSession(
        token_hash=digest(secret),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    await session.flush()
    return secret, row


async def principal_from_session(session: AsyncSession, secret: str) -> Principal | None:
    found = await store.by_session_token(session, digest(secret), utcnow())
    if found is None:
        return None
    user, web_session = found
    return Principal(
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        via="session",
        csrf_token=web_session.csrf_token,
    )


async def principal_from_token(session: AsyncSession, secret: str) -> Principal | None:
    if not secret.startswith(TOKEN_PREFIX):
        return None
    found = await store.by_api_token(session, digest(secret))
    if found is None:
        return None
    user, token = found
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
        await session.commit()
    return Principal(user_id=user.id, username=user.username, role=Role(user.role), via="token")


async def close_session(session: AsyncSession, secret: str) -> None:
    await store.drop_session(session, digest(secret))


async def issue_token(session: AsyncSession, user_id: int, name: str) -> tuple[str, ApiToken]:
    """A new API token for ``user_id``; the secret is returned once and never stored."""
    name = name.strip()
    if not name:
        raise InvalidInput("name", "give the token a name that says which integration uses it")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user_id, name=name, token_hash=digest(secret), prefix=secret[:12])
    session.add(token)
    await session.flush()
    return secret, token


async def revoke_token(
    session: AsyncSession, user_id: int, token_id: int, *, any_user: bool
) -> None:
    token = await session.get(ApiToken, token_id)
    if token is None or (token.user_id != user_id and not any_user):
        raise NotFound("token", token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    await session.flush()

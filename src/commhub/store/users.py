"""User, session and API-token queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commhub.models import ApiToken, User, WebSession


async def by_username(session: AsyncSession, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username))


async def all_users(session: AsyncSession) -> Sequence[User]:
    return (await session.scalars(select(User).order_by(User.id))).all()


async def names_of(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    """The names people see for these users, by id (the operators on a page of the log)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    users = await session.scalars(select(User).where(User.id.in_(wanted)))
    return {user.id: user.shown_name for user in users}


async def by_session_token(
    session: AsyncSession, token_hash: str, now: datetime
) -> tuple[User, WebSession] | None:
    row = (
        await session.execute(
            select(User, WebSession)
            .join(WebSession, WebSession.user_id == User.id)
            .where(
                WebSession.token_hash == token_hash,
                WebSession.expires_at > now,
                User.active.is_(True),
            )
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def by_api_token(session: AsyncSession, token_hash: str) -> tuple[User, ApiToken] | None:
    row = (
        await session.execute(
            select(User, ApiToken)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(
                ApiToken.token_hash == token_hash,
                ApiToken.revoked_at.is_(None),
                User.active.is_(True),
            )
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def drop_session(session: AsyncSession, token_hash: str) -> None:
    await session.execute(delete(WebSession).where(WebSession.token_hash == token_hash))


async def drop_sessions_of(
    session: AsyncSession, user_id: int, *, keep_hash: str | None = None
) -> None:
    """End every browser session of ``user_id`` except the one whose digest is ``keep_hash``."""
    query = delete(WebSession).where(WebSession.user_id == user_id)
    if keep_hash is not None:
        query = query.where(WebSession.token_hash != keep_hash)
    await session.execute(query)


async def revoke_tokens_of(
    session: AsyncSession, user_id: int, now: datetime, *, keep_hash: str | None = None
) -> None:
    """Revoke every live API token of ``user_id`` except the one whose digest is ``keep_hash``."""
    query = (
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if keep_hash is not None:
        query = query.where(ApiToken.token_hash != keep_hash)
    await session.execute(query)


async def drop_expired_sessions(session: AsyncSession, now: datetime) -> None:
    await session.execute(delete(WebSession).where(WebSession.expires_at <= now))


async def tokens_of(session: AsyncSession, user_id: int) -> Sequence[ApiToken]:
    return (
        await session.scalars(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
        )
    ).all()

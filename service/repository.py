"""Memo queries. Functions take a session; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import Memo
from service.schemas import MemoCreate

_LIKE_ESCAPE = "\\"


async def create(session: AsyncSession, data: MemoCreate) -> Memo:
    memo = Memo(**data.model_dump())
    session.add(memo)
    await session.commit()
    return memo


async def get(session: AsyncSession, memo_id: int) -> Memo | None:
    return await session.get(Memo, memo_id)


async def list_newest(session: AsyncSession, skip: int, limit: int) -> Sequence[Memo]:
    query = select(Memo).order_by(Memo.created_at.desc(), Memo.id.desc()).offset(skip).limit(limit)
    return (await session.scalars(query)).all()


async def search(session: AsyncSession, text: str, skip: int, limit: int) -> Sequence[Memo]:
    pattern = f"%{escape_like(text)}%"
    query = (
        select(Memo)
        .where(
            or_(
                Memo.title.ilike(pattern, escape=_LIKE_ESCAPE),
                Memo.content.ilike(pattern, escape=_LIKE_ESCAPE),
            )
        )
        .order_by(Memo.created_at.desc(), Memo.id.desc())
        .offset(skip)
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def update(session: AsyncSession, memo_id: int, changes: dict[str, Any]) -> Memo | None:
    memo = await session.get(Memo, memo_id, with_for_update=True)
    if memo is None:
        return None
    for name, value in changes.items():
        setattr(memo, name, value)
    # The commit is the last statement, so a write answered with an error was not applied, unless
    # the answer to the COMMIT itself was lost. updated_at is set in Python: no refresh needed.
    await session.commit()
    return memo


async def remove(session: AsyncSession, memo_id: int) -> bool:
    result = await session.execute(delete(Memo).where(Memo.id == memo_id))
    await session.commit()
    return bool(getattr(result, "rowcount", 0))


async def count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Memo)) or 0)


def escape_like(text: str) -> str:
    """Make `%`, `_` and the escape character match themselves in a LIKE pattern."""
    return (
        text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
        .replace("%", _LIKE_ESCAPE + "%")
        .replace("_", _LIKE_ESCAPE + "_")
    )

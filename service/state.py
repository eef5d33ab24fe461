"""What the app holds while it runs: engine, sessions, cache; and the dependencies that reach it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.cache import MemoCache
from service.config import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: MemoCache


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.memo
    return state


async def get_session(
    state: Annotated[AppState, Depends(get_state)],
) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as session:
        yield session


def get_cache(state: Annotated[AppState, Depends(get_state)]) -> MemoCache:
    return state.cache


StateDep = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
CacheDep = Annotated[MemoCache, Depends(get_cache)]

"""What the app holds while it runs: engine, sessions, cache; and the dependencies that reach it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.cache import MemoCache
from service.config import Settings
from service.errors import is_unavailable

log = logging.getLogger(__name__)


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
    session = state.sessions()
    try:
        yield session
    finally:
        await _close(session)


async def _close(session: AsyncSession) -> None:
    """Close the session, which rolls back what a request left open.

    FastAPI runs this after the response is sent. A rollback that fails there because the
    database went away cannot change the response any more; raised, it would make uvicorn close
    the connection, and drop the next request the client is already sending on it. The
    connection is discarded instead, and the failure logged.
    """
    try:
        await session.close()
    except Exception as error:
        if not is_unavailable(error):
            raise
        log.warning("database session not closed cleanly, connection discarded: %s", error)
        with contextlib.suppress(Exception):
            await session.invalidate()


def get_cache(state: Annotated[AppState, Depends(get_state)]) -> MemoCache:
    return state.cache


StateDep = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
CacheDep = Annotated[MemoCache, Depends(get_cache)]

"""The service's own contract series: `memo_total` from the database, pool connections in use."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from opentelemetry.metrics import CallbackOptions, Observation
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from otel import Telemetry
from otel.metrics.contract import ACTIVE_CONNECTIONS, MEMO_TOTAL
from service import repository

log = logging.getLogger(__name__)


class MemoCountObserver:
    """Counts the rows at collection time, on the app's event loop.

    Collections run in other threads (the /metrics endpoint renders off the loop; push readers
    have their own thread), so the count is a query scheduled on the loop and awaited with a bound.
    When the database cannot answer, the series is left out rather than reported stale.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        loop: asyncio.AbstractEventLoop,
        timeout_seconds: float = 2.0,
    ) -> None:
        self._sessions = sessions
        self._loop = loop
        self._timeout = timeout_seconds

    def __call__(self, options: CallbackOptions) -> Iterable[Observation]:
        count = self._count()
        return [] if count is None else [Observation(count)]

    def _count(self) -> int | None:
        if _running_loop() is self._loop or self._loop.is_closed():
            return None  # blocking here would deadlock the loop
        future = asyncio.run_coroutine_threadsafe(self._query(), self._loop)
        try:
            return future.result(self._timeout)
        except Exception as error:
            future.cancel()
            log.warning("memo_total not observed: %s", error or type(error).__name__)
            return None

    async def _query(self) -> int:
        async with self._sessions() as session:
            return await repository.count(session)


def observe_service_metrics(
    telemetry: Telemetry,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    loop: asyncio.AbstractEventLoop,
) -> None:
    meter = telemetry.meter
    meter.create_observable_gauge(
        MEMO_TOTAL.instrument,
        callbacks=[MemoCountObserver(sessions, loop)],
        unit=MEMO_TOTAL.unit,
        description=MEMO_TOTAL.description,
    )

    def checked_out(options: CallbackOptions) -> Iterable[Observation]:
        checkedout = getattr(engine.pool, "checkedout", None)
        return [Observation(checkedout())] if checkedout else []

    meter.create_observable_gauge(
        ACTIVE_CONNECTIONS.instrument,
        callbacks=[checked_out],
        unit=ACTIVE_CONNECTIONS.unit,
        description=ACTIVE_CONNECTIONS.description,
    )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None

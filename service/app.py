"""The application factory: builds the app without side effects; resources open in the lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from otel import TelemetryConfig, setup_telemetry
from otel.logs import configure_json_logging
from service import migrate
from service.api import health, memos
from service.cache import create_cache
from service.config import Settings
from service.db import create_engine, session_factory
from service.errors import install_error_handlers
from service.limits import BodySizeLimit
from service.metrics import observe_service_metrics
from service.state import AppState

log = logging.getLogger(__name__)

# The `job` label Prometheus gives the app; push paths derive it from service.name.
SERVICE_NAME = "fastapi"


def freeze_startup_heap() -> None:
    """Collect start-up garbage once, then keep every surviving object out of later collections."""
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings | None = None, telemetry_config: TelemetryConfig | None = None
) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.log_format == "json":
            configure_json_logging(settings.log_level)
        if settings.migrate_on_start:
            await run_in_threadpool(migrate.upgrade, settings.effective_database_url)
        engine = create_engine(settings)
        state = AppState(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            cache=create_cache(settings),
        )
        app.state.memo = state
        telemetry.instrument_sqlalchemy(engine)
        if state.cache.client is not None:
            telemetry.instrument_redis(state.cache.client)
        observe_service_metrics(telemetry, engine, state.sessions, asyncio.get_running_loop())
        if settings.gc_freeze:
            freeze_startup_heap()
        try:
            yield
        finally:
            if settings.gc_freeze:
                gc.unfreeze()  # the heap this process keeps after the app is the collector's again
            # Off the loop: the final export's memo_total is a query that runs on this loop.
            await run_in_threadpool(telemetry.shutdown)
            await state.cache.close()
            await engine.dispose()

    app = FastAPI(title="Memo service", version="1.0.0", lifespan=lifespan)
    app.include_router(memos.router)
    app.include_router(health.router)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    telemetry = setup_telemetry(app, telemetry_config, service_name=SERVICE_NAME)
    app.state.telemetry = telemetry
    return app

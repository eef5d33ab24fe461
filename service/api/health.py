"""`GET /health`: the database decides up or down; Redis only degrades."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from service.state import StateDep

router = APIRouter(tags=["health"])


class HealthReport(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    services: dict[str, Literal["healthy", "unhealthy", "not configured"]]


@router.get(
    "/health",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "The database is unreachable"}},
)
async def health(state: StateDep) -> JSONResponse:
    database = "healthy" if await _database_ok(state) else "unhealthy"
    if not state.cache.configured:
        redis = "not configured"
    else:
        redis = "healthy" if await state.cache.ping() else "unhealthy"
    body: dict[str, Any] = {
        "status": "healthy" if redis != "unhealthy" else "degraded",
        "services": {"database": database, "redis": redis},
    }
    if database != "healthy":
        body["status"] = "unhealthy"
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)


async def _database_ok(state: StateDep) -> bool:
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True

"""Error responses: the database being away is a 503, bad input a 4xx, and both are JSON.

A stack trace never reaches a client: errors that are not ours to explain stay 500s, answered
by Starlette's plain "Internal Server Error" and logged with their traceback.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "Database unavailable, try again shortly"


def install_error_handlers(app: FastAPI) -> None:
    # OSError covers refused and timed-out connections (TimeoutError is one), which asyncpg
    # raises unwrapped while connecting.
    for error in (DBAPIError, PoolTimeoutError, OSError):
        app.add_exception_handler(error, database_unavailable)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(405, method_not_allowed)


def is_unavailable(error: Exception) -> bool:
    """Whether `error` says the database cannot be reached, rather than that a query was wrong."""
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)
    return isinstance(error, OSError | PoolTimeoutError)


async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
    if not is_unavailable(error):
        raise error  # a bug (bad SQL, a value the database refuses): a 500, logged
    log.error("database unavailable: %s", error or type(error).__name__)
    return JSONResponse({"detail": DATABASE_UNAVAILABLE}, status_code=503)


async def invalid_request(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422, except that echoing an input JSON cannot carry (bytes that are not UTF-8, a
    lone surrogate from a "\\ud800" escape, NaN) cannot turn it into a 500."""
    assert isinstance(error, RequestValidationError)
    errors = jsonable_encoder(error.errors(), custom_encoder=_JSON_SAFE)
    return JSONResponse({"detail": errors}, status_code=422)


_JSON_SAFE = {
    bytes: lambda raw: raw.decode("utf-8", "replace"),
    str: lambda text: text.encode("utf-8", "replace").decode("utf-8"),
    float: lambda number: number if math.isfinite(number) else str(number),
}


async def method_not_allowed(request: Request, error: Exception) -> JSONResponse:
    """405 whose Allow header lists the methods of every route on the path, not just those of
    the first route that matched it (Starlette's). Each method is tried against the router's own
    matching, so nested routers and mounts count without knowing how they are built."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]
    detail = error.detail if isinstance(error, HTTPException) else "Method Not Allowed"
    return JSONResponse({"detail": detail}, status_code=405, headers={"Allow": ", ".join(allowed)})


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")

"""`uvicorn service.main:app`. The app is built on first access, not at import."""

from __future__ import annotations

from functools import cache

from fastapi import FastAPI

from service.app import create_app


@cache
def _app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> FastAPI:
    if name == "app":
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

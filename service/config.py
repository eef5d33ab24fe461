"""Typed settings for the memo service, read from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("data")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    # An SQLAlchemy async URL; unset means an SQLite file under DATA_DIR (the embedded default).
    database_url: str | None = None
    # Set: memo reads are cached in Redis. Unset: no cache.
    redis_url: str | None = None
    data_dir: Path = DEFAULT_DATA_DIR
    # JSON lines carry the trace and span of the request that wrote them; text is for people.
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    migrate_on_start: bool = True
    cache_ttl_seconds: int = Field(default=300, gt=0)
    # Services sharing one Redis database with different memo databases need distinct values.
    cache_namespace: str = Field(default="memos", min_length=1, pattern=r"^[\w.-]+$")
    # Bounds how long a slow or unreachable Redis can hold a request.
    redis_timeout_seconds: float = Field(default=0.25, gt=0)
    db_pool_size: int = Field(default=10, gt=0)
    db_timeout_seconds: float = Field(default=5.0, gt=0)
    # Larger request bodies are refused with 413 before they are read whole.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # After start-up the heap is moved out of the collector's reach (gc.freeze): the objects
    # built once (routes, models, telemetry) are no longer rescanned, which keeps the
    # collections that request garbage triggers short. Off: every collection scans everything.
    gc_freeze: bool = True

    @field_validator("database_url", "redis_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'memos.db').resolve()}"

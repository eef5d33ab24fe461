"""Cache-aside for memo reads in Redis, optional and never required.

Every write bumps a generation number that is part of every cache key, so a read that starts
after a write has finished can only see entries made after it. A write that could not bump the
generation (Redis down) leaves the cache marked dirty: the generation is bumped before the cache
is used again, so entries made before the outage are never served after it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.config import Settings

log = logging.getLogger(__name__)

# One round trip: read the generation and the entry stored under it.
_READ_SCRIPT = """
local generation = redis.call('GET', KEYS[1]) or '0'
return {generation, redis.call('GET', ARGV[1] .. generation .. ':' .. ARGV[2])}
"""

JSONValue = Any


class MemoCache:
    def __init__(
        self,
        client: Redis | None,
        ttl_seconds: int,
        *,
        namespace: str = "memos",
        retry_after_seconds: float = 2.0,
    ):
        self._client = client
        self._prefix = f"{namespace}:"
        self._generation_key = f"{namespace}:generation"
        self._ttl = ttl_seconds
        self._retry_after = retry_after_seconds
        self._unavailable_until = 0.0
        self._dirty = False
        self._read = client.register_script(_READ_SCRIPT) if client is not None else None

    @property
    def configured(self) -> bool:
        return self._client is not None

    @property
    def client(self) -> Redis | None:
        return self._client

    async def get_or_load(self, name: str, load: Callable[[], Awaitable[JSONValue]]) -> JSONValue:
        """The cached value for `name`, or `load()`'s result, cached when Redis allows."""
        generation, cached = await self._lookup(name)
        if cached is not None:
            return json.loads(cached)
        value = await load()
        if generation is not None:
            await self._store(f"{self._prefix}{generation}:{name}", value)
        return value

    async def invalidate(self) -> None:
        """Called after every committed write."""
        if self._client is None:
            return
        self._dirty = True
        if self._available():
            await self._bump_generation()

    async def ping(self) -> bool:
        if self._client is None:
            return False
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError) as error:
            log.warning("redis ping failed: %s", error)
            return False

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _lookup(self, name: str) -> tuple[str | None, bytes | None]:
        if self._read is None or not self._available():
            return None, None
        if self._dirty and not await self._bump_generation():
            return None, None
        try:
            generation, cached = await self._read(
                keys=[self._generation_key], args=[self._prefix, name]
            )
        except (RedisError, OSError) as error:
            self._mark_unavailable(error)
            return None, None
        return generation.decode(), cached

    async def _store(self, key: str, value: JSONValue) -> None:
        assert self._client is not None
        try:
            await self._client.set(key, json.dumps(value, separators=(",", ":")), ex=self._ttl)
        except (RedisError, OSError) as error:
            self._mark_unavailable(error)

    async def _bump_generation(self) -> bool:
        assert self._client is not None
        try:
            await self._client.incr(self._generation_key)
        except (RedisError, OSError) as error:
            self._mark_unavailable(error)
            return False
        self._dirty = False
        return True

    def _available(self) -> bool:
        return monotonic() >= self._unavailable_until

    def _mark_unavailable(self, error: Exception) -> None:
        log.warning("redis unavailable, serving from the database: %s", error)
        self._unavailable_until = monotonic() + self._retry_after


def create_cache(settings: Settings) -> MemoCache:
    if not settings.redis_url:
        return MemoCache(None, settings.cache_ttl_seconds)
    timeout = settings.redis_timeout_seconds
    client = Redis.from_url(
        settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    return MemoCache(client, settings.cache_ttl_seconds, namespace=settings.cache_namespace)

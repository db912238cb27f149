"""Per-instance, per-method rate limits (API.md §4): fixed one-second windows.

With ``REDIS_URL`` the counters live in Redis (INCR + EXPIRE in one pipeline) so
every web process shares them; otherwise they are kept in this process. A limit
below 1/s (e.g. 0.1) becomes one request per ``ceil(1/rate)`` seconds.
Operators change limits with ``RATE_LIMIT_OVERRIDES`` or turn them off with
``RATE_LIMITS_ENABLED=false``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from functools import cache

import redis
import redis.asyncio as aioredis
from django.conf import settings

from instances.registry import MethodSpec

log = logging.getLogger(__name__)

_lock = threading.Lock()
_local: dict[tuple[int, str], tuple[int, int]] = {}


def limit_for(spec: MethodSpec) -> float | None:
    """The configured requests/second for a method, or None when unlimited."""
    overrides: dict[str, float] = settings.RATE_LIMIT_OVERRIDES
    for key, value in overrides.items():
        if key.lower() == spec.name.lower():
            return value or None
    return spec.rate_limit


def _window(rate: float) -> tuple[int, int]:
    seconds = max(1, math.ceil(1 / rate)) if rate < 1 else 1
    return seconds, max(1, int(rate * seconds))


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5)


def allow(instance_id: int, spec: MethodSpec) -> bool:
    """Count one request; False when the instance exceeded the method's limit."""
    if not settings.RATE_LIMITS_ENABLED:
        return True
    rate = limit_for(spec)
    if not rate:
        return True
    seconds, limit = _window(rate)
    bucket = int(time.time()) // seconds
    if settings.REDIS_URL:
        key = f"rl:{instance_id}:{spec.name}:{bucket}"
        try:
            pipe = _redis().pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, seconds + 1)
            count = int(pipe.execute()[0])
        except redis.RedisError:
            # Rate limiting is a courtesy, not a correctness guarantee: keep serving
            # (with the local counter) while Redis is down.
            log.warning("rate limiter: Redis unavailable, using local counters")
            return _allow_local(instance_id, spec.name, bucket, limit)
        return count <= limit
    return _allow_local(instance_id, spec.name, bucket, limit)


def _allow_local(instance_id: int, name: str, bucket: int, limit: int) -> bool:
    key = (instance_id, name)
    with _lock:
        seen_bucket, count = _local.get(key, (bucket, 0))
        if seen_bucket != bucket:
            count = 0
        count += 1
        _local[key] = (bucket, count)
        if len(_local) > 100_000:  # bound memory: drop stale windows
            for k in [k for k, (b, _) in _local.items() if b != bucket]:
                del _local[k]
        return count <= limit


def reset() -> None:
    """Forget local counters (tests)."""
    with _lock:
        _local.clear()


_aio_clients: dict[int, aioredis.Redis] = {}


def _aioredis() -> aioredis.Redis:
    """One async client per event loop (their connections belong to a loop)."""
    import asyncio

    key = id(asyncio.get_running_loop())
    client = _aio_clients.get(key)
    if client is None:
        client = _aio_clients[key] = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5)
    return client


async def allow_async(instance_id: int, spec: MethodSpec) -> bool:
    """``allow`` for async code paths (the send fast lane): same windows and keys."""
    if not settings.RATE_LIMITS_ENABLED:
        return True
    rate = limit_for(spec)
    if not rate:
        return True
    seconds, limit = _window(rate)
    bucket = int(time.time()) // seconds
    if not settings.REDIS_URL:
        return _allow_local(instance_id, spec.name, bucket, limit)
    key = f"rl:{instance_id}:{spec.name}:{bucket}"
    try:
        async with _aioredis().pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, seconds + 1)
            count = int((await pipe.execute())[0])
    except redis.RedisError:
        log.warning("rate limiter: Redis unavailable, using local counters")
        return _allow_local(instance_id, spec.name, bucket, limit)
    return count <= limit

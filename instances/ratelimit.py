"""Per-instance, per-method rate limits (API.md §4): fixed one-second windows.

With ``REDIS_URL`` the counters live in Redis (one script call: INCR, and EXPIRE
on a window's first request) so every web process shares them; otherwise they are
kept in this process. A limit below 1/s (e.g. 0.1) becomes one request per
``ceil(1/rate)`` seconds.
Operators change limits with ``RATE_LIMIT_OVERRIDES`` or turn them off with
``RATE_LIMITS_ENABLED=false``.

Not the ``limits`` library: its fixed window runs the same INCR/EXPIRE script but
only on redis-py's (or coredis') client, so the edge would lose the lean
``instances.rediscount`` client (+6-14 % of a fast-lane request's web CPU,
docs/performance.md "Hand-written infrastructure vs libraries"); its windows start
at a key's first hit rather than on the clock (which tests freeze), and it has no
refund.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

from instances.rediscount import ScriptClient
from instances.registry import MethodSpec

log = logging.getLogger(__name__)

# The limiter's clock (seconds since the epoch). Tests freeze it, so a test never
# straddles a one-second window boundary however slowly the machine runs.
clock: Callable[[], float] = time.time

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


# One round trip and one command per request: a pipeline of INCR + EXPIRE cost the
# sendMessage fast lane ~15 % of its CPU in redis-py. Atomic, so a window's key can
# never be left without its expiry.
COUNT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5)


@cache
def _count(client: redis.Redis) -> Any:
    """The counting script bound to ``client`` (a new client gets its own)."""
    return client.register_script(COUNT_SCRIPT)


def allow(instance_id: int, spec: MethodSpec) -> bool:
    """Count one request; False when the instance exceeded the method's limit."""
    if not settings.RATE_LIMITS_ENABLED:
        return True
    rate = limit_for(spec)
    if not rate:
        return True
    seconds, limit = _window(rate)
    bucket = int(clock()) // seconds
    if settings.REDIS_URL:
        key = f"rl:{instance_id}:{spec.name}:{bucket}"
        try:
            count = int(_count(_redis())(keys=[key], args=[seconds + 1]))
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


_aio_counters: dict[int, Any] = {}


def _aio_count() -> Any:
    """One async client (and its registered script) per event loop: their
    connections belong to a loop."""
    key = id(asyncio.get_running_loop())
    counter = _aio_counters.get(key)
    if counter is None:
        # The lean client where it can (plain redis:// URLs), redis-py otherwise.
        counter = ScriptClient.for_url(settings.REDIS_URL, script=COUNT_SCRIPT, timeout=0.5)
        if counter is None:
            client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5)
            counter = client.register_script(COUNT_SCRIPT)
        _aio_counters[key] = counter
    return counter


async def allow_async(instance_id: int, spec: MethodSpec) -> bool:
    """``allow`` for async code paths (the send fast lane): same windows and keys."""
    return (await count_async(instance_id, spec))[0]


async def count_async(instance_id: int, spec: MethodSpec) -> tuple[bool, int | None]:
    """Count one request: (allowed, the window it was counted in, for ``refund_async``;
    None when nothing was counted)."""
    if not settings.RATE_LIMITS_ENABLED:
        return True, None
    rate = limit_for(spec)
    if not rate:
        return True, None
    seconds, limit = _window(rate)
    bucket = int(clock()) // seconds
    if not settings.REDIS_URL:
        return _allow_local(instance_id, spec.name, bucket, limit), bucket
    key = f"rl:{instance_id}:{spec.name}:{bucket}"
    try:
        count = int(await _aio_count()(keys=[key], args=[seconds + 1]))
    except redis.RedisError:
        log.warning("rate limiter: Redis unavailable, using local counters")
        return _allow_local(instance_id, spec.name, bucket, limit), bucket
    return count <= limit, bucket


# Only while the window's key lives: a refund arriving after it expired must not
# leave a negative counter behind without an expiry.
REFUND_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0
"""
_aio_refunds: dict[int, Any] = {}


async def refund_async(instance_id: int, spec: MethodSpec, bucket: int | None) -> None:
    """Take back one request counted by ``count_async`` in window ``bucket``: the
    fast lane counts before it knows the request will be served by it, and hands
    the request to the exact path (which counts again) when it is not."""
    if bucket is None:
        return
    if settings.REDIS_URL:
        key = id(asyncio.get_running_loop())
        refund = _aio_refunds.get(key)
        if refund is None:
            client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5)
            refund = _aio_refunds[key] = client.register_script(REFUND_SCRIPT)
        try:
            await refund(keys=[f"rl:{instance_id}:{spec.name}:{bucket}"])
            return
        except redis.RedisError:
            log.warning("rate limiter: Redis unavailable, refunding the local counter")
    with _lock:
        seen_bucket, count = _local.get((instance_id, spec.name), (bucket, 0))
        if seen_bucket == bucket and count > 0:
            _local[(instance_id, spec.name)] = (bucket, count - 1)
